"""report.html at thousands of pairs, in a real headless Chromium: its size, how fast the first card shows, paging.

A fabricated report of 3,000 pairs (`tests.jobs.large_report`) must stay a file one can
mail and a page whose first cards show in seconds: the cards are data drawn a page at a
time (`jobs.report_html.PAGE_ITEMS`), each distinct picture kept once and decoded only for
the cards shown. Sort, filters and the verdict export still cover every pair. Budgets and
the measured numbers: docs/report.md.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from jobs.report import write_report_html
from jobs.report_html import PAGE_ITEMS
from tests.jobs.cdp import Browser
from tests.jobs.large_report import large_pairs

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAIRS = 3000
MAX_MB = 60.0           # the file (measured 3,000 pairs: docs/report.md)
MAX_FIRST_CARD_S = 20.0  # navigation to the first cards drawn with their pictures: measured 2-4 s (docs/report.md)
FIRST_CARDS = ("document.querySelectorAll('article.card').length > 0 && "
               "Array.from(document.querySelectorAll('article.card')).slice(0, 3).every(c => "
               "Array.from(c.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0))")
DRAWN = "document.querySelectorAll('#results article.card:not([hidden])').length"


def ranks(browser: Browser) -> list[int]:
    return [int(r) for r in browser.evaluate(
        "Array.from(document.querySelectorAll('#results article.card:not([hidden])')).map(c => c.dataset.rank)")]


def test_a_report_of_3000_pairs_stays_small_shows_its_first_cards_fast_and_pages(browser: Browser, tmp_path: Path) -> None:
    page = write_report_html(large_pairs(PAIRS), tmp_path / "report.html")
    size_mb = page.stat().st_size / 1e6
    started = time.monotonic()
    browser.call("Page.navigate", url=page.as_uri())  # not `open`: its 20 s wait is for small pages
    browser.wait_for(FIRST_CARDS, timeout=MAX_FIRST_CARD_S * 3)
    first_card = time.monotonic() - started
    print(f"report of {PAIRS} pairs: {size_mb:.1f} MB, first cards drawn in {first_card:.1f} s")
    assert size_mb <= MAX_MB
    assert first_card <= MAX_FIRST_CARD_S
    total = int(browser.evaluate("document.body.dataset.cards"))
    assert browser.evaluate("document.getElementById('count').textContent") == f"{total} of {total} pairs"
    page_one = ranks(browser)
    assert 0 < len(page_one) <= total and browser.evaluate("document.querySelectorAll('#results > .item').length") == PAGE_ITEMS
    # only the page's pictures are decoded, and every one of them
    browser.wait_for("document.body.getAttribute('data-images-filled') === '1'", timeout=120)
    assert browser.evaluate("document.body.getAttribute('data-images-broken')") == "0"
    assert int(browser.evaluate("document.body.getAttribute('data-images-ok')")) == 5 * len(page_one)
    # "B aligned to A" is drawn in the page from B's picture: on a card whose B is A turned (copies/), it lines up with A
    diff = browser.evaluate("""(function(){
      var card = document.querySelector('article.card[data-docs*="copies/"]');
      function grey(img){ var c = document.createElement('canvas'); c.width = 24; c.height = 24;
        var x = c.getContext('2d'); x.drawImage(img, 0, 0, 24, 24); return x.getImageData(0, 0, 24, 24).data; }
      var a = grey(card.querySelector('img.ithumb')), al = grey(card.querySelector('img.ialigned')), d = 0;
      for (var i = 0; i < a.length; i += 4) d += Math.abs(a[i] - al[i]);
      return [card.querySelector('.transform b').textContent, d / (a.length / 4)]; })()""")
    assert diff[0] != "as is" and diff[1] < 12, diff

    # page 2 on request: the next cards by score, their pictures filled in
    browser.evaluate("document.getElementById('nextpage').click()")
    browser.wait_for("document.body.dataset.page === '2'")
    page_two = ranks(browser)
    assert page_two and min(page_two) > max(page_one)
    browser.wait_for("document.body.getAttribute('data-images-filled') === '1'", timeout=120)
    assert int(browser.evaluate("document.body.getAttribute('data-images-ok')")) == 5 * len(page_two)

    # a verdict made on page 2 is in the export, with the pair's provenance
    key = browser.evaluate("""(function(){ var card = document.querySelector('#results article.card:not([hidden])');
      card.querySelector('.vbtn[data-set="dismissed"]').click(); return card.dataset.pairKey; })()""")
    exported = json.loads(browser.evaluate("window.reusescanExportVerdicts()"))["verdicts"]
    assert [({v["hash_a"], v["hash_b"]}, v["verdict"]) for v in exported] == [(set(key.split(":")), "dismissed")]

    # a filter applies across pages: the dismissed card (page 2) leaves the default view and is the only one under
    # "dismissed"; a score filter counts over all pairs, not the page drawn
    browser.evaluate("location.hash = '#page=1'")
    browser.wait_for("document.body.dataset.page === '1'")
    assert browser.evaluate("document.getElementById('count').textContent") == f"{total - 1} of {total} pairs"
    browser.evaluate("location.hash = '#verdict=dismissed'")
    browser.wait_for(f"{DRAWN} === 1")
    assert browser.evaluate("document.querySelector('#results article.card:not([hidden])').dataset.pairKey") == key
    browser.evaluate("location.hash = '#min=0.99&verdict=all'")
    shown = int(browser.wait_for("document.getElementById('count').textContent.split(' ')[0]"))
    expected = browser.evaluate("JSON.parse(document.getElementById('rs-items').textContent)"
                                ".reduce((n, it) => n + it.c.filter(c => c[0] >= 0.99 - 1e-9).length, 0)")
    assert 0 < shown == expected < total
    assert browser.evaluate(f"{DRAWN} <= {shown} && Array.from(document.querySelectorAll("
                            "'#results article.card:not([hidden])')).every(c => parseFloat(c.dataset.score) >= 0.99 - 1e-9)")
