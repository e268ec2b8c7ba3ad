"""The committed real sample (data/real-sample): small, licensed, every file attributed, readable."""
from __future__ import annotations

from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "real-sample"


def test_sample_is_small_and_every_file_is_attributed() -> None:
    files = [p for p in SAMPLE.rglob("*") if p.is_file() and p.name != "README.md"]
    assert sum(p.stat().st_size for p in files) <= 20 * 1024 * 1024
    pdfs = [p for p in files if p.suffix == ".pdf" and p.parent.name == "pdfs"]
    logo_pages = [p for p in files if p.suffix == ".pdf" and p.parent.name == "logos"]  # first pages with publisher badges
    images = [p for p in files if p.suffix == ".png"]
    assert 4 <= len(pdfs) <= 6 and len(logo_pages) == 2 and 10 <= len(images) <= 20
    assert len(pdfs) + len(logo_pages) + len(images) == len(files)
    readme = (SAMPLE / "README.md").read_text()
    for p in files:  # named in the sample's README, or in the README beside it
        beside = p.parent / "README.md"
        assert (f"`{p.relative_to(SAMPLE).as_posix()}`" in readme
                or beside.exists() and f"`{p.name}`" in beside.read_text()), p
    assert "CC BY" in readme and "BSD-3-Clause" in readme and "CC BY 4.0" in readme


def test_sample_pdfs_hold_figures_the_scanner_extracts() -> None:
    from scanner.extract import ExtractLimits, extract_document

    # blot strips and micrographs; dental photographs (PMC4709619 holds only survival plots, which are charts)
    for pdf in (SAMPLE / "pdfs" / "PMC4657150.pdf", SAMPLE / "pdfs" / "PMC4736806.pdf"):
        res = extract_document(pdf, SAMPLE, ExtractLimits(split=False, timeout_s=None))
        assert len([r for r in res.records if not r.is_noise]) >= 3, pdf
