"""The noise rule and the decoders on real published pages (the committed sample in data/real-sample)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scanner.extract import ExtractLimits, extract_document
from scanner.noise import NoiseOptions, image_flags, is_plot
from scanner.records import FLAG_CHART, NOISE_FLAGS, PanelRecord

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "real-sample"
PDFS = sorted((SAMPLE / "pdfs").glob("*.pdf"))
IMAGES = sorted((SAMPLE / "images").rglob("*.png"))


@pytest.fixture(scope="module")
def extracted() -> dict[str, tuple[list[PanelRecord], list[str]]]:
    out = {}
    for pdf in PDFS:
        res = extract_document(pdf, SAMPLE / "pdfs", ExtractLimits(timeout_s=None))
        out[pdf.name] = (res.records, [e.stage for e in res.errors])
    return out


def test_the_sample_is_there() -> None:
    assert len(PDFS) == 5 and len(IMAGES) >= 10


def test_real_pdfs_decode_without_an_image_error(extracted: dict[str, tuple[list[PanelRecord], list[str]]]) -> None:
    for name, (records, stages) in extracted.items():
        assert "decode" not in stages and "extract" not in stages, (name, stages)
        assert records, name


def test_chart_pieces_of_real_papers_are_flagged_plots_only_when_asked_and_no_real_panel_is(
        extracted: dict[str, tuple[list[PanelRecord], list[str]]]) -> None:
    def size(name: str, r: PanelRecord) -> tuple[str, int, int, int]:
        return (name, r.page, round(r.x1 - r.x0), round(r.y1 - r.y0))

    charts = [size(name, r) for name, (records, _) in extracted.items() for r in records if FLAG_CHART in r.flags]
    # PMC4657150 page 4 draws the three bars of its bar chart as images (about 30 x 80-100 pt).
    # Nothing else of the five papers is: micrographs, histology, CT/MRI, clinical photographs
    # and PMC4657150's blot strips (page 3) all stay matchable.
    assert sorted(charts) == [("PMC4657150.pdf", 4, 29, 100), ("PMC4657150.pdf", 4, 30, 81), ("PMC4657150.pdf", 4, 30, 93)]
    blots = [r for r in extracted["PMC4657150.pdf"][0] if r.page == 3 and r.parent_id is not None]
    assert blots and not any(NOISE_FLAGS.intersection(r.flags) for r in blots)
    # the plot rule (off by default, NoiseOptions.flag_plots) takes exactly the nine Kaplan-Meier
    # survival plots of PMC4709619 pages 5-7, each one raster on white paper, out of all whole figures
    opts = NoiseOptions(flag_plots=True)
    parents = {r.parent_id for records, _ in extracted.values() for r in records}
    unsplit = [(name, r) for name, (records, _) in extracted.items() for r in records
               if r.parent_id is None and r.figure_id not in parents and not r.is_noise]
    plots = [size(name, r) for name, r in unsplit if is_plot(np.asarray(Image.open(io.BytesIO(r.image)).convert("RGB")), opts)]
    assert sorted(plots) == [("PMC4709619.pdf", 5, 161, 140), ("PMC4709619.pdf", 5, 161, 142), ("PMC4709619.pdf", 5, 172, 94),
                             ("PMC4709619.pdf", 6, 145, 101), ("PMC4709619.pdf", 6, 166, 144), ("PMC4709619.pdf", 6, 167, 152),
                             ("PMC4709619.pdf", 7, 156, 165), ("PMC4709619.pdf", 7, 161, 122), ("PMC4709619.pdf", 7, 166, 147)]


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.stem)
def test_real_microscopy_images_carry_no_noise_flag(path: Path) -> None:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    assert image_flags(rgb, NoiseOptions()) == []


@pytest.mark.slow
def test_journal_badges_of_two_real_papers_are_never_a_candidate_pair() -> None:
    """CrossMark on page 1 of a PLOS ONE and a Royal Society Open Science paper: different pixels, no pair."""
    import pyarrow as pa

    from index.candidates import Pairs, RecordKeys, trivial_mask
    from scanner.records import FLAG_COMPOUND, records_to_table

    logos = SAMPLE / "logos"
    records = [r for pdf in sorted(logos.glob("*.pdf"))
               for r in extract_document(pdf, logos, ExtractLimits(timeout_s=None)).records]
    matchable = [r for r in records if not r.is_noise and FLAG_COMPOUND not in r.flags]
    # neither badge is flagged by itself (each paper has its own rendering; PLOS's is cut into
    # the icon and its caption) ...
    assert {r.doc for r in matchable} == {"plos-pone.0115884-page1.pdf", "rsos-PMC4632522-page1.pdf"}
    assert all(r.page == 1 and max(r.x1 - r.x0, r.y1 - r.y0) <= 80 for r in matchable)
    table = records_to_table(matchable)
    keys = RecordKeys.from_table(table.append_column("row_id", pa.array(np.arange(len(matchable)), pa.int64())))
    # ... but no pair of them across the two papers is ever a candidate
    a, b = zip(*[(i, j) for i in range(len(matchable)) for j in range(len(matchable))
                 if i < j and matchable[i].doc != matchable[j].doc])
    assert trivial_mask(Pairs.from_arrays(np.array(a), np.array(b), np.full(len(a), 0.9)), keys).all()
