"""Stencil images (/ImageMask), stencil and colour-key /Mask, and broken image streams.

The test PDFs are built from raw PDF objects: a 1-bit stencil (Flate or CCITT G4,
as in scanned figures of older papers) drawn after setting a fill colour.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image, TiffImagePlugin

from scanner.decode import decode_png, pixmap_to_rgb
from scanner.extract import extract_document
from scanner.records import PanelRecord
from scanner.stencils import paint_stencil
from tests.scanner import pdf_factory as F

Encoder = Callable[[np.ndarray], tuple[bytes, dict[str, str]]]
W, H = 96, 60
PAGE = 400.0


def stencil_bits() -> np.ndarray:
    """True where the stencil paints: an asymmetric shape (a block top-left, a bar at the bottom)."""
    paint = np.zeros((H, W), bool)
    paint[4:24, 6:40] = True
    paint[50:56, 10:90] = True
    paint[:, 0:3] = True
    return paint


def flate_stencil(paint: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """Raw 1-bit samples (0 = paint, the /ImageMask default; PyMuPDF Flate-compresses them)."""
    return np.packbits(~paint, axis=1).tobytes(), {}


def ccitt_stencil(paint: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """CCITT G4 (K -1) data of the stencil, as a fax scanner writes it (black = paint)."""
    buf = io.BytesIO()
    # Pillow's mode-1 TIFF is BlackIsZero, and libtiff's G4 coder turns its 1 bits into black runs.
    Image.fromarray(paint).save(buf, "TIFF", compression="group4", strip_size=1 << 24)
    tiff = Image.open(io.BytesIO(buf.getvalue()))
    assert isinstance(tiff, TiffImagePlugin.TiffImageFile)
    (offset,), (count,) = tiff.tag_v2[273], tiff.tag_v2[279]
    h, w = paint.shape
    data = buf.getvalue()[offset:offset + count]
    return data, {"Filter": "/CCITTFaxDecode", "DecodeParms": f"<< /K -1 /Columns {w} /Rows {h} >>"}


def stencil_pdf(path: Path, placements: list[tuple[tuple[float, float, float, float], str, bool]],
                encode: Encoder = flate_stencil, rotation: int = 0, decode_inverted: bool = False) -> Path:
    """One page drawing the same stencil at each (rect, fill operator, mirror_y) with a plain image beside it."""
    paint = stencil_bits()
    data, extra = encode(~paint if decode_inverted else paint)
    doc = F.new_doc()
    page = doc.new_page(width=PAGE, height=PAGE)
    photo = F.add_image(page, (250, 300, 350, 380), F.png_bytes(F.texture(80, 100, seed=5)))
    holder = F.add_image(page, (0, 0, 10, 10), F.png_bytes(F.texture(H, W, seed=6)))
    name, photo_name = F.image_name(page, holder), F.image_name(page, photo)
    decode = "/Decode [1 0]" if decode_inverted else ""
    doc.update_object(holder, f"<< /Type /XObject /Subtype /Image /Width {W} /Height {H} /ImageMask true "
                              f"/BitsPerComponent 1 {decode} >>")
    doc.update_stream(holder, data, new=True, compress=not extra)
    for key, value in extra.items():  # after the stream: update_stream drops a raw stream's filter
        doc.xref_set_key(holder, key, value)
    ops = [f"q {F.placement_cm((250, 300, 350, 380), PAGE)} cm /{photo_name} Do Q"]
    for rect, fill, mirror_y in placements:
        ops.append(f"q {fill} {F.placement_cm(rect, PAGE, mirror_y=mirror_y)} cm /{name} Do Q")
    F.set_contents(doc, page, "\n".join(ops).encode())
    if rotation:
        page.set_rotation(rotation)
    return F.save(doc, path)


def figure_records(res_records: list[PanelRecord]) -> list[PanelRecord]:
    return [r for r in res_records if r.parent_id is None]


def near(a: tuple[float, ...], b: tuple[float, ...], tol: float = 1.0) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def expected(paint: np.ndarray, fill: tuple[int, int, int]) -> np.ndarray:
    out = np.full((*paint.shape, 3), 255, np.uint8)
    out[paint] = fill
    return out


@pytest.mark.parametrize("encode", [flate_stencil, ccitt_stencil], ids=["flate", "ccitt-g4"])
def test_image_mask_is_extracted_in_its_fill_colour_on_white(tmp_path: Path, encode: Encoder) -> None:
    rect = (40.0, 50.0, 40.0 + W, 50.0 + H)
    path = stencil_pdf(tmp_path / "s.pdf", [(rect, "0.2 0.4 0.8 rg", False)], encode=encode)
    res = extract_document(path, tmp_path)
    assert res.errors == []
    figs = figure_records(res.records)
    assert len(figs) == 2  # the photo beside it is still there
    rec = next(r for r in figs if near(r.bbox, rect))
    assert (rec.width, rec.height) == (W, H)
    want = expected(stencil_bits(), (51, 102, 204))
    np.testing.assert_array_equal(decode_png(rec.image), want)
    with pymupdf.open(path) as doc:  # and that is what MuPDF displays (1 pt = 1 px here)
        shown = pixmap_to_rgb(doc[0].get_pixmap(clip=pymupdf.Rect(rect), alpha=False))
    assert shown.shape == want.shape and (np.abs(shown.astype(int) - want).max(axis=2) < 8).mean() > 0.99


def test_image_mask_with_inverted_decode(tmp_path: Path) -> None:
    rect = (40.0, 50.0, 40.0 + W, 50.0 + H)
    path = stencil_pdf(tmp_path / "s.pdf", [(rect, "0 g", False)], decode_inverted=True)
    rec = next(r for r in figure_records(extract_document(path, tmp_path).records) if near(r.bbox, rect))
    np.testing.assert_array_equal(decode_png(rec.image), expected(stencil_bits(), (0, 0, 0)))


def test_one_stencil_drawn_twice_in_two_colours_and_cmyk(tmp_path: Path) -> None:
    a = (20.0, 20.0, 20.0 + W, 20.0 + H)
    b = (20.0, 150.0, 20.0 + W, 150.0 + H)
    path = stencil_pdf(tmp_path / "s.pdf", [(a, "1 0 0 rg", False), (b, "0 0 0 1 k", False)])
    figs = figure_records(extract_document(path, tmp_path).records)
    rec_a = next(r for r in figs if near(r.bbox, a))
    rec_b = next(r for r in figs if near(r.bbox, b))
    np.testing.assert_array_equal(decode_png(rec_a.image), expected(stencil_bits(), (255, 0, 0)))
    ink_b = decode_png(rec_b.image)[stencil_bits()]
    assert ink_b.max() < 80  # CMYK black, converted by MuPDF (not necessarily 0,0,0)
    assert (decode_png(rec_b.image)[~stencil_bits()] == 255).all()


@pytest.mark.parametrize("rotation", [0, 90])
def test_flipped_stencil_is_upright_as_displayed(tmp_path: Path, rotation: int) -> None:
    """Scanned stencils are often drawn with a negative y scale; pixels must match the rendered page."""
    rect = (60.0, 80.0, 60.0 + 2 * W, 80.0 + 2 * H)
    path = stencil_pdf(tmp_path / "s.pdf", [(rect, "0 g", True)], rotation=rotation)
    res = extract_document(path, tmp_path)
    doc = pymupdf.open(path)
    page = doc[0]
    bbox = (pymupdf.Rect(rect) * page.rotation_matrix).normalize()
    rec = next(r for r in figure_records(res.records) if near(r.bbox, tuple(bbox)))
    got = decode_png(rec.image)
    pix = page.get_pixmap(matrix=pymupdf.Matrix(got.shape[1] / bbox.width, got.shape[0] / bbox.height),
                          clip=bbox, alpha=False)
    shown = pixmap_to_rgb(pix)[: got.shape[0], : got.shape[1]]
    agree = (np.abs(shown.astype(int) - got[: shown.shape[0], : shown.shape[1]].astype(int)).max(axis=2) < 64).mean()
    assert agree > 0.97
    doc.close()


def test_colour_key_and_stencil_mask_are_composited_on_white(tmp_path: Path) -> None:
    doc = F.new_doc()
    page = doc.new_page(width=PAGE, height=PAGE)
    green = np.zeros((H, W, 3), np.uint8)
    green[..., 1] = 200
    green[10:30, 10:30] = (255, 0, 255)  # the key colour: transparent
    key = F.add_image(page, (20, 20, 20 + W, 20 + H), F.png_bytes(F.texture(H, W, seed=1)))
    F.replace_image_raw(doc, key, green.tobytes(), W, H, 8, "/DeviceRGB")
    doc.xref_set_key(key, "Mask", "[250 255 0 5 250 255]")
    photo = F.texture(H, W, seed=2)
    masked = F.add_image(page, (20, 150, 20 + W, 150 + H), F.png_bytes(photo))
    F.replace_image_raw(doc, masked, photo.tobytes(), W, H, 8, "/DeviceRGB")
    mask = doc.get_new_xref()
    doc.update_object(mask, f"<< /Type /XObject /Subtype /Image /Width {W} /Height {H} /ImageMask true /BitsPerComponent 1 >>")
    doc.update_stream(mask, flate_stencil(stencil_bits())[0], new=True)
    doc.xref_set_key(masked, "Mask", f"{mask} 0 R")
    path = F.save(doc, tmp_path / "m.pdf")
    res = extract_document(path, tmp_path)
    assert res.errors == []
    figs = figure_records(res.records)
    got_key = decode_png(next(r for r in figs if near(r.bbox, (20, 20, 20 + W, 20 + H))).image)
    want_key = green.copy()
    want_key[10:30, 10:30] = 255
    np.testing.assert_array_equal(got_key, want_key)
    got_masked = decode_png(next(r for r in figs if near(r.bbox, (20, 150, 20 + W, 150 + H))).image)
    paint = stencil_bits()
    np.testing.assert_array_equal(got_masked[paint], photo[paint])
    assert (got_masked[~paint] == 255).all()


def test_broken_image_stream_is_a_decode_line_and_the_page_keeps_its_other_images(tmp_path: Path) -> None:
    doc = F.new_doc()
    page = doc.new_page(width=PAGE, height=PAGE)
    good = F.texture(80, 100, seed=1)
    F.add_image(page, (20, 20, 120, 100), F.png_bytes(good))
    bad_jpeg = F.add_image(page, (20, 200, 120, 280), F.jpeg_bytes(F.texture(80, 100, seed=2)))
    doc.update_stream(bad_jpeg, b"\xff\xd8\xff\xe0garbage" * 10, new=False, compress=False)
    bad_flate = F.add_image(page, (200, 200, 300, 280), F.png_bytes(F.texture(80, 100, seed=3)))
    F.replace_image_raw(doc, bad_flate, b"", 100, 80, 8, "/DeviceRGB")
    doc.update_stream(bad_flate, b"x\x9c\x00garbagegarbage", new=False, compress=False)
    doc.xref_set_key(bad_flate, "Filter", "/FlateDecode")
    path = F.save(doc, tmp_path / "broken.pdf")
    res = extract_document(path, tmp_path)
    stages = {(e.stage, e.error.split(":")[0]) for e in res.errors}
    assert len(res.errors) == 2 and stages == {("decode", f"image xref {bad_jpeg}"), ("decode", f"image xref {bad_flate}")}
    assert all("damaged image stream" in e.error for e in res.errors)
    rec = next(r for r in figure_records(res.records) if near(r.bbox, (20, 20, 120, 100)))
    np.testing.assert_array_equal(decode_png(rec.image), good)


def test_paint_stencil_and_alpha_only_pixmap(tmp_path: Path) -> None:
    paint = np.array([[0, 255], [128, 255]], np.uint8)
    out = paint_stencil(paint, (10, 20, 30))
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 1].tolist() == [10, 20, 30]
    assert out[1, 0].tolist() == [132, 137, 142]  # half coverage blends with white
    path = stencil_pdf(tmp_path / "s.pdf", [((10, 10, 10 + W, 10 + H), "0 g", False)])
    with pymupdf.open(path) as doc:
        xref = next(x for x in range(1, doc.xref_length()) if doc.xref_get_key(x, "ImageMask")[1] == "true")
        pix = pymupdf.Pixmap(doc, xref)  # alpha only, no colorspace: what used to fail to decode
        assert pix.colorspace is None and pix.alpha
        np.testing.assert_array_equal(pixmap_to_rgb(pix), expected(stencil_bits(), (0, 0, 0)))


def test_inline_stencil_is_painted_in_its_fill_colour(tmp_path: Path) -> None:
    paint = stencil_bits()
    data = np.packbits(~paint, axis=1).tobytes().hex().encode() + b">"
    doc = F.new_doc()
    page = doc.new_page(width=PAGE, height=PAGE)
    page.insert_text((10, 390), "x")  # gives the page a content stream to replace
    rect = (40.0, 50.0, 40.0 + W, 50.0 + H)
    F.set_contents(doc, page, f"q 1 0 0 rg {F.placement_cm(rect, PAGE)} cm\nBI /W {W} /H {H} /IM true /BPC 1 /F /AHx ID\n".encode()
                   + data + b"\nEI\nQ\n")
    path = F.save(doc, tmp_path / "inline.pdf")
    res = extract_document(path, tmp_path)
    assert res.errors == []
    (rec,) = figure_records(res.records)
    assert near(rec.bbox, rect)
    np.testing.assert_array_equal(decode_png(rec.image), expected(paint, (255, 0, 0)))


def test_time_budget_alarm_during_the_colour_pass_is_raised_in_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGALRM arriving while MuPDF runs the colour device surfaces as DocumentTimeout, not as a MuPDF error."""
    import os
    import signal

    from scanner import stencils
    from scanner.document import DocumentTimeout

    path = stencil_pdf(tmp_path / "s.pdf", [((10, 10, 10 + W, 10 + H), "0 g", False)])
    original = stencils._StencilFillDevice.fill_image_mask

    def alarm_then_record(self: stencils._StencilFillDevice, *args: object) -> None:
        os.kill(os.getpid(), signal.SIGALRM)  # as the per-document timer would
        original(self, *args)  # type: ignore[arg-type]

    def on_alarm(signum: int, frame: object) -> None:
        raise DocumentTimeout()

    monkeypatch.setattr(stencils._StencilFillDevice, "fill_image_mask", alarm_then_record)
    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        with pymupdf.open(path) as doc, pytest.raises(DocumentTimeout):
            stencils.stencil_fills(doc[0])
    finally:
        signal.signal(signal.SIGALRM, previous)
