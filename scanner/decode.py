"""Turning decoded images into the RGB pixels a human would recognise, upright as on the page.

Everything here works on numpy arrays (H, W, 3) uint8. PyMuPDF, Pillow and OpenCV are
imported lazily so that importing the scanner does no work.
"""
from __future__ import annotations

import functools
import io
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pymupdf
    from PIL import Image


class DecompressionBombError(ValueError):
    """An image declares more pixels than the configured cap."""


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """Raise `DecompressionBombError` when width*height exceeds `max_pixels`."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise DecompressionBombError(
            f"decompression bomb: image declares {width}x{height} = {width * height:.3g} pixels "
            f"> cap {max_pixels:.3g}"
        )


def composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-blend `rgb` (H, W, 3) over white using `alpha` (H, W) in 0..255."""
    a = alpha.astype(np.float32)[..., None] / 255.0
    out = rgb.astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def pixmap_to_rgb(pix: pymupdf.Pixmap, mask: pymupdf.Pixmap | None = None) -> np.ndarray:
    """RGB array of a MuPDF pixmap, colour-converted by MuPDF, transparency composited on white.

    `mask` is an optional soft mask (an SMask image's pixmap, one channel) of the same
    size; it is applied as alpha. MuPDF already handled CMYK (including Adobe's
    inverted JPEGs via /Decode), indexed colour, 1/2/4/16 bits per component,
    JPX and JBIG2 when it decoded `pix`.
    """
    import pymupdf

    alpha: np.ndarray | None = None
    if pix.colorspace is None:
        # An alpha-only pixmap (a stencil /ImageMask: 255 = paint): black ink on white.
        # `scanner.stencils` paints it in its fill colour instead when it knows the placement.
        samples = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, pix.n)
        gray = 255 - samples[..., -1]
        return np.repeat(gray[..., None], 3, axis=2).copy()
    if pix.alpha:
        samples = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, pix.n)
        alpha = samples[..., -1].copy()
        pix = pymupdf.Pixmap(pix, 0)  # drop alpha
    if pix.colorspace.n != 3 or pix.n != 3:
        pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    rgb = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, pix.n)[..., :3]
    if mask is not None and mask.width == pix.width and mask.height == pix.height:
        m = np.frombuffer(mask.samples, dtype=np.uint8).reshape(mask.height, mask.width, mask.n)
        alpha = m[..., 0].copy() if alpha is None else np.minimum(alpha, m[..., 0])
    elif mask is not None:
        # SMask of another resolution: resample it to the image (nearest neighbour is enough).
        m = np.frombuffer(mask.samples, dtype=np.uint8).reshape(mask.height, mask.width, mask.n)[..., 0]
        ys = (np.arange(pix.height) * mask.height // max(pix.height, 1)).clip(0, mask.height - 1)
        xs = (np.arange(pix.width) * mask.width // max(pix.width, 1)).clip(0, mask.width - 1)
        m = m[ys][:, xs]
        alpha = m if alpha is None else np.minimum(alpha, m)
    if alpha is not None:
        return composite_on_white(rgb, alpha)
    return np.ascontiguousarray(rgb)


def pil_to_rgb(img: Image.Image) -> np.ndarray:
    """RGB array of a Pillow image of any mode: 16-bit and float scaled, alpha composited on white.

    Pillow decodes Adobe (inverted) CMYK JPEGs with the right polarity; its CMYK->RGB
    conversion is the naive one.
    """

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float64)
        hi = 65535.0 if (mode.startswith("I;16") or arr.max(initial=0) > 255) else 255.0
        gray = np.clip(np.rint(arr * (255.0 / hi)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img).astype(np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        gray = np.clip(np.rint((np.nan_to_num(arr, nan=lo) - lo) * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(img.convert("RGBA"))
        return composite_on_white(rgba[..., :3], rgba[..., 3])
    if mode != "RGB":
        img = img.convert("RGB")
    if "transparency" in img.info and mode == "RGB":
        rgba = np.asarray(img.convert("RGBA"))
        return composite_on_white(rgba[..., :3], rgba[..., 3])
    return np.asarray(img, dtype=np.uint8).copy()


def orient_like_placement(rgb: np.ndarray, matrix: tuple[float, ...] | Any) -> np.ndarray:
    """The image pixels as they appear on the page under placement `matrix`.

    `matrix` is the PyMuPDF (a, b, c, d, e, f) transform that maps the image's unit
    square (top-left origin, u to the right, v down) onto the displayed page
    (placement transform times the page's rotation matrix). The nearest of the 8
    rotations/mirrors is applied so the returned array's rows run down the page and
    its columns run to the right; skew and non-right-angle rotations are ignored.
    """
    a, b, c, d = (float(matrix[i]) for i in range(4))
    if abs(b) + abs(c) > abs(a) + abs(d):
        # u runs along the page's y axis: transpose first, then rows follow u (sign b), columns v (sign c).
        out = np.transpose(rgb, (1, 0, 2))
        if b < 0:
            out = out[::-1, :]
        if c < 0:
            out = out[:, ::-1]
    else:
        out = rgb
        if d < 0:
            out = out[::-1, :]
        if a < 0:
            out = out[:, ::-1]
    return np.ascontiguousarray(out)


def encode_png(rgb: np.ndarray) -> bytes:
    """Lossless PNG bytes of an RGB array, made fast: encoding was a quarter of extraction's CPU.

    libpng (OpenCV) with zlib level 1, the "up" filter on every row and run-length matching: on the
    real papers' panels 1.9x faster than Pillow's level 1 (adaptive filters), files of the same size,
    1.6x faster to decode (`benchmarks/bench_png.py`). With one OpenCV build the bytes are a
    deterministic function of the pixels, so `scanner.noise.pixel_hash` of a panel is too.
    """
    import cv2

    bgr = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[:, :, ::-1])
    ok, buf = cv2.imencode(".png", bgr, _png_params())
    if not ok:  # pragma: no cover - libpng refuses only impossible shapes
        raise ValueError(f"could not encode a {rgb.shape} image as PNG")
    return buf.tobytes()


@functools.cache
def _png_params() -> list[int]:
    import cv2

    return [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP,
            cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]


def decode_png(data: bytes) -> np.ndarray:
    """RGB array of PNG bytes (the `image` column of the figure store)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB")).copy()
