"""Stencil images (`/ImageMask true`): 1-bit masks painted in the fill colour current when drawn.

A stencil has no colour of its own: where its bits say "paint", the page gets the
fill colour set before the `Do` (e.g. `0 0 1 rg`); elsewhere the page shows
through. Scanned figures in older papers (CCITT fax, 1 bit, thousands of pixels a
side) are usually stencils drawn in black. A reviewer sees them as ink on white
paper, so that is how they are extracted: the fill colour where the mask paints,
white elsewhere, upright like any other placement.

MuPDF decodes a stencil (`Pixmap(doc, xref)`) to an alpha-only pixmap
(no colorspace, n = 1, 255 = paint, /Decode already applied). The fill colour is
not part of the image: it is read from MuPDF's own interpretation of the page by
a device that only listens to `fill_image_mask` calls (one extra pass over the
content stream, run only on pages that draw a stencil; no image is decoded by it).
The placement's transform pairs a call with its placement. Black is used when no
colour is recorded (a stencil filled with a pattern, or a colour MuPDF cannot
convert); the fill's opacity is ignored. Inline stencils (`BI /IM true`) are
painted the same way from MuPDF's image block.

Stencil `/Mask` entries and colour-key `/Mask` arrays of ordinary images need
nothing here: PyMuPDF lists a `/Mask` stencil in the smask column of
`page.get_images`, so it is applied as alpha like an /SMask, and MuPDF turns a
colour key into the decoded pixmap's alpha; both are composited on white.
"""
from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import numpy as np
import pymupdf
from pymupdf import mupdf

from scanner.decode import composite_on_white

RGB = tuple[int, int, int]
Transform = tuple[float, float, float, float, float, float]
BLACK: RGB = (0, 0, 0)

logger = logging.getLogger(__name__)


def is_stencil(doc: pymupdf.Document, xref: int) -> bool:
    """True when image XObject `xref` is a stencil mask (`/ImageMask true`)."""
    kind, value = doc.xref_get_key(xref, "ImageMask")
    return kind == "bool" and value == "true"


def stencil_paint(pix: pymupdf.Pixmap) -> np.ndarray:
    """The paint mask (H, W) uint8 of a stencil's alpha-only pixmap: 255 where it paints."""
    samples = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, pix.n)
    return samples[..., -1].copy()  # the alpha channel (the only one for a stencil)


def paint_stencil(paint: np.ndarray, fill: RGB = BLACK) -> np.ndarray:
    """RGB pixels of a stencil as displayed on paper: `fill` where `paint` (H, W; 255 = paint) says so, white elsewhere."""
    ink = np.empty((*paint.shape, 3), np.uint8)
    ink[...] = np.asarray(fill, np.uint8)
    return composite_on_white(ink, paint)


class _StencilFillDevice(mupdf.FzDevice2):
    """A MuPDF device that records the transform and fill colour (as RGB) of every stencil drawn."""

    def __init__(self) -> None:
        super().__init__()
        self.fills: list[tuple[Transform, RGB]] = []
        self.use_virtual_fill_image_mask()

    def fill_image_mask(self, ctx: object, image: object, ctm: object, colorspace: object, color: object,
                        alpha: float, color_params: object) -> None:
        # Called from C: an exception must not cross MuPDF's frames (it would come back as a
        # generic MuPDF error), so a colour that cannot be read is left to the black default.
        try:
            m: Transform = (ctm.a, ctm.b, ctm.c, ctm.d, ctm.e, ctm.f)  # type: ignore[attr-defined]
            rgb = BLACK
            if colorspace:
                # named objects: a temporary FzColorParams would be freed before the call (see PyMuPDF's jm_lineart_color)
                cs_rgb = mupdf.FzColorspace(mupdf.FzColorspace.Fixed_RGB)
                params = mupdf.FzColorParams()
                out = mupdf.ll_fz_convert_color(colorspace, color, cs_rgb.m_internal, None, params.internal())
                rgb = tuple(int(round(min(max(float(v), 0.0), 1.0) * 255)) for v in out[:3])  # type: ignore[assignment]
            self.fills.append((m, rgb))
        except Exception as exc:
            logger.debug("stencil fill colour unreadable: %s", exc)


def stencil_fills(page: pymupdf.Page) -> list[tuple[Transform, RGB]]:
    """(transform, fill RGB) of every stencil drawn on `page`, in drawing order.

    Transforms are in the unrotated page space of `page.get_image_info()["transform"]`.
    The per-document time budget (SIGALRM) is deferred while MuPDF calls into the
    device (`_alarm_deferred`), so a timeout is raised here, not through C.
    """
    dev = _StencilFillDevice()
    m = page.derotation_matrix
    derotate = mupdf.FzMatrix(m.a, m.b, m.c, m.d, m.e, m.f)
    with _alarm_deferred():
        try:
            mupdf.fz_run_page(page.this, dev, derotate, mupdf.FzCookie())
        finally:
            mupdf.fz_close_device(dev)
    return dev.fills


@contextmanager
def _alarm_deferred() -> Iterator[None]:
    """Run the body with SIGALRM's Python handler deferred to the end of the body.

    A Python exception raised inside a MuPDF device callback comes back as a generic
    MuPDF error, so the `DocumentTimeout` the alarm handler raises would be mistaken
    for a decoding failure. Blocking the signal is not enough: a process-directed
    signal trips in any thread that does not block it, and Python then runs the
    handler in the main thread, inside the callback. So the handler is swapped for
    one that only notes the alarm, and the real one is called afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # alarms are only armed (and handlers only run) in the main thread
        return
    fired: list[tuple[int, FrameType | None]] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGALRM, previous)
        if fired:
            if callable(previous):
                previous(*fired[0])
            elif previous == signal.SIG_DFL:
                signal.raise_signal(signal.SIGALRM)


def fill_for(fills: list[tuple[Transform, RGB]], transform: Transform, tol: float = 0.05) -> RGB | None:
    """The fill colour recorded for a stencil drawn with `transform` (None when none matches)."""
    for m, rgb in fills:
        if all(abs(a - b) <= tol for a, b in zip(m, transform)):
            return rgb
    return None
