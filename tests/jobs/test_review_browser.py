"""The review app and report.html's verdict buttons in a real headless Chromium (localhost only).

Chromium is driven over the DevTools pipe (`tests.jobs.cdp`): the test opens the
page, presses the reviewer's keys, and checks the verdicts land in SQLite (the
app) or in the exported JSON (the static report, then imported into the store).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.report import write_report_html
from jobs.review.data import resolve
from jobs.review.server import ReviewServer
from jobs.verdicts import CONFIRMED, DISMISSED, UNSURE, VerdictStore
from tests.jobs.cdp import Browser
from tests.jobs.review_samples import make_scan_dir, panels, sample_pairs

pytestmark = pytest.mark.browser


def test_keys_record_verdicts_in_sqlite(browser: Browser, tmp_path: Path) -> None:
    pairs = make_scan_dir(tmp_path / "out")
    server = ReviewServer(resolve(tmp_path / "out"), host="127.0.0.1", port=0)
    server.start_background()
    try:
        browser.open(server.url)
        assert browser.evaluate("document.querySelectorAll('article.card').length") == 3
        browser.wait_for("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        browser.evaluate("var r = document.getElementById('reviewer'); r.value = 'ann';"
                         "r.dispatchEvent(new Event('change'))")
        browser.press("c")  # the first card: confirmed, then on to the next
        browser.wait_for("document.getElementById('vstatus').textContent === 'saved: confirmed'")
        browser.press("d")  # the second: dismissed (and hidden by the default filter)
        browser.wait_for("document.getElementById('vstatus').textContent === 'saved: dismissed'")
        browser.press("k")
        browser.press("j")
        browser.press("u")  # j/k moved back and forth: the third card
        browser.wait_for("document.getElementById('vstatus').textContent === 'saved: unsure'")
        latest = VerdictStore.for_store(tmp_path / "out" / "store").latest()
        got = {key: (row["verdict"], row["reviewer"]) for key, row in latest.items()}
        assert got == {pairs[0].pair_key: (CONFIRMED, "ann"), pairs[1].pair_key: (DISMISSED, "ann"),
                       pairs[2].pair_key: (UNSURE, "ann")}
        assert browser.evaluate("document.querySelectorAll('article.card:not([hidden])').length") == 2
        browser.open(server.url + "?night=scan#verdict=dismissed")  # reloaded: verdicts from the store, name remembered
        assert browser.evaluate("document.querySelectorAll('article.card:not([hidden])').length") == 1
        assert browser.evaluate("document.getElementById('reviewer').value") == "ann"
    finally:
        server.shutdown()
        server.server_close()


def test_static_report_keeps_verdicts_in_the_page_and_exports_them(browser: Browser, tmp_path: Path) -> None:
    pairs = sample_pairs(panels())
    page = write_report_html(pairs, tmp_path / "report.html")
    browser.open(page.as_uri())
    browser.press("j")
    browser.press("d")
    assert browser.evaluate("document.querySelector('article.card').dataset.verdict") == DISMISSED
    exported = json.loads(browser.evaluate("window.reusescanExportVerdicts()"))
    assert [v["verdict"] for v in exported["verdicts"]] == [DISMISSED]
    browser.open(page.as_uri())  # the browser keeps it across reloads
    assert browser.evaluate("document.querySelector('article.card').dataset.verdict") == DISMISSED
    path = tmp_path / "verdicts.json"
    path.write_text(json.dumps(exported), encoding="utf-8")
    store = VerdictStore.for_store(tmp_path / "store")
    assert store.import_json(path) == (1, 0)
    (row,) = store.latest().values()
    assert row["pair_key"] == pairs[0].pair_key and row["doc_a"] == pairs[0].a.doc
