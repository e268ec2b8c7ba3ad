"""A reviewer's whole session, scripted: scan, decide in the app, the next night respects it, the case goes out.

`reusescan make-corpus` writes a small corpus with planted reuse; `reusescan scan`
(real Ray, the shipped model) reports its pairs; in the review app, in headless
Chromium, two false pairs are dismissed and two planted ones confirmed with the
cards' buttons; `reusescan nightly` then takes new papers (resubmissions of the
reviewed papers under new names, and a fresh one) into the same store, and its
report leaves the dismissed pairs out (they are in dismissed.csv) and marks the
confirmed ones; `reusescan case export` writes the evidence page, which opens in
Chromium with every image decoded.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from jobs.review.data import resolve
from jobs.review.server import ReviewServer
from jobs.verdicts import CONFIRMED, DISMISSED, VerdictStore
from tests.jobs.cdp import Browser
from tests.jobs.test_scan_nightly import ray_cluster, read_csv, run  # noqa: F401
from training.scoring import row_truth_matches

# two Ray runs on a shared machine: more than the suite's default timeout when other jobs load it
pytestmark = [pytest.mark.browser, pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(1800)]

THRESHOLD = "0.3"  # low enough that the report holds false pairs to dismiss


def resubmit(src: Path, dst: Path) -> None:
    """The same paper as a new file: another title in its metadata, so other bytes, the same pictures."""
    import pymupdf

    with pymupdf.open(src) as doc:
        doc.set_metadata({"title": f"revised {src.stem}"})
        doc.save(dst)
    assert dst.read_bytes() != src.read_bytes()


def decide(browser: Browser, key: str, verdict: str) -> None:
    """Click the verdict button of the card of pair `key` and wait until the app saved it."""
    card = f"document.querySelector('article.card[data-pair-key=\"{key}\"]')"
    browser.evaluate(f"{card}.scrollIntoView(); {card}.querySelector('.vbtn[data-set=\"{verdict}\"]').click()")
    browser.wait_for(f"{card}.dataset.verdict === '{verdict}' && "
                     f"document.getElementById('vstatus').textContent === 'saved: {verdict}'")


def test_review_session(ray_cluster: None, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    assert run(["make-corpus", str(corpus), "--docs", "5", "--reuse", "4", "--seed", "11", "--workers", "1", "--no-images"])[0] == 0
    assert run(["scan", str(corpus / "pdf"), "--out", str(out), "--threshold", THRESHOLD, "--k", "5",
                "--no-progress"])[0] == 0
    report = pd.read_csv(out / "report.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(corpus / "truth.csv", dtype=str, keep_default_na=False)
    planted = [bool(m) for m in row_truth_matches(report, truth, contain=True)]

    server = ReviewServer(resolve(out), host="127.0.0.1", port=0)
    server.start_background()
    try:
        browser.open(server.url)
        browser.wait_for("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        on_cards = set(browser.evaluate("Array.from(document.querySelectorAll('article.card')).map(c => c.dataset.pairKey)"))
        true_keys = [k for k, p in zip(report["pair_key"], planted) if p and k in on_cards][:2]
        false_keys = [k for k, p in zip(report["pair_key"], planted) if not p and k in on_cards][:2]
        assert len(true_keys) == 2 and len(false_keys) == 2, (len(report), sum(planted))
        for key in false_keys:
            decide(browser, key, DISMISSED)
        for key in true_keys:
            decide(browser, key, CONFIRMED)
        assert browser.evaluate("document.querySelectorAll('article.card[data-verdict=\"dismissed\"]:not([hidden])').length") == 0
    finally:
        server.shutdown()
        server.server_close()
    latest = VerdictStore.for_store(out / "store").latest()
    assert {k for k in true_keys + false_keys} <= set(latest)

    # the next night: the reviewed papers come back as new files (resubmissions: new bytes, the same
    # pictures; nightly skips a file it has seen byte for byte), with one paper not reviewed before
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    reviewed = report[report["pair_key"].isin(true_keys + false_keys)]
    docs = sorted(set(reviewed["doc_a"]) | set(reviewed["doc_b"]))
    others = sorted(set(p.name for p in (corpus / "pdf").glob("*.pdf")) - set(docs))
    for doc, prefix in [(d, "resubmitted-") for d in docs] + [(d, "new-") for d in others[:1]]:
        resubmit(corpus / "pdf" / doc, incoming / f"{prefix}{Path(doc).name}")
    store = out / "store"
    # a wider search: each resubmitted panel now has a twin in the store, which takes a neighbour slot
    assert run(["nightly", str(incoming), "--store", str(store), "--date", "2026-11-27", "--threshold", THRESHOLD,
                "--k", "40", "--no-progress"])[0] == 0
    night = store / "reports" / "2026-11-27"
    rows = {r["pair_key"]: r for r in read_csv(night / "report.csv")}
    assert not set(false_keys) & set(rows)  # dismissed: not reported again ...
    # ... though found again: at least one of them is listed as dismissed (the other may now score under the
    # threshold, its panel's exact resubmitted twin being its background: embedder.fusion's margins)
    assert set(false_keys) & {r["pair_key"] for r in read_csv(night / "dismissed.csv")}
    assert {rows[k]["verdict"] for k in true_keys} == {CONFIRMED}
    assert all(r["doc_a"].startswith(("resubmitted-", "new-")) or r["doc_b"].startswith(("resubmitted-", "new-"))
               for r in rows.values())

    # the evidence page of a confirmed manuscript, from the store
    manuscript = rows[true_keys[0]]["doc_a"]
    code, output = run(["case", "export", str(store), "--doc", manuscript, "--out", str(tmp_path / "case")])
    assert code == 0, output
    page = Path(output.strip().splitlines()[-1])
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text  # self-contained
    browser.open(page.as_uri())
    assert browser.evaluate("Number(document.body.dataset.findings)") >= 1
    assert browser.evaluate("Array.from(document.images).length") >= 5  # two pages and three panels at least
    assert browser.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert browser.evaluate("document.querySelectorAll('.box.outer').length") >= 2  # the regions outlined on both pages
