"""Extracting every figure and panel of one document, with provenance.

`extract_document(path, root, limits)` reads one PDF or image file and returns a
`DocumentResult`: the panel records plus one-line errors for whatever could not
be read (the rest of the document is still extracted). It never raises for bad
input. PyMuPDF is not thread-safe: call it for one document per process (the
`jobs` layer uses a process pool).

Coordinates: PDF placements are reported in the coordinates of the page as it
is displayed, i.e. `page.rect` (PDF points, top-left origin, after the page's
/Rotate), which is also the space of `page.get_pixmap()` and of its `clip`
argument. Panel pixels are shown upright as on the displayed page: the
placement's rotation/mirroring and the page rotation are applied to them.
"""
from __future__ import annotations

import hashlib
import io
import logging
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scanner.decode import (
    DecompressionBombError,
    check_pixels,
    encode_png,
    orient_like_placement,
    pil_to_rgb,
    pixmap_to_rgb,
)
from scanner.discover import document_key, expected_kind, sniff_kind
from scanner.noise import NoiseOptions, is_tiny, is_uniform
from scanner.panels import SplitOptions, split_panels
from scanner.records import FLAG_COMPOUND, FLAG_TINY, FLAG_UNIFORM, PanelRecord

if TYPE_CHECKING:  # pragma: no cover
    import pymupdf

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractLimits:
    """Caps and options that keep one bad document from hurting the run."""

    max_image_pixels: int = 100_000_000   # per image (decompression bombs)
    max_pages: int = 2_000                # per document; later pages are skipped with an error line
    timeout_s: float | None = 300.0       # per document (enforced with SIGALRM in the main thread)
    split: bool = True                    # split compound figures into panels
    split_options: SplitOptions = field(default_factory=SplitOptions)
    noise: NoiseOptions = field(default_factory=NoiseOptions)
    max_render_zoom: float = 8.0          # inline-image fallback rendering


@dataclass(frozen=True)
class ExtractError:
    """One line of errors.csv: which input, at what stage, and why (single line)."""

    input: str
    stage: str
    error: str


@dataclass
class DocumentResult:
    """What one document yielded."""

    doc: str
    doc_sha256: str
    pages: int = 0
    records: list[PanelRecord] = field(default_factory=list)
    errors: list[ExtractError] = field(default_factory=list)
    seconds: float = 0.0


class DocumentTimeout(Exception):
    """The per-document time budget ran out."""


def make_figure_id(doc: str, doc_sha256: str, page: int, placement: int, panel: int) -> str:
    """Stable id of a record: same document (path and bytes), page, placement and panel give the same id.

    `panel` is 0 for the whole placement (figure) and 1.. for its split panels.
    The relative path is part of the key because two byte-identical files in one
    corpus (a paper submitted twice) are two documents whose panels must pair up.
    """
    key = f"{doc}:{doc_sha256}:{page}:{placement}:{panel}".encode()
    return hashlib.sha256(key).hexdigest()[:24]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _one_line(text: object, limit: int = 500) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."




# --------------------------------------------------------------------------- records


def records_for_placement(
    rgb: np.ndarray,
    bbox: tuple[float, float, float, float],
    *,
    doc: str,
    doc_sha256: str,
    page: int,
    placement: int,
    limits: ExtractLimits,
    bbox_is_pixels: bool = False,
) -> list[PanelRecord]:
    """The figure record of one upright placement, plus one record per panel if it is compound.

    `rgb` is upright as on the page and spans `bbox` (page points); panel boxes
    found in pixels are mapped linearly back into page coordinates.
    """
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = bbox
    size_pt = None if bbox_is_pixels else (x1 - x0, y1 - y0)
    flags: list[str] = []
    if is_tiny(w, h, limits.noise, size_pt):
        flags.append(FLAG_TINY)
    if is_uniform(rgb, limits.noise):
        flags.append(FLAG_UNIFORM)
    boxes = split_panels(rgb, limits.split_options) if limits.split and not flags else []
    if boxes:
        flags.append(FLAG_COMPOUND)
    parent_id = make_figure_id(doc, doc_sha256, page, placement, 0)
    out = [
        PanelRecord(
            figure_id=parent_id, doc=doc, doc_sha256=doc_sha256, page=page,
            x0=float(x0), y0=float(y0), x1=float(x1), y1=float(y1),
            width=int(w), height=int(h), image=encode_png(rgb), parent_id=None, flags=tuple(flags),
        )
    ]
    sx, sy = (x1 - x0) / w, (y1 - y0) / h
    for i, (px0, py0, px1, py1) in enumerate(boxes, start=1):
        crop = rgb[py0:py1, px0:px1]
        pflags: list[str] = []
        pbox = (x0 + px0 * sx, y0 + py0 * sy, x0 + px1 * sx, y0 + py1 * sy)
        if is_tiny(crop.shape[1], crop.shape[0], limits.noise, None if bbox_is_pixels else (pbox[2] - pbox[0], pbox[3] - pbox[1])):
            pflags.append(FLAG_TINY)
        if is_uniform(crop, limits.noise):
            pflags.append(FLAG_UNIFORM)
        out.append(
            PanelRecord(
                figure_id=make_figure_id(doc, doc_sha256, page, placement, i), doc=doc, doc_sha256=doc_sha256,
                page=page, x0=float(pbox[0]), y0=float(pbox[1]), x1=float(pbox[2]), y1=float(pbox[3]),
                width=int(crop.shape[1]), height=int(crop.shape[0]), image=encode_png(crop),
                parent_id=parent_id, flags=tuple(pflags),
            )
        )
    return out


# --------------------------------------------------------------------------- PDFs


def _configure_mupdf(limits: ExtractLimits) -> None:
    """Silence MuPDF's stderr messages (they are collected into errors.csv instead).

    PyMuPDF 2.0 offers no setter for MuPDF's store limit, so the store is emptied
    (`store_shrink(100)`) every 16 pages and after each document, and the `jobs`
    layer recycles worker processes, so a long run cannot grow without bound.
    """
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    pymupdf.TOOLS.reset_mupdf_warnings()


def _mupdf_warnings() -> list[str]:
    import pymupdf

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
        self.page_pixmaps: dict[int, Any] = {}  # decoded on this page for hashing, reused once

    def error(self, stage: str, message: object) -> None:
        self.result.errors.append(ExtractError(self.result.doc, stage, _one_line(message)))

    # ---- images by xref
    def _check_bombs(self, images: list[tuple[Any, ...]]) -> None:
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
        """Upright-agnostic RGB pixels of image `xref` (own pixels, not a rendering)."""
        import pymupdf

        if xref in self.cache:
            return self.cache[xref]
        if xref in self.bombs or xref in self.bad_xrefs:
            return None
        try:
            pix = self.page_pixmaps.pop(xref, None) or pymupdf.Pixmap(self.doc, xref)
            check_pixels(pix.width, pix.height, self.limits.max_image_pixels)
            mask = None
            if smask and smask not in self.bombs:
                try:
                    mask = pymupdf.Pixmap(self.doc, smask)
                except Exception as exc:  # a broken mask: keep the image opaque
                    self.error("decode", f"soft mask xref {smask} of image xref {xref}: {exc}")
            rgb = pixmap_to_rgb(pix, mask)
        except Exception as exc:
            self.bad_xrefs.add(xref)
            self.error("decode", f"image xref {xref}: {type(exc).__name__}: {exc}")
            return None
        if self.cache_bytes + rgb.nbytes > 256 * 1024 * 1024:
            self.cache.clear()
            self.cache_bytes = 0
        self.cache[xref] = rgb
        self.cache_bytes += rgb.nbytes
        return rgb

    def _digest(self, xref: int) -> bytes | None:
        """MD5 of the decoded image, as MuPDF's page walk reports it (cached per document)."""
        import pymupdf

        if xref not in self.digests:
            try:
                pix = pymupdf.Pixmap(self.doc, xref)
                self.digests[xref] = pix.digest
                if xref not in self.cache and xref not in self.bombs:
                    self.page_pixmaps[xref] = pix
            except Exception:
                self.digests[xref] = None
        return self.digests[xref]

    # ---- inline images
    def inline_pixels(self, page: pymupdf.Page, info: dict[str, Any], blocks: list[dict[str, Any]]) -> np.ndarray | None:
        """Own pixels of an inline image (from MuPDF's image blocks), else a clip of a rendering."""
        from PIL import Image

        t = tuple(round(v, 2) for v in info["transform"])
        for block in blocks:
            if block.get("type") != 1 or tuple(round(v, 2) for v in block.get("transform", ())) != t:
                continue
            try:
                check_pixels(int(block["width"]), int(block["height"]), self.limits.max_image_pixels)
                with Image.open(io.BytesIO(block["image"])) as img:
                    img.load()
                    rgb = pil_to_rgb(img)
                mask = block.get("mask")
                if mask:
                    with Image.open(io.BytesIO(mask)) as m:
                        alpha = np.asarray(m.convert("L").resize((rgb.shape[1], rgb.shape[0])))
                    from scanner.decode import composite_on_white

                    rgb = composite_on_white(rgb, alpha)
                return rgb
            except DecompressionBombError:
                raise
            except Exception as exc:  # fall back to rendering
                logger.debug("inline image block undecodable (%s); rendering instead", exc)
                break
        return None

    def render_clip(self, page: pymupdf.Page, info: dict[str, Any], bbox: pymupdf.Rect, transposed: bool) -> np.ndarray:
        """Page rendering clipped to `bbox` at the image's native resolution (already upright)."""
        import pymupdf

        w, h = int(info["width"]), int(info["height"])
        ow, oh = (h, w) if transposed else (w, h)
        zoom = min(max(ow / max(bbox.width, 1e-3), oh / max(bbox.height, 1e-3)), self.limits.max_render_zoom)
        zoom = max(zoom, 0.1)
        check_pixels(int(bbox.width * zoom) + 1, int(bbox.height * zoom) + 1, self.limits.max_image_pixels)
        pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), clip=bbox, colorspace=pymupdf.csRGB, alpha=False)
        return pixmap_to_rgb(pix)

    # ---- pages
    def page_records(self, pno: int) -> None:
        import pymupdf

        self.page_pixmaps.clear()
        page = self.doc.load_page(pno)
        images = page.get_images(full=True)
        self._check_bombs(images)
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
        for placement, info in enumerate(infos):
            try:
                bbox_unrot = pymupdf.Rect(info["bbox"])
                if bbox_unrot.is_empty or bbox_unrot.is_infinite:
                    continue
                bbox = (bbox_unrot * rot).normalize()
                if not bbox.intersects(page_rect):
                    continue  # placed entirely off the visible page
                matrix = pymupdf.Matrix(info["transform"]) * rot
                xref = by_digest.get(info.get("digest"), 0)
                if xref == 0:
                    same_size = [x for x in unmatched if _xref_dims(self.doc, x) == (info["width"], info["height"])]
                    if len(same_size) == 1:
                        xref = same_size[0]
                if xref in self.bombs:
                    continue
                transposed = abs(matrix.b) + abs(matrix.c) > abs(matrix.a) + abs(matrix.d)
                if xref:
                    raw = self.decoded(xref, smask_of.get(xref, 0))
                    if raw is None:
                        continue
                    rgb = orient_like_placement(raw, tuple(matrix))
                else:
                    if blocks is None:
                        blocks = page.get_text("dict", flags=pymupdf.TEXT_PRESERVE_IMAGES)["blocks"]
                    raw = self.inline_pixels(page, info, blocks)
                    if raw is not None:
                        rgb = orient_like_placement(raw, tuple(matrix))
                    else:
                        rgb = self.render_clip(page, info, bbox, transposed)
                self.result.records.extend(
                    records_for_placement(
                        rgb, (bbox.x0, bbox.y0, bbox.x1, bbox.y1), doc=self.result.doc,
                        doc_sha256=self.result.doc_sha256, page=pno + 1, placement=placement, limits=self.limits,
                    )
                )
            except DocumentTimeout:
                raise
            except Exception as exc:
                self.error("decode", f"page {pno + 1} image {placement}: {type(exc).__name__}: {exc}")


def extract_pdf(path: Path, result: DocumentResult, limits: ExtractLimits) -> None:
    """Fill `result` from the PDF at `path` (errors are recorded, never raised except timeouts)."""
    import pymupdf

    _configure_mupdf(limits)
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except pymupdf.EmptyFileError:
        result.errors.append(ExtractError(result.doc, "open", "empty file"))
        return
    except Exception as exc:
        result.errors.append(ExtractError(result.doc, "open", _one_line(f"cannot open PDF: {exc}")))
        return
    try:
        if doc.needs_pass:
            result.errors.append(ExtractError(result.doc, "open", "encrypted: a password is required"))
            return
        if not doc.is_pdf:
            result.errors.append(ExtractError(result.doc, "open", "not a PDF"))
            return
        n = doc.page_count
        warnings = _mupdf_warnings()
        if doc.is_repaired:
            detail = f": {warnings[0]}" if warnings else ""
            result.errors.append(
                ExtractError(result.doc, "repair", _one_line(f"damaged PDF repaired by MuPDF (broken xref or truncated){detail}"))
            )
        if n == 0:
            result.errors.append(ExtractError(result.doc, "open", "no pages (truncated or damaged PDF)"))
            return
        if n > limits.max_pages:
            result.errors.append(
                ExtractError(result.doc, "pages", f"{n} pages exceed the cap of {limits.max_pages}; only the first {limits.max_pages} were extracted")
            )
            n = limits.max_pages
        ex = _PdfExtractor(doc, result, limits)
        for pno in range(n):
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
        late = [w for w in _mupdf_warnings() if "repair" not in w.lower()]
        if late:
            more = f" (+{len(late) - 1} more)" if len(late) > 1 else ""
            result.errors.append(ExtractError(result.doc, "warning", _one_line(f"MuPDF: {late[0]}{more}")))
    finally:
        doc.close()
        pymupdf.TOOLS.store_shrink(100)


# --------------------------------------------------------------------------- image files


def _frames(img: Any, max_frames: int) -> Iterator[int]:
    n = getattr(img, "n_frames", 1) or 1
    yield from range(min(n, max_frames))


def extract_image_file(path: Path, result: DocumentResult, limits: ExtractLimits) -> None:
    """Fill `result` from an image file (every frame of a multi-page TIFF is a page)."""
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = None  # we enforce our own cap, before decoding
    try:
        img = Image.open(path)
    except Exception as exc:
        result.errors.append(ExtractError(result.doc, "open", _one_line(f"cannot open image: {type(exc).__name__}: {exc}")))
        return
    with img:
        n = getattr(img, "n_frames", 1) or 1
        if n > limits.max_pages:
            result.errors.append(
                ExtractError(result.doc, "pages", f"{n} frames exceed the cap of {limits.max_pages}; only the first {limits.max_pages} were extracted")
            )
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
                stage = "decode"
                result.errors.append(ExtractError(result.doc, stage, _one_line(f"frame {i + 1}: {type(exc).__name__}: {exc}")))
                if isinstance(exc, (DecompressionBombError, OSError)) and i == 0:
                    break
            result.pages = i + 1


# --------------------------------------------------------------------------- entry point


def _timeout_handler(signum: int, frame: Any) -> None:
    raise DocumentTimeout()


def extract_document(path: Path, root: Path, limits: ExtractLimits | None = None) -> DocumentResult:
    """All panel records of the PDF or image file at `path`; `doc` is its path relative to `root`.

    Never raises for bad input: every problem becomes an `ExtractError` line and
    whatever could be read is still returned. The kind is decided by content
    (a PNG named `.pdf` is read as an image; an HTML page named `.pdf` is an error).
    """
    limits = limits or ExtractLimits()
    path, root = Path(path), Path(root)
    rel = document_key(path, root)
    started = time.monotonic()
    try:
        size = path.stat().st_size
        sha = file_sha256(path)
        with open(path, "rb") as fh:
            head = fh.read(1024)
    except OSError as exc:
        result = DocumentResult(doc=rel, doc_sha256="")
        result.errors.append(ExtractError(rel, "read", _one_line(f"{type(exc).__name__}: {exc}")))
        return result
    result = DocumentResult(doc=rel, doc_sha256=sha)
    if size == 0:
        result.errors.append(ExtractError(rel, "open", "empty file (0 bytes)"))
        return result
    kind = sniff_kind(head)
    if kind is None:
        wanted = expected_kind(path) or "supported"
        sample = head[:16].decode("latin-1").encode("unicode_escape").decode("ascii")
        result.errors.append(ExtractError(rel, "open", f"not a {wanted.upper() if wanted == 'pdf' else wanted} file: content starts with '{sample}'"))
        return result

    use_alarm = bool(limits.timeout_s) and _in_main_thread()
    previous = None
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, _timeout_handler)
        signal.setitimer(signal.ITIMER_REAL, float(limits.timeout_s))  # type: ignore[arg-type]
    try:
        if kind == "pdf":
            extract_pdf(path, result, limits)
        else:
            extract_image_file(path, result, limits)
    except DocumentTimeout:
        result.errors.append(
            ExtractError(rel, "timeout", f"document took longer than {limits.timeout_s:g} s; kept the {result.pages} pages read before")
        )
    except Exception as exc:  # a bug or an exotic failure: still one line, the run goes on
        logger.exception("unexpected failure on %s", rel)
        result.errors.append(ExtractError(rel, "extract", _one_line(f"{type(exc).__name__}: {exc}")))
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
    result.seconds = time.monotonic() - started
    return result


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
