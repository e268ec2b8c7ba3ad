"""The PDF backend: every image placement of every page, as displayed, with its own pixels.

Coordinates: placements are reported in the coordinates of the page as it is
displayed, i.e. `page.rect` (PDF points, top-left origin, after the page's
/Rotate), which is also the space of `page.get_pixmap()` and of its `clip`
argument. Panel pixels are shown upright as on the displayed page: the
placement's rotation/mirroring and the page rotation are applied to them.

Pixels come from the image XObject itself (not a rendering), so a figure keeps
its native resolution; inline images use MuPDF's decoded image blocks and fall
back to a clip of a page rendering. Stencils (`/ImageMask`) are painted in the
fill colour they are drawn with, on white (`scanner.stencils`); /SMask, stencil
/Mask and colour-key masks are composited on white.

Errors: an image whose pixels cannot be produced, or that MuPDF decodes only with
complaints (a damaged stream it pads or cuts short), is one `decode` line and
costs only that image; anything else failing on one placement is an `extract`
line; a page MuPDF cannot interpret is a `page` line.

PyMuPDF is not thread-safe: one document per process (the `jobs` layer uses a
process pool).
"""
from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pymupdf
from PIL import Image

from scanner.decode import (
    DecompressionBombError,
    check_pixels,
    composite_on_white,
    orient_like_placement,
    pil_to_rgb,
    pixmap_to_rgb,
)
from scanner.document import DocumentResult, DocumentTimeout, ExtractLimits, Stage
from scanner.placement import records_for_placement
from scanner.stencils import BLACK, RGB, Transform, fill_for, is_stencil, paint_stencil, stencil_fills, stencil_paint

logger = logging.getLogger(__name__)

# One row of `page.get_images(full=True)`: xref, smask, width, height, bpc, colorspace,
# alt. colorspace, name, filter, referencer.
ImageItem = tuple[int, int, int, int, int, str, str, str, str, int]


class ImageInfo(TypedDict, total=False):
    """One placement as `page.get_image_info(hashes=True)` reports it (unrotated page space)."""

    number: int
    bbox: tuple[float, float, float, float]
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int
    digest: bytes


def _configure_mupdf(limits: ExtractLimits) -> None:
    """Silence MuPDF's stderr messages (they are collected into errors.csv instead).

    PyMuPDF 2.0 offers no setter for MuPDF's store limit, so the store is emptied
    (`store_shrink(100)`) every 16 pages and after each document, and the `jobs`
    layer recycles worker processes, so a long run cannot grow without bound.
    """
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    pymupdf.TOOLS.reset_mupdf_warnings()


def _mupdf_warnings() -> list[str]:
    text = pymupdf.TOOLS.mupdf_warnings(reset=True) or ""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _neutralise_image(doc: pymupdf.Document, xref: int) -> None:
    """Replace an image XObject in the in-memory document by a 1x1 white pixel.

    Used for decompression bombs so that MuPDF's own page walk (which decodes
    every image to hash it) never inflates them. The file on disk is untouched.
    """
    doc.update_stream(xref, b"\xff", new=True)
    for key in ("SMask", "Mask", "Decode", "DecodeParms", "Filter", "ImageMask", "Intent", "SMaskInData"):
        doc.xref_set_key(xref, key, "null")
    doc.xref_set_key(xref, "Width", "1")
    doc.xref_set_key(xref, "Height", "1")
    doc.xref_set_key(xref, "BitsPerComponent", "8")
    doc.xref_set_key(xref, "ColorSpace", "/DeviceGray")
    doc.update_stream(xref, b"\xff", new=True)


def _xref_dims(doc: pymupdf.Document, xref: int) -> tuple[int, int]:
    def num(key: str) -> int:
        kind, val = doc.xref_get_key(xref, key)
        try:
            return int(float(val)) if kind == "int" or kind == "float" else 0
        except ValueError:
            return 0

    return num("Width"), num("Height")


class _PdfExtractor:
    """State for one open PDF: decoded-image cache, errors, records."""

    def __init__(self, doc: pymupdf.Document, result: DocumentResult, limits: ExtractLimits) -> None:
        self.doc = doc
        self.result = result
        self.limits = limits
        self.bombs: set[int] = set()
        self.bad_xrefs: set[int] = set()
        self.cache: dict[int, np.ndarray] = {}
        self.cache_bytes = 0
        self.digests: dict[int, bytes | None] = {}
        self.page_pixmaps: dict[int, pymupdf.Pixmap] = {}  # decoded on this page for hashing, reused once
        self.stencils: dict[int, bool] = {}  # xref -> is an /ImageMask stencil
        self.image_warnings: dict[int, list[str]] = {}  # MuPDF's complaints while decoding one image
        self.doc_warnings: list[str] = []  # MuPDF's other complaints

    def error(self, stage: Stage, message: object) -> None:
        self.result.error(stage, message)

    # ---- images by xref
    def _check_bombs(self, images: list[ImageItem]) -> None:
        for item in images:
            for xref in (item[0], item[1]):
                if not xref or xref in self.bombs:
                    continue
                w, h = _xref_dims(self.doc, xref)
                try:
                    check_pixels(max(w, 1), max(h, 1), self.limits.max_image_pixels)
                except DecompressionBombError as exc:
                    self.bombs.add(xref)
                    self.error("decode", f"image xref {xref}: {exc}")
                    _neutralise_image(self.doc, xref)

    def decoded(self, xref: int, smask: int) -> np.ndarray | None:
        """Upright-agnostic pixels of image `xref` (own pixels, not a rendering), or None if undecodable.

        RGB (H, W, 3) for ordinary images; for a stencil (`/ImageMask`) the paint
        mask (H, W), 255 = paint, to be coloured per placement (`paint_stencil`).
        """
        if xref in self.cache:
            return self.cache[xref]
        if xref in self.bombs or xref in self.bad_xrefs:
            return None
        try:
            pix = self.page_pixmaps.pop(xref, None) or pymupdf.Pixmap(self.doc, xref)
            check_pixels(pix.width, pix.height, self.limits.max_image_pixels)
            self._report_damage(xref)
            if self.is_stencil(xref):
                out = stencil_paint(pix)
            else:
                mask = None
                if smask and smask not in self.bombs:
                    try:
                        mask = pymupdf.Pixmap(self.doc, smask)
                    except Exception as exc:  # a broken mask: keep the image opaque
                        self.error("decode", f"soft mask xref {smask} of image xref {xref}: {exc}")
                out = pixmap_to_rgb(pix, mask)
        except Exception as exc:
            self.bad_xrefs.add(xref)
            self.error("decode", f"image xref {xref}: {type(exc).__name__}: {exc}")
            return None
        if self.cache_bytes + out.nbytes > 256 * 1024 * 1024:
            self.cache.clear()
            self.cache_bytes = 0
        self.cache[xref] = out
        self.cache_bytes += out.nbytes
        return out

    def is_stencil(self, xref: int) -> bool:
        if xref not in self.stencils:
            self.stencils[xref] = is_stencil(self.doc, xref)
        return self.stencils[xref]

    def _digest(self, xref: int) -> bytes | None:
        """MD5 of the decoded image, as MuPDF's page walk reports it (cached per document).

        This is the first time MuPDF decodes the image (its store then keeps the
        result for the page walk), so the warnings it raises now are this image's:
        a damaged stream that MuPDF padded or cut short is reported at stage `decode`.
        """
        if xref not in self.digests:
            self.doc_warnings.extend(_mupdf_warnings())
            try:
                pix = pymupdf.Pixmap(self.doc, xref)
                self.digests[xref] = pix.digest
                if xref not in self.cache and xref not in self.bombs:
                    self.page_pixmaps[xref] = pix
            except Exception:
                self.digests[xref] = None  # reported by `decoded` if the image is placed
            warnings = _mupdf_warnings()
            if warnings:
                self.image_warnings[xref] = warnings
        return self.digests[xref]

    def _report_damage(self, xref: int) -> None:
        """One `decode` line for an image MuPDF decoded only with complaints (once per image)."""
        warnings = self.image_warnings.pop(xref, None)
        if warnings:
            more = f" (+{len(warnings) - 1} more)" if len(warnings) > 1 else ""
            self.error("decode", f"image xref {xref}: damaged image stream, kept what MuPDF could decode: {warnings[0]}{more}")

    # ---- inline images
    def inline_pixels(self, page: pymupdf.Page, info: ImageInfo, blocks: list[dict[str, Any]]) -> np.ndarray | None:
        """Own pixels of an inline image (from MuPDF's image blocks), or None (the caller renders a clip).

        RGB (H, W, 3), or for an inline stencil (`BI /IM true`, a block without
        colorspace whose gray samples are the paint mask) the paint mask (H, W).
        """
        t = tuple(round(v, 2) for v in info["transform"])
        for block in blocks:
            if block.get("type") != 1 or tuple(round(v, 2) for v in block.get("transform", ())) != t:
                continue
            try:
                check_pixels(int(block["width"]), int(block["height"]), self.limits.max_image_pixels)
                with Image.open(io.BytesIO(block["image"])) as img:
                    img.load()
                    if block.get("colorspace") == 0:
                        return np.asarray(img.convert("L")).copy()
                    rgb = pil_to_rgb(img)
                mask = block.get("mask")
                if mask:
                    with Image.open(io.BytesIO(mask)) as m:
                        alpha = np.asarray(m.convert("L").resize((rgb.shape[1], rgb.shape[0])))
                    rgb = composite_on_white(rgb, alpha)
                return rgb
            except DecompressionBombError:
                raise
            except Exception as exc:  # fall back to rendering
                logger.debug("inline image block undecodable (%s); rendering instead", exc)
                break
        return None

    def render_clip(self, page: pymupdf.Page, info: ImageInfo, bbox: pymupdf.Rect, transposed: bool) -> np.ndarray:
        """Page rendering clipped to `bbox` at the image's native resolution (already upright)."""
        w, h = int(info["width"]), int(info["height"])
        ow, oh = (h, w) if transposed else (w, h)
        zoom = min(max(ow / max(bbox.width, 1e-3), oh / max(bbox.height, 1e-3)), self.limits.max_render_zoom)
        zoom = max(zoom, 0.1)
        check_pixels(int(bbox.width * zoom) + 1, int(bbox.height * zoom) + 1, self.limits.max_image_pixels)
        pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), clip=bbox, colorspace=pymupdf.csRGB, alpha=False)
        return pixmap_to_rgb(pix)

    # ---- pages
    def page_records(self, pno: int) -> None:
        self.page_pixmaps.clear()
        page = self.doc.load_page(pno)
        images = page.get_images(full=True)
        self._check_bombs(images)
        for item in images:  # decode each image before MuPDF's page walk, to attribute its warnings
            if item[0] not in self.bombs:
                self._digest(int(item[0]))
        infos = page.get_image_info(hashes=True)
        if not infos:
            return
        # Map MuPDF's per-placement digests to image xrefs (as PyMuPDF's xrefs=True does).
        by_digest: dict[bytes, int] = {}
        smask_of: dict[int, int] = {}
        for item in images:
            xref, smask = int(item[0]), int(item[1])
            smask_of[xref] = smask
            if xref in self.bombs:
                by_digest.setdefault(self._digest(xref) or b"", xref)
                continue
            d = self._digest(xref)
            if d is not None:
                by_digest.setdefault(d, xref)
        matched = {by_digest[i["digest"]] for i in infos if i.get("digest") in by_digest}
        unmatched = [x for x in smask_of if x not in matched]
        rot = page.rotation_matrix
        page_rect = page.rect
        blocks: list[dict[str, Any]] | None = None
        fills: list[tuple[Transform, RGB]] | None = None  # stencil fill colours, read once per page if needed
        for placement, info in enumerate(infos):
            try:
                bbox_unrot = pymupdf.Rect(info["bbox"])
                if bbox_unrot.is_empty or bbox_unrot.is_infinite:
                    continue
                bbox = (bbox_unrot * rot).normalize()
                if not bbox.intersects(page_rect):
                    continue  # placed entirely off the visible page
                matrix = pymupdf.Matrix(info["transform"]) * rot
                xref = by_digest.get(info.get("digest", b""), 0)
                if xref == 0:
                    same_size = [x for x in unmatched if _xref_dims(self.doc, x) == (info["width"], info["height"])]
                    if len(same_size) == 1:
                        xref = same_size[0]
                if xref in self.bombs:
                    continue
                transposed = abs(matrix.b) + abs(matrix.c) > abs(matrix.a) + abs(matrix.d)
            except DocumentTimeout:
                raise
            except Exception as exc:
                self.error("extract", f"page {pno + 1} image {placement}: {type(exc).__name__}: {exc}")
                continue
            # Pixels: a failure here is an image that cannot be decoded (stage `decode`);
            # it costs this placement only, never the other images of the page.
            try:
                if xref:
                    raw = self.decoded(xref, smask_of.get(xref, 0))
                    if raw is None:
                        continue  # already reported (once per image)
                else:
                    if blocks is None:
                        blocks = page.get_text("dict", flags=pymupdf.TEXT_PRESERVE_IMAGES)["blocks"]
                    raw = self.inline_pixels(page, info, blocks)
                if raw is None:
                    rgb = self.render_clip(page, info, bbox, transposed)
                else:
                    if raw.ndim == 2:  # a stencil: paint it in the fill colour it is drawn with
                        if fills is None:
                            fills = stencil_fills(page)
                        raw = paint_stencil(raw, fill_for(fills, tuple(info["transform"])) or BLACK)
                    rgb = orient_like_placement(raw, tuple(matrix))
            except DocumentTimeout:
                raise
            except Exception as exc:
                self.error("decode", f"page {pno + 1} image {placement}: {type(exc).__name__}: {exc}")
                continue
            try:
                self.result.records.extend(
                    records_for_placement(
                        rgb, (bbox.x0, bbox.y0, bbox.x1, bbox.y1), doc=self.result.doc,
                        doc_sha256=self.result.doc_sha256, page=pno + 1, placement=placement, limits=self.limits,
                    )
                )
            except DocumentTimeout:
                raise
            except Exception as exc:
                self.error("extract", f"page {pno + 1} image {placement}: {type(exc).__name__}: {exc}")


def extract_pdf(path: Path, result: DocumentResult, limits: ExtractLimits) -> None:
    """Fill `result` from the PDF at `path` (errors are recorded, never raised except timeouts)."""
    _configure_mupdf(limits)
    # a backstop to `extract_document`'s alarm, checked before each page: the alarm's exception is lost
    # when it lands inside a MuPDF callback into Python (a 0.63 s document once ran past a 0.05 s budget)
    deadline = time.monotonic() + limits.timeout_s if limits.timeout_s else float("inf")
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except pymupdf.EmptyFileError:
        result.error("open", "empty file")
        return
    except Exception as exc:
        result.error("open", f"cannot open PDF: {exc}")
        return
    try:
        if doc.needs_pass:
            result.error("open", "encrypted: a password is required")
            return
        if not doc.is_pdf:
            result.error("open", "not a PDF")
            return
        n = doc.page_count
        warnings = _mupdf_warnings()
        if doc.is_repaired:
            detail = f": {warnings[0]}" if warnings else ""
            result.error("repair", f"damaged PDF repaired by MuPDF (broken xref or truncated){detail}")
        if n == 0:
            result.error("open", "no pages (truncated or damaged PDF)")
            return
        if n > limits.max_pages:
            result.error("pages", f"{n} pages exceed the cap of {limits.max_pages}; only the first {limits.max_pages} were extracted")
            n = limits.max_pages
        ex = _PdfExtractor(doc, result, limits)
        for pno in range(n):
            if time.monotonic() > deadline:
                raise DocumentTimeout()
            try:
                ex.page_records(pno)
            except DocumentTimeout:
                raise
            except Exception as exc:
                ex.error("page", f"page {pno + 1}: {type(exc).__name__}: {exc}")
            finally:
                ex.page_pixmaps.clear()
            result.pages = pno + 1
            if pno % 16 == 15:
                pymupdf.TOOLS.store_shrink(100)
        late = [w for w in ex.doc_warnings + _mupdf_warnings() if "repair" not in w.lower()]
        if late:
            more = f" (+{len(late) - 1} more)" if len(late) > 1 else ""
            result.error("warning", f"MuPDF: {late[0]}{more}")
    finally:
        doc.close()
        pymupdf.TOOLS.store_shrink(100)
