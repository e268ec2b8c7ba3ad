"""A fabricated report of thousands of pairs, for the report's size and load-time budgets.

Panels are cheap pictures (a coarse random pattern smoothly enlarged, plus grain: about
as compressible as a micrograph), each used in about two pairs (a reused panel appears in
several pairs, as in a real large report), with page miniatures; building 3,000 pairs
takes seconds, not a scan.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from jobs.report import PanelRef, ReportPair, apply_transform, inverse_transform

TRANSFORMS = ("identity", "rot90", "flip_h", "rot180", "flip_v")


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _page(rng: np.random.Generator) -> bytes:
    """A page miniature: white with grey text lines and a picture block."""
    arr = np.full((260, 184, 3), 255, np.uint8)
    for y in range(20, 240, 9):
        arr[y:y + 3, 16:int(rng.uniform(100, 168))] = 150
    arr[60:140, 30:150] = rng.integers(60, 200, 3).astype(np.uint8)
    return _png(Image.fromarray(arr))


def _picture(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A coarse random colour pattern enlarged smoothly to w x h, with fine grain."""
    coarse = Image.fromarray(rng.integers(0, 256, (int(rng.integers(6, 14)), int(rng.integers(6, 14)), 3), dtype=np.uint8))
    arr = np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
    return Image.fromarray(np.clip(arr + rng.integers(-12, 13, (h, w, 1)), 0, 255).astype(np.uint8))


def large_pairs(n_pairs: int = 3000, seed: int = 0) -> list[ReportPair]:
    """`n_pairs` scored pairs over about `n_pairs` distinct panels, in groups of two or three."""
    rng = np.random.default_rng(seed)
    n_panels = n_pairs
    pages = [_page(rng) for _ in range(64)]  # documents' pages look alike at this size; 64 distinct drawings
    refs = []
    for i in range(n_panels):
        img = _picture(rng, int(rng.integers(140, 220)), int(rng.integers(100, 180)))
        doc = f"journal/paper{i // 6:04d}.pdf"
        refs.append(PanelRef(doc=doc, page=1 + i % 6 // 2, bbox=(72, 90 + 10 * (i % 2), 300, 260), figure_id=f"fig{i:05d}",
                             thumbnail=_png(img), page_image=pages[i % len(pages)], page_size=(595, 842),
                             image_sha256=f"{i:064x}"))
    out = []
    for k in range(n_pairs):
        a = refs[k]
        j = (k * 7 + 1) % n_panels if k % 3 else (k + 1) % n_panels
        t = TRANSFORMS[k % len(TRANSFORMS)]
        doc = ("copies/" if k % 2 else "other/" if refs[j].doc == a.doc else "") + refs[j].doc
        b = PanelRef(doc=doc, page=refs[j].page,
                     bbox=refs[j].bbox, figure_id=refs[j].figure_id, page_image=refs[j].page_image,
                     page_size=refs[j].page_size, image_sha256=refs[j].image_sha256,
                     thumbnail=(_png(apply_transform(Image.open(io.BytesIO(a.thumbnail)), inverse_transform(t))) if k % 2
                                else refs[j].thumbnail))  # odd pairs: b is a turned, so b aligned = a
        out.append(ReportPair(score=float(rng.uniform(0.84, 1.0)), a=a, b=b, group_id=k, transform=t,
                              head_score=0.9, pixel_match=0.95, pixel_detail=0.8))
    return out
