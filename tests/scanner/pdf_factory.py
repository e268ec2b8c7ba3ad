"""Builders of test PDFs and images with known content and known placements.

Everything is generated with PyMuPDF, Pillow and numpy (no files on disk are
needed): textured images that no splitter would cut, compound figures with
white gutters and panel letters, light-grey blot panels, raw image XObjects
with unusual encodings (16-bit, 1-bit, indexed), hand-written content streams
for mirrored placements and inline images, and every kind of broken input.
Also used by `benchmarks/bench_extract.py` to build a corpus.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image, ImageDraw, ImageFont

# ----------------------------------------------------------------------------- images


def texture(h: int, w: int, seed: int, dark: bool = True) -> np.ndarray:
    """A smooth random RGB texture (no white anywhere when `dark`): one panel, never split."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 200 if dark else 256, size=(max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.BILINEAR)
    arr = np.asarray(img).copy()
    # an asymmetric marker so orientation errors are visible: a bright-red top-left block
    arr[: max(2, h // 5), : max(2, w // 5)] = (230, 20, 20)
    return arr


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    mode = "L" if arr.ndim == 2 else {3: "RGB", 4: "RGBA"}[arr.shape[2]]
    Image.fromarray(arr, mode).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(arr: np.ndarray, mode: str = "RGB", quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").convert(mode).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # old Pillow
        return ImageFont.load_default()


@dataclass(frozen=True)
class Compound:
    """A compound figure raster and where its panels are (pixel boxes x0, y0, x1, y1)."""

    image: np.ndarray
    boxes: list[tuple[int, int, int, int]]


def compound_figure(
    rows: int = 2, cols: int = 2, panel: tuple[int, int] = (120, 160), gutter: int = 14,
    margin: int = 10, seed: int = 0, letters: bool = True, blots: bool = False,
) -> Compound:
    """A white figure of rows x cols panels; letters A, B, ... sit in the gutters at each panel's top-left.

    With `blots`, panels are western-blot-like: dark bands on a light-grey (~225) background.
    """
    ph, pw = panel
    H = 2 * margin + rows * ph + (rows - 1) * gutter + (gutter if letters else 0)
    W = 2 * margin + cols * pw + (cols - 1) * gutter
    img = np.full((H, W, 3), 255, np.uint8)
    top = margin + (gutter if letters else 0)
    boxes = []
    k = 0
    for r in range(rows):
        for c in range(cols):
            y0 = top + r * (ph + gutter)
            x0 = margin + c * (pw + gutter)
            if blots:
                rng = np.random.default_rng(seed * 100 + k)
                p = np.full((ph, pw, 3), 225, np.uint8) + rng.integers(-3, 4, size=(ph, pw, 1)).astype(np.uint8)
                for lane in range(4):
                    cx = int((lane + 0.5) * pw / 4)
                    cy = int(rng.integers(ph // 4, 3 * ph // 4))
                    yy, xx = np.mgrid[0:ph, 0:pw]
                    band = np.exp(-(((xx - cx) / (pw / 10)) ** 2) - ((yy - cy) / 5.0) ** 2) * rng.uniform(80, 180)
                    p = np.clip(p.astype(np.float32) - band[..., None], 0, 255).astype(np.uint8)
            else:
                p = texture(ph, pw, seed * 100 + k)
            img[y0:y0 + ph, x0:x0 + pw] = p
            boxes.append((x0, y0, x0 + pw, y0 + ph))
            k += 1
    if letters:
        pil = Image.fromarray(img)
        draw = ImageDraw.Draw(pil)
        font = _font(max(8, gutter - 2))
        for i, (x0, y0, _, _) in enumerate(boxes):
            draw.text((x0, y0 - gutter + 1), "ABCDEFGHIJKLMNOP"[i], fill=(0, 0, 0), font=font)
        img = np.asarray(pil).copy()
    return Compound(img, boxes)


# ----------------------------------------------------------------------------- PDFs


def new_doc() -> pymupdf.Document:
    return pymupdf.open()


def add_image(page: pymupdf.Page, rect: tuple[float, float, float, float], data: bytes, rotate: int = 0) -> int:
    """Place an encoded image (PNG/JPEG bytes) at `rect` (unrotated page coords); returns its xref."""
    return page.insert_image(pymupdf.Rect(rect), stream=data, rotate=rotate, keep_proportion=False)


def set_contents(doc: pymupdf.Document, page: pymupdf.Page, content: bytes) -> None:
    """Replace the page's content stream(s) by `content` (resources are kept)."""
    xrefs = page.get_contents()
    doc.update_stream(xrefs[0], content)
    for x in xrefs[1:]:
        doc.update_stream(x, b"")


def image_name(page: pymupdf.Page, xref: int) -> str:
    """Resource name under which `xref` is drawn on `page` (e.g. fzImg0)."""
    for item in page.get_images(full=True):
        if item[0] == xref:
            return item[7]
    raise KeyError(xref)


def placement_cm(rect: tuple[float, float, float, float], page_height: float, mirror_x: bool = False, mirror_y: bool = False) -> str:
    """PDF `cm` operands drawing an image's unit square into top-left-origin `rect`, optionally mirrored."""
    x0, y0, x1, y1 = rect
    w, h = x1 - x0, y1 - y0
    a, ex = (-w, x1) if mirror_x else (w, x0)
    d, fy = (-h, page_height - y0) if mirror_y else (h, page_height - y1)
    return f"{a:g} 0 0 {d:g} {ex:g} {fy:g}"


def replace_image_raw(
    doc: pymupdf.Document, xref: int, raw: bytes, width: int, height: int, bpc: int, colorspace: str,
) -> None:
    """Turn image XObject `xref` into a Flate stream of `raw` samples with the given dictionary."""
    for key in ("SMask", "Mask", "Decode", "DecodeParms", "Filter", "Intent"):
        doc.xref_set_key(xref, key, "null")
    doc.xref_set_key(xref, "Width", str(width))
    doc.xref_set_key(xref, "Height", str(height))
    doc.xref_set_key(xref, "BitsPerComponent", str(bpc))
    doc.xref_set_key(xref, "ColorSpace", colorspace)
    doc.update_stream(xref, raw, new=True)


def inline_image_ops(arr: np.ndarray, cm: str) -> bytes:
    """Content-stream operators drawing RGB `arr` as an inline image (ASCIIHex) with `cm`."""
    h, w = arr.shape[:2]
    data = arr.astype(np.uint8).tobytes().hex().encode() + b">"
    return (
        f"q {cm} cm\nBI /W {w} /H {h} /CS /RGB /BPC 8 /F /AHx ID\n".encode() + data + b"\nEI\nQ\n"
    )


def save(doc: pymupdf.Document, path: Path, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path, **kwargs)  # type: ignore[arg-type]
    doc.close()
    return path


def simple_pdf(path: Path, images: list[np.ndarray], pages: int = 1, size: tuple[float, float] = (612, 792)) -> Path:
    """A PDF whose every page shows `images` side by side down the page, 1 point per pixel."""
    doc = new_doc()
    for _ in range(pages):
        page = doc.new_page(width=size[0], height=size[1])
        y = 40.0
        for arr in images:
            h, w = arr.shape[:2]
            add_image(page, (40, y, 40 + w, y + h), png_bytes(arr))
            y += h + 20
    return save(doc, path)


# ----------------------------------------------------------------------------- bad inputs


def zero_byte(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def not_a_pdf(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<html><body>404 Not Found</body></html>\n")
    return path


def truncated(path: Path, good: Path, keep: float = 0.4) -> Path:
    data = good.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def encrypted(path: Path, image: np.ndarray) -> Path:
    doc = new_doc()
    page = doc.new_page()
    add_image(page, (50, 50, 50 + image.shape[1], 50 + image.shape[0]), png_bytes(image))
    return save(doc, path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner")


def broken_xref(path: Path, good: Path) -> Path:
    """`good` with its xref table and startxref offset garbled (MuPDF has to repair it)."""
    data = good.read_bytes()
    data = re.sub(rb"startxref\s+\d+", b"startxref\n999999", data)
    data = re.sub(rb"\d{10} \d{5} n", b"0000000017 00000 n", data)
    path.write_bytes(data)
    return path


def bomb_pdf(path: Path, good_image: np.ndarray, side: int = 60_000) -> Path:
    """One page with a normal image and an image that declares side x side pixels (tiny stream)."""
    doc = new_doc()
    page = doc.new_page()
    add_image(page, (40, 40, 40 + good_image.shape[1], 40 + good_image.shape[0]), png_bytes(good_image))
    xref = add_image(page, (40, 400, 240, 600), png_bytes(texture(32, 32, seed=99)))
    replace_image_raw(doc, xref, b"\x00" * 64, side, side, 1, "/DeviceGray")
    return save(doc, path)
