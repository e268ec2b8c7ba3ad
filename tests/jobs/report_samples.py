"""Generated fixtures for the report tests: biology-like panels, real PDFs, scored pairs.

Small procedural pictures (a fluorescence field, a western blot, a histology-like
texture) are placed into real two-page PDFs with PyMuPDF; the page miniatures are
rendered from those PDFs with `jobs.page_thumbs`, so the report shows what a
reviewer would see. Copies are made with a known D4 transform so tests can check
that "B aligned to A" really lines up.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from jobs.page_thumbs import render_pages
from jobs.report import PanelRef, ReportPair, apply_transform, inverse_transform

MALICIOUS_DOC = "<script>alert(1)</script>.pdf"


def fluorescence(rng: np.random.Generator, w: int = 220, h: int = 180) -> Image.Image:
    """Dark field with green/red/blue gaussian blobs, like stained cells."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3))
    for _ in range(24):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, 14)
        blob = np.exp(-(((xx - cx) ** 2) / (2 * r * r) + ((yy - cy) ** 2) / (2 * (0.7 * r) ** 2)))
        img[..., 1] += blob * rng.uniform(0.5, 1.0)
        img[..., 0] += blob * rng.uniform(0.0, 0.5)
        nucleus = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.35 * r) ** 2)))
        img[..., 2] += nucleus * 0.9
    img += rng.normal(0, 0.02, img.shape)
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), "RGB")


def western_blot(rng: np.random.Generator, w: int = 260, h: int = 110) -> Image.Image:
    """Light background with dark bands in lanes."""
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    img = np.full((h, w), 0.93) + rng.normal(0, 0.015, (h, w))
    lanes = 7
    for lane in range(lanes):
        cx = (lane + 0.5) * w / lanes
        for _ in range(rng.integers(1, 4)):
            cy, strength = rng.uniform(12, h - 12), rng.uniform(0.3, 0.8)
            band = np.exp(-((yy - cy) ** 2) / (2 * 3.0**2)) * np.exp(-(np.abs(xx - cx) / (0.38 * w / lanes)) ** 6)
            img -= strength * band
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), "L").convert("RGB")


def histology(rng: np.random.Generator, w: int = 200, h: int = 200) -> Image.Image:
    """Pink eosin background with purple nuclei, H&E-like."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.array([0.93, 0.72, 0.82])
    img = np.ones((h, w, 3)) * base + rng.normal(0, 0.03, (h, w, 1))
    for _ in range(60):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, 7)
        mask = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))[..., None]
        img = img * (1 - 0.8 * mask) + np.array([0.35, 0.2, 0.55]) * 0.8 * mask
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), "RGB")


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_pdf(path: Path, placements: list[tuple[int, tuple[float, float, float, float], Image.Image]], pages: int = 2) -> None:
    """A PDF of `pages` A4 pages with some text lines and each image at its (page, bbox)."""
    import pymupdf

    doc = pymupdf.open()
    for number in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_text((60, 60), f"Results, page {number + 1}", fontsize=16)
        for line in range(40):
            page.insert_text((60, 90 + line * 18), "Lorem ipsum dolor sit amet, consectetur adipiscing elit " * 1, fontsize=9, color=(0.45, 0.45, 0.45))
    for page_no, bbox, img in placements:
        doc[page_no - 1].insert_image(pymupdf.Rect(*bbox), stream=png_bytes(img))
    doc.save(path)
    doc.close()


def sample_pairs(root: Path, seed: int = 0) -> list[ReportPair]:
    """Five pairs over two real PDFs: one group of three blot copies (one in a doc with a
    malicious name), an inter pair rotated 90°, an intra pair mirrored, all with known transforms."""
    rng = np.random.default_rng(seed)
    fluo, blot, histo = fluorescence(rng), western_blot(rng), histology(rng)

    def copy(img: Image.Image, maps_b_onto_a: str) -> Image.Image:
        return apply_transform(img, inverse_transform(maps_b_onto_a))

    fluo_b = copy(fluo, "rot90")
    histo_b = copy(histo, "flip_h")
    blot_b = copy(blot, "flip_v")
    box = {
        "A1": (70.0, 120.0, 290.0, 300.0), "A1b": (310.0, 420.0, 510.0, 620.0),
        "A2": (80.0, 500.0, 340.0, 610.0), "B1": (300.0, 100.0, 560.0, 210.0),
        "B2": (100.0, 380.0, 280.0, 600.0), "A2h": (320.0, 130.0, 520.0, 330.0),
    }
    a_pdf, b_pdf = root / "paper_A.pdf", root / "paper_B.pdf"
    make_pdf(a_pdf, [(1, box["A1"], fluo), (1, box["A1b"], histo_b), (2, box["A2"], blot), (2, box["A2h"], histo)])
    make_pdf(b_pdf, [(1, box["B1"], blot_b), (2, box["B2"], fluo_b)])
    a_pages, b_pages = render_pages(a_pdf, [1, 2], max_px=260), render_pages(b_pdf, [1, 2], max_px=260)

    def ref(doc: str, pages: dict, page: int, bbox: tuple, fid: str, img: Image.Image) -> PanelRef:
        png, size = pages[page]
        return PanelRef(doc=doc, page=page, bbox=bbox, figure_id=fid, thumbnail=png_bytes(img), page_image=png, page_size=size)

    a_fluo = ref("paper_A.pdf", a_pages, 1, box["A1"], "A-p1-f0", fluo)
    b_fluo = ref("paper_B.pdf", b_pages, 2, box["B2"], "B-p2-f0", fluo_b)
    a_blot = ref("paper_A.pdf", a_pages, 2, box["A2"], "A-p2-f0", blot)
    b_blot = ref("paper_B.pdf", b_pages, 1, box["B1"], "B-p1-f0", blot_b)
    evil_blot = ref(MALICIOUS_DOC, b_pages, 1, box["B1"], "EVIL-p1-f0", blot)
    a_histo = ref("paper_A.pdf", a_pages, 2, box["A2h"], "A-p2-f1", histo)
    a_histo_b = ref("paper_A.pdf", a_pages, 1, box["A1b"], "A-p1-f1", histo_b)
    return [
        ReportPair(0.97, a_fluo, b_fluo, "inter", 1, "rot90", {"candidate rank": 1}),
        ReportPair(0.93, a_blot, b_blot, "inter", 2, "flip_v"),
        ReportPair(0.91, a_blot, evil_blot, "inter", 2, "identity", {"note": '"quoted" & <b>not bold</b>'}),
        ReportPair(0.88, b_blot, evil_blot, "inter", 2, "flip_v"),
        ReportPair(0.81, a_histo, a_histo_b, "intra", 3, "flip_h", relation="same figure",
                   channel_of="b is the green channel of a"),
    ]


SAMPLE_SUMMARY = {
    "documents": 3, "pages": 4, "panels": 7, "pairs": 5, "errors": 1,
    "timings": {"extract": 3.4, "embed": 12.9, "index": 0.4, "score": 1.2, "report": 0.6},
    "root": "/data/submissions", "model": "reusescan-default", "threshold": 0.8,
}
SAMPLE_ERRORS = [("broken.pdf", "extract", "FileDataError: cannot open broken document")]
