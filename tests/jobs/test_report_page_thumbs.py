"""Page miniatures for the report: real PDFs drawn with PyMuPDF, image files downscaled."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.page_thumbs import page_size_points, render_page_thumbnail, render_pages
from tests.jobs.report_samples import make_pdf


@pytest.fixture()
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "paper.pdf"
    red = Image.new("RGB", (50, 50), (255, 0, 0))
    blue = Image.new("RGB", (50, 50), (0, 0, 255))
    make_pdf(path, [(1, (297.5, 421.0, 595.0, 842.0), red), (2, (0.0, 0.0, 297.5, 421.0), blue)])
    return path


def decode(png: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG"
    return np.asarray(img.convert("RGB"), dtype=int)


def test_pdf_page_thumbnail_size_and_content(pdf: Path) -> None:
    arr = decode(render_page_thumbnail(pdf, 1, max_px=200))
    h, w, _ = arr.shape
    assert h == 200 and w == pytest.approx(200 * 595 / 842, abs=1)
    # the red image fills the bottom-right quarter of page 1 (bbox in top-left-origin points)
    assert (arr[int(h * 0.75), int(w * 0.75)] == (255, 0, 0)).all()
    assert (arr[int(h * 0.25), int(w * 0.85)] == (255, 255, 255)).all()
    page2 = decode(render_page_thumbnail(pdf, 2, max_px=120))
    assert (page2[int(120 * 0.2), int(page2.shape[1] * 0.25)] == (0, 0, 255)).all()


def test_render_pages_opens_once_and_reports_sizes(pdf: Path) -> None:
    pages = render_pages(pdf, [2, 1, 2], max_px=100)
    assert sorted(pages) == [1, 2]
    assert pages[1][1] == (595.0, 842.0)
    assert page_size_points(pdf, 2) == (595.0, 842.0)
    with pytest.raises(ValueError, match="out of range"):
        render_page_thumbnail(pdf, 3)


def test_image_file_is_downscaled_and_multipage_tiff(tmp_path: Path) -> None:
    photo = tmp_path / "blot.png"
    Image.new("RGBA", (800, 400), (0, 128, 0, 255)).save(photo)
    arr = decode(render_page_thumbnail(photo, 1, max_px=300))
    assert arr.shape == (150, 300, 3) and (arr[75, 150] == (0, 128, 0)).all()
    assert page_size_points(photo, 1) == (800.0, 400.0)
    small = tmp_path / "small.jpg"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(small)
    assert decode(render_page_thumbnail(small, 1, max_px=300)).shape == (30, 40, 3)  # never upscaled
    tif = tmp_path / "stack.tif"
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tif, save_all=True, append_images=frames[1:])
    assert (decode(render_page_thumbnail(tif, 2, max_px=32))[16, 16] == (0, 0, 255)).all()
    with pytest.raises(ValueError, match="out of range"):
        render_page_thumbnail(tif, 3)
