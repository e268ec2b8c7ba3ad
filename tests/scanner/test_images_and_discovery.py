"""Image files (PNG, JPEG, multi-page TIFF, BMP, WebP, 16-bit, alpha), discovery by content, boilerplate."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scanner.decode import decode_png, orient_like_placement
from scanner.discover import find_inputs, sniff_kind
from scanner.extract import extract_document
from scanner.noise import flag_boilerplate
from scanner.panels import split_panels
from scanner.records import FLAG_BOILERPLATE, FLAG_COMPOUND
from tests.scanner import pdf_factory as F


@pytest.mark.parametrize("fmt,ext,lossless", [("PNG", "png", True), ("BMP", "bmp", True), ("WEBP", "webp", True), ("JPEG", "jpg", False)])
def test_single_image_files(tmp_path: Path, fmt: str, ext: str, lossless: bool) -> None:
    img = F.texture(64, 96, 1)
    path = tmp_path / "sub" / f"fig.{ext}"
    path.parent.mkdir()
    kwargs = {"lossless": True} if fmt == "WEBP" else ({"quality": 95} if fmt == "JPEG" else {})
    Image.fromarray(img).save(path, fmt, **kwargs)
    res = extract_document(path, tmp_path)
    assert res.errors == []
    (rec,) = res.records
    assert rec.doc == f"sub/fig.{ext}" and rec.page == 1
    assert rec.bbox == (0, 0, 96, 64) and (rec.width, rec.height) == (96, 64)
    diff = np.abs(decode_png(rec.image).astype(int) - img).mean()
    assert diff == 0 if lossless else diff < 4


def test_multipage_tiff_frames_are_pages(tmp_path: Path) -> None:
    frames = [Image.fromarray(F.texture(50, 60, s)) for s in (2, 3, 4)]
    path = tmp_path / "stack.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    res = extract_document(path, tmp_path)
    assert res.pages == 3
    assert [r.page for r in res.records] == [1, 2, 3]
    for rec, frame in zip(res.records, frames):
        assert (decode_png(rec.image) == np.asarray(frame)).all()


def test_16_bit_png_and_rgba_png_files(tmp_path: Path) -> None:
    g = (np.arange(64 * 64).reshape(64, 64) % 256).astype(np.uint16) * 257
    Image.fromarray(g.astype(np.uint16)).save(tmp_path / "g16.png")
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3] = F.texture(64, 64, 5)
    rgba[:, 32:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    (rec16,) = extract_document(tmp_path / "g16.png", tmp_path).records
    assert (decode_png(rec16.image)[..., 0] == (g // 257)).all()
    (reca,) = extract_document(tmp_path / "a.png", tmp_path).records
    px = decode_png(reca.image)
    assert (px[:, :32] == 255).all() and (px[:, 32:] == rgba[:, 32:, :3]).all()


def test_cmyk_jpeg_file_is_not_inverted(tmp_path: Path) -> None:
    img = np.zeros((40, 40, 3), np.uint8)
    img[:, :20] = (220, 30, 30)
    img[:, 20:] = (240, 240, 240)
    (tmp_path / "c.jpg").write_bytes(F.jpeg_bytes(img, mode="CMYK"))
    (rec,) = extract_document(tmp_path / "c.jpg", tmp_path).records
    px = decode_png(rec.image).astype(int)
    assert np.abs(px[:, :16] - (220, 30, 30)).mean() < 12
    assert px[:, 24:].mean() > 225


def test_discovery_sniffs_content_and_recurses(tmp_path: Path) -> None:
    F.simple_pdf(tmp_path / "a" / "paper.pdf", [F.texture(30, 30, 6)])
    (tmp_path / "a" / "b").mkdir()
    (tmp_path / "a" / "b" / "scan.dat").write_bytes(F.png_bytes(F.texture(30, 30, 7)))  # image, odd name
    (tmp_path / "a" / "b" / "fake.pdf").write_text("not a pdf")                           # reported later
    (tmp_path / "notes.txt").write_text("hello")                                          # ignored
    (tmp_path / ".hidden").mkdir()
    F.simple_pdf(tmp_path / ".hidden" / "x.pdf", [F.texture(30, 30, 8)])                  # ignored
    found = [p.relative_to(tmp_path).as_posix() for p in find_inputs(tmp_path)]
    assert found == ["a/b/fake.pdf", "a/b/scan.dat", "a/paper.pdf"]
    assert sniff_kind(b"%PDF-1.4 ...") == "pdf"
    assert sniff_kind(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image"
    assert sniff_kind(b"<html>") is None


def test_logo_on_every_page_is_boilerplate_but_a_figure_reused_twice_is_not(tmp_path: Path) -> None:
    logo = F.texture(40, 120, 9)
    fig = F.texture(100, 140, 10)
    recs = []
    for d in range(2):
        doc = F.new_doc()
        for p in range(3):
            page = doc.new_page()
            F.add_image(page, (20, 20, 140, 60), F.png_bytes(logo))
            if d == 0 and p < 2:  # the same figure on two pages of one paper: reuse, not boilerplate
                F.add_image(page, (100, 200, 240, 300), F.png_bytes(fig))
            else:
                F.add_image(page, (100, 200, 240, 300), F.png_bytes(F.texture(100, 140, 100 + 10 * d + p)))
        path = F.save(doc, tmp_path / f"paper{d}.pdf")
        recs += extract_document(path, tmp_path).records
    flagged = flag_boilerplate(recs)
    logos = [r for r in flagged if r.y0 < 30]
    others = [r for r in flagged if r.y0 > 100]
    assert len(logos) == 6 and all(FLAG_BOILERPLATE in r.flags and r.is_noise for r in logos)
    assert len(others) == 6 and not any(FLAG_BOILERPLATE in r.flags for r in others)


def test_orientation_covers_the_eight_symmetries() -> None:
    img = np.arange(6 * 4 * 3, dtype=np.uint8).reshape(4, 6, 3)
    assert (orient_like_placement(img, (1, 0, 0, 1, 0, 0)) == img).all()
    assert (orient_like_placement(img, (-1, 0, 0, 1, 0, 0)) == img[:, ::-1]).all()
    assert (orient_like_placement(img, (1, 0, 0, -1, 0, 0)) == img[::-1]).all()
    # 90 degrees clockwise on the page: u (image x) runs down, v (image y) runs left
    assert (orient_like_placement(img, (0, 1, -1, 0, 0, 0)) == np.rot90(img, k=-1)).all()
    assert (orient_like_placement(img, (0, -1, 1, 0, 0, 0)) == np.rot90(img, k=1)).all()


def test_splitter_ignores_letters_and_keeps_reading_order() -> None:
    comp = F.compound_figure(rows=3, cols=2, panel=(60, 90), gutter=12, seed=3)
    boxes = split_panels(comp.image)
    assert boxes == comp.boxes
    assert split_panels(F.texture(200, 300, 4)) == []
    assert FLAG_COMPOUND == "compound"
