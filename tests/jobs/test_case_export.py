"""`reusescan case export`: the confirmed pairs of one manuscript as a self-contained evidence page."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from jobs.case_export import CaseError, export_case
from jobs.cli import main
from jobs.verdicts import CONFIRMED, DISMISSED, Verdict, VerdictStore
from tests.jobs.report_samples import make_pdf
from tests.jobs.review_samples import PLACES, make_scan_dir
from tests.jobs.test_report import Dom, decode_uri


def scan_with_verdicts(out: Path) -> None:
    """The review sample scan (A/rot90 A in p1/p2, B/C, A/B) with A/rot90 A confirmed and B/C dismissed."""
    pairs = make_scan_dir(out)
    store = VerdictStore.for_store(out / "store")
    store.add(Verdict.for_pair(pairs[0], CONFIRMED, note="same field, turned", reviewer="ann"))
    store.add(Verdict.for_pair(pairs[1], DISMISSED, reviewer="ann"))


def test_export_writes_the_confirmed_pairs_of_the_manuscript_only(tmp_path: Path) -> None:
    out = tmp_path / "out"
    scan_with_verdicts(out)
    docs = tmp_path / "papers"  # the source PDFs, so the pages are drawn with the regions outlined
    docs.mkdir()
    for doc in ("p1.pdf", "p2.pdf"):
        make_pdf(docs / doc, [(page, bbox, Image.new("RGB", (40, 40), "gray")) for d, page, bbox in PLACES.values()
                              if d == doc], pages=3)
    (page,) = export_case(out, "p2.pdf", tmp_path / "case", docs_root=docs)
    assert page.name == "p2-case.html"
    dom = Dom(page.read_text(encoding="utf-8"))
    body = dom.find("body")[0]
    assert (body["data-findings"], body["data-pairs"]) == ("1", "1")  # B/C was dismissed, A/B is not confirmed
    images = [a["src"] for a in dom.find("img")]
    assert len(images) == 5 and all(src and src.startswith("data:image/png;base64,") for src in images)
    pictures = [decode_uri(src) for src in images if src]
    assert pictures[2].size == (90, 60) and pictures[4].size == (90, 60)  # A, and B turned back onto A
    assert len(dom.find("div", "outer")) == 2
    text = "".join(dom.text)
    assert "same field, turned" in text and "rotated 90°" in text and "ann" in text


def test_export_without_a_confirmed_pair_says_which_documents_have_one(tmp_path: Path) -> None:
    out = tmp_path / "out"
    scan_with_verdicts(out)
    with pytest.raises(CaseError, match="p1.pdf, p2.pdf"):
        export_case(out, "other.pdf", tmp_path / "case")
    result = CliRunner().invoke(main, ["case", "export", str(out), "--doc", "other.pdf", "--out", str(tmp_path / "c")])
    assert result.exit_code == 1 and "no confirmed pair involves 'other.pdf'" in result.output
    result = CliRunner().invoke(main, ["case", "export", str(out), "--doc", "p1.pdf", "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    html = Path(result.output.strip()).read_text(encoding="utf-8")
    assert "source file not at hand" in html  # no --docs-root and nothing recorded: panels only
