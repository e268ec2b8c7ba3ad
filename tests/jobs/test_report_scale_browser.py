"""report.html at thousands of pairs, in a real headless Chromium: its size and how fast it opens.

A fabricated report of 3,000 pairs (`tests.jobs.large_report`) must stay a file one can
mail and a page that opens in seconds: every card drawn, each distinct picture kept
once (`jobs.report_html._DeferredImages`), pictures filled in near the viewport first
and every one of them decoding in the end. Budgets and the measured numbers: docs/report.md.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from jobs.report import write_report_html
from tests.jobs.cdp import Browser
from tests.jobs.large_report import large_pairs

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAIRS = 3000
MAX_MB = 60.0          # the file (measured 3,000 pairs: docs/report.md)
MAX_OPEN_S = 240.0     # navigation to the first cards drawn: measured 150 s on a loaded shared machine (docs/report.md); too slow yet


def test_a_report_of_3000_pairs_stays_small_and_opens_fast(browser: Browser, tmp_path: Path) -> None:
    page = write_report_html(large_pairs(PAIRS), tmp_path / "report.html")
    size_mb = page.stat().st_size / 1e6
    started = time.monotonic()
    browser.call("Page.navigate", url=page.as_uri())  # not `open`: its 20 s wait is for small pages
    browser.wait_for("document.readyState === 'complete' && document.querySelectorAll('article.card').length > 0",
                     timeout=MAX_OPEN_S)
    browser.wait_for("Array.from(document.querySelectorAll('article.card')).slice(0, 3).every(c => "
                     "Array.from(c.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0))")
    opened = time.monotonic() - started
    print(f"report of {PAIRS} pairs: {size_mb:.1f} MB, opened with first cards drawn in {opened:.1f} s")
    assert browser.evaluate("document.querySelectorAll('article.card').length") == PAIRS
    assert size_mb <= MAX_MB
    assert opened <= MAX_OPEN_S
    browser.wait_for("document.body.getAttribute('data-images-filled') === '1'", timeout=300)
    assert browser.evaluate("document.body.getAttribute('data-images-broken')") == "0"
    assert int(browser.evaluate("document.body.getAttribute('data-images-ok')")) == 5 * PAIRS
    # "B aligned to A" is drawn in the page from B's picture: on a card whose B is A turned (copies/), it lines up with A
    diff = browser.evaluate("""(function(){
      var card = document.querySelector('article.card[data-docs*="copies/"]');
      function grey(img){ var c = document.createElement('canvas'); c.width = 24; c.height = 24;
        var x = c.getContext('2d'); x.drawImage(img, 0, 0, 24, 24); return x.getImageData(0, 0, 24, 24).data; }
      var a = grey(card.querySelector('img.ithumb')), al = grey(card.querySelector('img.ialigned')), d = 0;
      for (var i = 0; i < a.length; i += 4) d += Math.abs(a[i] - al[i]);
      return [card.querySelector('.transform b').textContent, d / (a.length / 4)]; })()""")
    assert diff[0] != "as is" and diff[1] < 12, diff
    # the filters still run over every card
    browser.evaluate("location.hash = '#min=0.99'")
    shown = browser.wait_for("document.querySelectorAll('article.card:not([hidden])').length < 3000 && "
                             "document.querySelectorAll('article.card:not([hidden])').length")
    assert 0 < shown < PAIRS
