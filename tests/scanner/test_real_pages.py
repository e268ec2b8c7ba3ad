"""The noise rule and the decoders on real published pages (the committed sample in data/real-sample)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scanner.extract import ExtractLimits, extract_document
from scanner.noise import NoiseOptions, image_flags, is_flow_plot, is_plot
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
    assert len(PDFS) == 6 and len(IMAGES) >= 10


def test_real_pdfs_decode_without_an_image_error(extracted: dict[str, tuple[list[PanelRecord], list[str]]]) -> None:
    for name, (records, stages) in extracted.items():
        assert "decode" not in stages and "extract" not in stages, (name, stages)
        assert records, name


def _size(name: str, r: PanelRecord) -> tuple[str, int, int, int]:
    return (name, r.page, round(r.x1 - r.x0), round(r.y1 - r.y0))


def _rgb(r: PanelRecord) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(r.image)).convert("RGB"))


KAPLAN_MEIER = [("PMC4709619.pdf", 5, 161, 140), ("PMC4709619.pdf", 5, 161, 142), ("PMC4709619.pdf", 5, 172, 94),
                ("PMC4709619.pdf", 6, 145, 101), ("PMC4709619.pdf", 6, 166, 144), ("PMC4709619.pdf", 6, 167, 152),
                ("PMC4709619.pdf", 7, 156, 165), ("PMC4709619.pdf", 7, 161, 122), ("PMC4709619.pdf", 7, 166, 147)]


def test_charts_of_real_papers_are_flagged_but_flow_plots_and_real_panels_are_not(
        extracted: dict[str, tuple[list[PanelRecord], list[str]]]) -> None:
    charts = [_size(name, r) for name, (records, _) in extracted.items() for r in records if FLAG_CHART in r.flags]
    # PMC4657150 page 4 draws the three bars of its bar chart as images (about 30 x 80-100 pt);
    # PMC4709619 pages 5-7 draw nine Kaplan-Meier survival plots, each one raster on white paper.
    # Nothing else of the six papers is: micrographs, histology, CT/MRI, clinical photographs,
    # PMC4657150's blot strips (page 3) and PMC4736757's flow-cytometry plots all stay matchable.
    assert sorted(charts) == sorted([("PMC4657150.pdf", 4, 29, 100), ("PMC4657150.pdf", 4, 30, 81),
                                     ("PMC4657150.pdf", 4, 30, 93)] + KAPLAN_MEIER)
    blots = [r for r in extracted["PMC4657150.pdf"][0] if r.page == 3 and r.parent_id is not None]
    assert blots and not any(NOISE_FLAGS.intersection(r.flags) for r in blots)
    # PMC4736757 page 4: four FACS contour plots (pseudocolour contours on paper, no axes) are plots
    # on paper like the survival curves, but flow plots: a duplicated one is a reuse to see
    flow = [r for r in extracted["PMC4736757.pdf"][0] if r.page == 4]
    assert sorted(_size("PMC4736757.pdf", r)[2:] for r in flow) == [(92, 152), (96, 163), (97, 166), (100, 181)]
    assert not any(r.is_noise for r in flow)
    assert all(is_flow_plot(_rgb(r), NoiseOptions()) for r in flow)
    km = [r for r in extracted["PMC4709619.pdf"][0] if FLAG_CHART in r.flags]
    assert len(km) == 9 and not any(is_flow_plot(_rgb(r), NoiseOptions()) for r in km)
    # the switch: without the plot rule, the survival plots are matchable figures again
    assert not any(is_plot(_rgb(r), NoiseOptions(flag_plots=False)) for r in km)


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
