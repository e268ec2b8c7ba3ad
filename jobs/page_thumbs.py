"""Small pictures of whole pages, for the report's "where is this panel" miniatures.

`render_page_thumbnail` draws one PDF page (PyMuPDF) or, for
image inputs, the image itself, scaled so its longer side is at most `max_px`
pixels, as PNG bytes. `page_size_points` gives the size the bbox coordinates refer
to (PDF points; pixels for image files), and `render_pages` does several pages of
one document with a single open (PyMuPDF documents are not thread-safe: call it
once per document in one worker). MuPDF's resource store is emptied after each
document (`_open_pdf`): it keeps a closed document's decoded images otherwise, and
drawing the pages of 2,000 papers held 1.6 GB (benchmarks/bench_report_stage.py).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image

from scanner.decode import encode_png

log = logging.getLogger(__name__)

PDF_SUFFIXES = frozenset({".pdf"})


def _is_pdf(path: Path) -> bool:
    if path.suffix.lower() in PDF_SUFFIXES:
        return True
    with open(path, "rb") as fh:
        return fh.read(5) == b"%PDF-"


@contextmanager
def _open_pdf(path: Path) -> Iterator[pymupdf.Document]:
    """The PDF at `path`, open; on leaving, closed and MuPDF's store emptied (see the module docstring)."""
    try:
        with pymupdf.open(path) as doc:
            yield doc
    finally:
        pymupdf.TOOLS.store_shrink(100)


def _render_pdf_page(doc: pymupdf.Document, page: int, max_px: int) -> tuple[bytes, tuple[float, float]]:
    if not 1 <= page <= doc.page_count:
        raise ValueError(f"page {page} out of range 1..{doc.page_count}")
    pg = doc[page - 1]
    rect = pg.rect
    zoom = max_px / max(rect.width, rect.height)
    pix = pg.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
    return pix.tobytes("png"), (float(rect.width), float(rect.height))


def _render_image_frame(path: Path, page: int, max_px: int) -> tuple[bytes, tuple[float, float]]:
    with Image.open(path) as img:
        frames = getattr(img, "n_frames", 1)
        if not 1 <= page <= frames:
            raise ValueError(f"page {page} out of range 1..{frames} for image {path}")
        img.seek(page - 1)
        size = (float(img.width), float(img.height))
        frame = img.convert("RGBA" if "A" in img.getbands() or img.mode == "P" else "RGB")
    if frame.mode == "RGBA":
        background = Image.new("RGB", frame.size, (255, 255, 255))
        background.paste(frame, mask=frame.getchannel("A"))
        frame = background
    frame.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    return encode_png(np.asarray(frame)), size  # a working copy: the report encodes what it shows


def render_pages(
    path: str | os.PathLike[str], pages: Iterable[int], max_px: int = 300
) -> dict[int, tuple[bytes, tuple[float, float]]]:
    """`{page: (png_bytes, (width, height))}` for the 1-based `pages` of one PDF or image file.

    Sizes are in PDF points for PDFs and in pixels for images (the units of the
    bboxes the scanner reports). Opens the document once.
    """
    src = Path(path)
    wanted = sorted(set(int(p) for p in pages))
    if max_px < 8:
        raise ValueError(f"max_px too small: {max_px}")
    if _is_pdf(src):
        with _open_pdf(src) as doc:
            return {p: _render_pdf_page(doc, p, max_px) for p in wanted}
    return {p: _render_image_frame(src, p, max_px) for p in wanted}


def render_page_thumbnail(pdf_path: str | os.PathLike[str], page: int, max_px: int = 300) -> bytes:
    """PNG of page `page` (1-based) of a PDF, or of an image file, longer side ≤ `max_px`."""
    return render_pages(pdf_path, [page], max_px)[page][0]


def page_size_points(path: str | os.PathLike[str], page: int) -> tuple[float, float]:
    """(width, height) of page `page`: PDF points for PDFs, pixels for image files."""
    src = Path(path)
    if _is_pdf(src):
        with _open_pdf(src) as doc:
            if not 1 <= page <= doc.page_count:
                raise ValueError(f"page {page} out of range 1..{doc.page_count}")
            rect = doc[page - 1].rect
            return (float(rect.width), float(rect.height))
    with Image.open(src) as img:
        return (float(img.width), float(img.height))
