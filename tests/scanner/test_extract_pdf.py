"""Extraction from PDFs built by the tests: placements, bboxes, orientation, decoding, panels, noise."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pymupdf
import pytest

from scanner.decode import decode_png
from scanner.extract import ExtractLimits, extract_document, make_figure_id
from scanner.records import FLAG_COMPOUND, FLAG_TINY, FLAG_UNIFORM, PanelRecord
from tests.scanner import pdf_factory as F


def figures(records: list[PanelRecord]) -> list[PanelRecord]:
    return [r for r in records if r.parent_id is None]


def assert_bbox(rec: PanelRecord, expected: tuple[float, float, float, float], tol: float = 1.0) -> None:
    assert np.allclose(rec.bbox, expected, atol=tol), (rec.bbox, expected)


def pixels(rec: PanelRecord) -> np.ndarray:
    return decode_png(rec.image).astype(np.int16)


def assert_same(a: np.ndarray, b: np.ndarray, mean_tol: float = 1.0) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    assert float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) <= mean_tol


def test_several_images_per_page_and_one_image_on_two_pages(tmp_path: Path) -> None:
    a, b = F.texture(100, 150, 1), F.texture(80, 60, 2)
    doc = F.new_doc()
    p1 = doc.new_page(width=612, height=792)
    xa = F.add_image(p1, (40, 40, 190, 140), F.png_bytes(a))
    F.add_image(p1, (300, 500, 360, 580), F.png_bytes(b))
    p2 = doc.new_page(width=612, height=792)
    # the same image object (one xref) placed on page 2, at another size
    p2.insert_image(pymupdf.Rect(100, 100, 400, 300), xref=xa, keep_proportion=False)
    path = F.save(doc, tmp_path / "multi.pdf")

    res = extract_document(path, tmp_path)
    assert res.errors == []
    assert res.pages == 2
    recs = sorted(figures(res.records), key=lambda r: (r.page, r.y0))
    assert len(recs) == 3
    assert [r.page for r in recs] == [1, 1, 2]
    assert_bbox(recs[0], (40, 40, 190, 140))
    assert_bbox(recs[1], (300, 500, 360, 580))
    assert_bbox(recs[2], (100, 100, 400, 300))
    assert_same(pixels(recs[0]), a, 0)
    assert_same(pixels(recs[1]), b, 0)
    # own pixels at native resolution, not the 300x200-point rendering
    assert (recs[2].width, recs[2].height) == (150, 100)
    assert_same(pixels(recs[2]), a, 0)
    assert recs[0].figure_id != recs[2].figure_id
    assert all(r.doc == "multi.pdf" and r.flags == () for r in recs)


def test_figure_ids_are_stable_across_runs(tmp_path: Path) -> None:
    path = F.simple_pdf(tmp_path / "s.pdf", [F.texture(60, 80, 3)])
    first = extract_document(path, tmp_path)
    second = extract_document(path, tmp_path)
    assert [r.figure_id for r in first.records] == [r.figure_id for r in second.records]
    rec = first.records[0]
    assert rec.figure_id == make_figure_id(rec.doc, rec.doc_sha256, 1, 0, 0)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_page_bbox_and_pixels_match_the_displayed_page(tmp_path: Path, rotation: int) -> None:
    img = F.texture(100, 160, 4)
    doc = F.new_doc()
    page = doc.new_page(width=600, height=800)
    F.add_image(page, (100, 150, 260, 250), F.png_bytes(img))
    page.set_rotation(rotation)
    path = F.save(doc, tmp_path / f"rot{rotation}.pdf")

    res = extract_document(path, tmp_path)
    assert res.errors == []
    (rec,) = res.records
    with pymupdf.open(path) as d:
        pg = d[0]
        expected = (pymupdf.Rect(100, 150, 260, 250) * pg.rotation_matrix).normalize()
        shown = pg.get_pixmap(alpha=False)  # 72 dpi: 1 pixel per point, as displayed
        page_px = np.frombuffer(shown.samples, np.uint8).reshape(shown.h, shown.w, 3)
        assert pg.rect.contains(pymupdf.Rect(rec.bbox))
    assert_bbox(rec, tuple(expected))
    panel = pixels(rec)
    assert (rec.width, rec.height) == ((100, 160) if rotation in (90, 270) else (160, 100))
    x0, y0, x1, y1 = (int(round(v)) for v in rec.bbox)
    on_page = page_px[y0:y1, x0:x1]
    assert_same(panel[3:-3, 3:-3], on_page[3:-3, 3:-3], mean_tol=12)  # upright as on the page


@pytest.mark.parametrize("mirror_x,mirror_y", [(True, False), (False, True), (True, True)])
def test_mirrored_placement_shows_pixels_as_on_the_page(tmp_path: Path, mirror_x: bool, mirror_y: bool) -> None:
    img = F.texture(90, 120, 5)
    doc = F.new_doc()
    page = doc.new_page(width=400, height=500)
    xref = F.add_image(page, (0, 0, 10, 10), F.png_bytes(img))
    name = F.image_name(page, xref)
    rect = (50, 60, 170, 150)
    cm = F.placement_cm(rect, 500, mirror_x=mirror_x, mirror_y=mirror_y)
    F.set_contents(doc, page, f"q {cm} cm /{name} Do Q\n".encode())
    path = F.save(doc, tmp_path / "mirror.pdf")

    (rec,) = extract_document(path, tmp_path).records
    assert_bbox(rec, rect)
    expected = img
    if mirror_x:
        expected = expected[:, ::-1]
    if mirror_y:
        expected = expected[::-1, :]
    assert_same(pixels(rec), expected, 0)


def test_rotated_placement(tmp_path: Path) -> None:
    img = F.texture(60, 100, 6)
    doc = F.new_doc()
    page = doc.new_page(width=400, height=500)
    F.add_image(page, (50, 50, 110, 150), F.png_bytes(img), rotate=90)
    path = F.save(doc, tmp_path / "rotplace.pdf")
    (rec,) = extract_document(path, tmp_path).records
    assert_bbox(rec, (50, 50, 110, 150))
    with pymupdf.open(path) as d:
        shown = d[0].get_pixmap(alpha=False, matrix=pymupdf.Matrix(1, 1), clip=pymupdf.Rect(50, 50, 110, 150))
        on_page = np.frombuffer(shown.samples, np.uint8).reshape(shown.h, shown.w, 3)
    panel = pixels(rec)
    assert panel.shape == (100, 60, 3)
    assert_same(panel[3:-3, 3:-3], on_page[3:-3, 3:-3], mean_tol=12)
    # the red marker (image top-left) is where the page shows it, not elsewhere
    assert (panel[..., 0] > 200).sum() > 100


def test_cmyk_jpeg_adobe_inverted_decodes_to_recognisable_rgb(tmp_path: Path) -> None:
    img = np.zeros((60, 90, 3), np.uint8)
    img[:, :30] = (220, 30, 30)
    img[:, 30:60] = (30, 200, 40)
    img[:, 60:] = (40, 60, 210)
    data = F.jpeg_bytes(img, mode="CMYK")
    assert b"Adobe" in data[:300]  # Pillow writes inverted CMYK with an Adobe marker
    doc = F.new_doc()
    page = doc.new_page()
    F.add_image(page, (50, 50, 140, 110), data)
    path = F.save(doc, tmp_path / "cmyk.pdf")
    (rec,) = extract_document(path, tmp_path).records
    px = pixels(rec)
    for x, dominant in ((15, 0), (45, 1), (75, 2)):
        colour = px[30, x]
        assert int(np.argmax(colour)) == dominant, colour  # not inverted, right hue
    assert np.abs(px - img).mean() < 45  # colour-managed SWOP conversion, not identity


def test_alpha_png_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3] = F.texture(64, 64, 7)
    rgba[16:48, 16:48, 3] = 255  # opaque centre, transparent border
    doc = F.new_doc()
    page = doc.new_page()
    F.add_image(page, (10, 10, 74, 74), F.png_bytes(rgba))
    path = F.save(doc, tmp_path / "alpha.pdf")
    (rec,) = extract_document(path, tmp_path, ExtractLimits(split=False)).records
    px = pixels(rec)
    assert (px[:16] == 255).all() and (px[:, :16] == 255).all()
    assert_same(px[16:48, 16:48], rgba[16:48, 16:48, :3], 0)


def _raw_image_pdf(tmp_path: Path, name: str, raw: bytes, w: int, h: int, bpc: int, cs: str) -> Path:
    doc = F.new_doc()
    page = doc.new_page()
    xref = F.add_image(page, (20, 20, 20 + w, 20 + h), F.png_bytes(F.texture(8, 8, 0)))
    F.replace_image_raw(doc, xref, raw, w, h, bpc, cs)
    return F.save(doc, tmp_path / name)


def test_16_bit_gray(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    g16 = (rng.integers(0, 256, (40, 50)) * 257).astype(">u2")  # values exactly representable in 8 bits
    path = _raw_image_pdf(tmp_path, "g16.pdf", g16.tobytes(), 50, 40, 16, "/DeviceGray")
    (rec,) = extract_document(path, tmp_path, ExtractLimits(split=False)).records
    expected = np.repeat((g16.astype(np.int64) // 257).astype(np.uint8)[..., None], 3, axis=2)
    assert_same(pixels(rec), expected, 0.5)


def test_16_bit_rgb(tmp_path: Path) -> None:
    img = F.texture(30, 40, 9)
    rgb16 = (img.astype(">u2") * 257)
    path = _raw_image_pdf(tmp_path, "rgb16.pdf", rgb16.tobytes(), 40, 30, 16, "/DeviceRGB")
    (rec,) = extract_document(path, tmp_path, ExtractLimits(split=False)).records
    assert_same(pixels(rec), img, 0.5)


def test_1_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    bits = rng.integers(0, 2, (48, 64)).astype(np.uint8)  # 1 = white in DeviceGray
    raw = np.packbits(bits, axis=1).tobytes()
    path = _raw_image_pdf(tmp_path, "bw.pdf", raw, 64, 48, 1, "/DeviceGray")
    (rec,) = extract_document(path, tmp_path, ExtractLimits(split=False)).records
    expected = np.repeat((bits * 255)[..., None], 3, axis=2)
    assert_same(pixels(rec), expected, 0)


def test_indexed(tmp_path: Path) -> None:
    palette = np.array([[255, 0, 0], [0, 128, 0], [0, 0, 255], [20, 20, 20]], np.uint8)
    rng = np.random.default_rng(11)
    idx = rng.integers(0, 4, (40, 40)).astype(np.uint8)
    cs = f"[/Indexed /DeviceRGB 3 <{palette.tobytes().hex()}>]"
    path = _raw_image_pdf(tmp_path, "indexed.pdf", idx.tobytes(), 40, 40, 8, cs)
    (rec,) = extract_document(path, tmp_path, ExtractLimits(split=False)).records
    assert_same(pixels(rec), palette[idx], 0)


def test_inline_image_is_extracted_with_its_own_pixels(tmp_path: Path) -> None:
    img = F.texture(40, 60, 12)
    doc = F.new_doc()
    page = doc.new_page(width=400, height=500)
    rect = (100, 100, 220, 180)  # drawn at 2x: own pixels must stay 60x40
    page.insert_text((20, 30), "inline image below")
    F.set_contents(doc, page, F.inline_image_ops(img, F.placement_cm(rect, 500)))
    path = F.save(doc, tmp_path / "inline.pdf")
    res = extract_document(path, tmp_path)
    assert res.errors == []
    (rec,) = res.records
    assert_bbox(rec, rect)
    assert (rec.width, rec.height) == (60, 40)
    assert_same(pixels(rec), img, 0)


def test_compound_figure_with_white_gutters_and_letters(tmp_path: Path) -> None:
    comp = F.compound_figure(rows=2, cols=3, panel=(110, 140), gutter=16, seed=1)
    h, w = comp.image.shape[:2]
    doc = F.new_doc()
    page = doc.new_page(width=612, height=792)
    rect = (30, 50, 30 + w * 0.75, 50 + h * 0.75)  # scaled placement: bboxes must be mapped
    F.add_image(page, rect, F.png_bytes(comp.image))
    path = F.save(doc, tmp_path / "compound.pdf")

    res = extract_document(path, tmp_path)
    parent = [r for r in res.records if r.parent_id is None]
    panels = [r for r in res.records if r.parent_id is not None]
    assert len(parent) == 1 and FLAG_COMPOUND in parent[0].flags
    assert_bbox(parent[0], rect)
    assert len(panels) == 6
    assert all(p.parent_id == parent[0].figure_id for p in panels)
    for p, (bx0, by0, bx1, by1) in zip(panels, comp.boxes):
        expected = (rect[0] + bx0 * 0.75, rect[1] + by0 * 0.75, rect[0] + bx1 * 0.75, rect[1] + by1 * 0.75)
        assert_bbox(p, expected)
        assert_same(pixels(p), comp.image[by0:by1, bx0:bx1], 0)


def test_compound_figure_of_light_grey_blots(tmp_path: Path) -> None:
    comp = F.compound_figure(rows=2, cols=2, panel=(70, 180), gutter=12, seed=2, blots=True)
    path = F.simple_pdf(tmp_path / "blots.pdf", [comp.image])
    res = extract_document(path, tmp_path)
    panels = [r for r in res.records if r.parent_id is not None]
    assert len(panels) == 4
    for p, (bx0, by0, bx1, by1) in zip(panels, comp.boxes):
        assert_bbox(p, (40 + bx0, 40 + by0, 40 + bx1, 40 + by1))
        assert_same(pixels(p), comp.image[by0:by1, bx0:bx1], 0)


def test_single_panel_with_white_margin_is_not_split(tmp_path: Path) -> None:
    img = np.full((200, 260, 3), 255, np.uint8)
    img[20:180, 20:240] = F.texture(160, 220, 13)
    path = F.simple_pdf(tmp_path / "one.pdf", [img])
    (rec,) = extract_document(path, tmp_path).records
    assert rec.flags == ()


def test_tiny_and_uniform_flags(tmp_path: Path) -> None:
    doc = F.new_doc()
    page = doc.new_page()
    F.add_image(page, (20, 20, 32, 32), F.png_bytes(F.texture(12, 12, 14)))          # icon
    F.add_image(page, (20, 100, 220, 300), F.png_bytes(np.full((100, 100, 3), 200, np.uint8)))  # solid fill
    F.add_image(page, (20, 400, 220, 500), F.png_bytes(F.texture(100, 200, 15)))     # real figure
    path = F.save(doc, tmp_path / "noise.pdf")
    recs = sorted(extract_document(path, tmp_path).records, key=lambda r: r.y0)
    assert len(recs) == 3
    assert FLAG_TINY in recs[0].flags
    assert FLAG_UNIFORM in recs[1].flags
    assert recs[2].flags == () and not recs[2].is_noise


def test_jpx_image(tmp_path: Path) -> None:
    import io

    from PIL import Image, features

    if not features.check("jpg_2000"):
        pytest.skip("Pillow without OpenJPEG cannot write the fixture")
    img = F.texture(48, 64, 16)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG2000", irreversible=False)  # lossless wavelet
    doc = F.new_doc()
    page = doc.new_page()
    xref = F.add_image(page, (30, 30, 94, 78), buf.getvalue())
    assert "JPXDecode" in doc.xref_object(xref)
    path = F.save(doc, tmp_path / "jpx.pdf")
    (rec,) = extract_document(path, tmp_path, ExtractLimits(split=False)).records
    assert_bbox(rec, (30, 30, 94, 78))
    assert_same(pixels(rec), img, 1.0)


@pytest.mark.parametrize("rotation", [0, 90])
def test_cropbox_offset_page_matches_the_displayed_page(tmp_path: Path, rotation: int) -> None:
    img = F.texture(100, 160, 17)
    doc = F.new_doc()
    page = doc.new_page(width=600, height=800)
    F.add_image(page, (100, 150, 260, 250), F.png_bytes(img))
    page.set_cropbox(pymupdf.Rect(50, 100, 550, 700))
    page.set_rotation(rotation)
    path = F.save(doc, tmp_path / "crop.pdf")
    (rec,) = extract_document(path, tmp_path).records
    assert_bbox(rec, (50, 50, 210, 150) if rotation == 0 else (450, 50, 550, 210))
    with pymupdf.open(path) as d:
        shown = d[0].get_pixmap(alpha=False)
        page_px = np.frombuffer(shown.samples, np.uint8).reshape(shown.h, shown.w, 3)
    x0, y0, x1, y1 = (int(round(v)) for v in rec.bbox)
    assert_same(pixels(rec)[3:-3, 3:-3], page_px[y0:y1, x0:x1][3:-3, 3:-3], mean_tol=12)
