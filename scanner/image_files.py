"""The image-file backend: PNG, JPEG, TIFF (every frame of a multi-page TIFF is a page), BMP, WebP.

The whole image is one placement; its bbox is the image in pixels taken as points.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageOps

from scanner.decode import DecompressionBombError, check_pixels, pil_to_rgb
from scanner.document import DocumentResult, DocumentTimeout, ExtractLimits
from scanner.placement import records_for_placement


def _frames(img: Image.Image, max_frames: int) -> Iterator[int]:
    n = getattr(img, "n_frames", 1) or 1
    yield from range(min(n, max_frames))


def extract_image_file(path: Path, result: DocumentResult, limits: ExtractLimits) -> None:
    """Fill `result` from an image file (every frame of a multi-page TIFF is a page)."""
    Image.MAX_IMAGE_PIXELS = None  # we enforce our own cap, before decoding
    try:
        img = Image.open(path)
    except Exception as exc:
        result.error("open", f"cannot open image: {type(exc).__name__}: {exc}")
        return
    with img:
        n = getattr(img, "n_frames", 1) or 1
        if n > limits.max_pages:
            result.error("pages", f"{n} frames exceed the cap of {limits.max_pages}; only the first {limits.max_pages} were extracted")
        for i in _frames(img, limits.max_pages):
            try:
                img.seek(i)
                check_pixels(img.size[0], img.size[1], limits.max_image_pixels)
                img.load()
                frame = ImageOps.exif_transpose(img) if i == 0 else img
                rgb = pil_to_rgb(frame)
                h, w = rgb.shape[:2]
                result.records.extend(
                    records_for_placement(
                        rgb, (0.0, 0.0, float(w), float(h)), doc=result.doc, doc_sha256=result.doc_sha256,
                        page=i + 1, placement=0, limits=limits, bbox_is_pixels=True,
                    )
                )
            except DocumentTimeout:
                raise
            except Exception as exc:
                result.error("decode", f"frame {i + 1}: {type(exc).__name__}: {exc}")
                if isinstance(exc, (DecompressionBombError, OSError)) and i == 0:
                    break
            result.pages = i + 1
