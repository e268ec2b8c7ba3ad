"""The records of one placement: the whole figure, plus one record per panel when it is compound.

Backend-neutral: it takes upright RGB pixels and where they sit on the page, so PDFs
and image files produce records (flags, panel boxes, ids) by the same rule.
"""
from __future__ import annotations

import numpy as np

from scanner.decode import encode_png
from scanner.document import ExtractLimits, make_figure_id
from scanner.noise import image_flags, is_plot
from scanner.pieces import KIND_CHART, KIND_TEXT, split_figure
from scanner.records import FLAG_CHART, FLAG_COMPOUND, FLAG_TEXT, PanelRecord

_PIECE_FLAGS = {KIND_CHART: FLAG_CHART, KIND_TEXT: FLAG_TEXT}


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

    Panels are the pieces of `scanner.pieces.split_figure`; chart and text pieces are
    kept as records flagged FLAG_CHART / FLAG_TEXT (noise: out of matching by default).
    Pieces of a strict split (every piece a filled rectangle) are never flagged. A figure that
    does not split and is a plot on paper (`scanner.noise.is_plot`) is flagged FLAG_CHART.

    `rgb` is upright as on the page and spans `bbox` (page points); panel boxes
    found in pixels are mapped linearly back into page coordinates.
    """
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = bbox
    size_pt = None if bbox_is_pixels else (x1 - x0, y1 - y0)
    flags = image_flags(rgb, limits.noise, size_pt)
    pieces = split_figure(rgb, limits.split_options, classify_strict=False) if limits.split and not flags else []
    if pieces:
        flags.append(FLAG_COMPOUND)
    elif not flags and is_plot(rgb, limits.noise):
        flags.append(FLAG_CHART)  # one chart on paper: no piece to flag, the figure is the chart
    parent_id = make_figure_id(doc, doc_sha256, page, placement, 0)
    out = [
        PanelRecord(
            figure_id=parent_id, doc=doc, doc_sha256=doc_sha256, page=page,
            x0=float(x0), y0=float(y0), x1=float(x1), y1=float(y1),
            width=int(w), height=int(h), image=encode_png(rgb), parent_id=None, flags=tuple(flags),
        )
    ]
    sx, sy = (x1 - x0) / w, (y1 - y0) / h
    for i, piece in enumerate(pieces, start=1):
        px0, py0, px1, py1 = piece.box
        crop = rgb[py0:py1, px0:px1]
        pbox = (x0 + px0 * sx, y0 + py0 * sy, x0 + px1 * sx, y0 + py1 * sy)
        pflags = image_flags(crop, limits.noise, None if bbox_is_pixels else (pbox[2] - pbox[0], pbox[3] - pbox[1]),
                             piece=True)
        if piece.kind in _PIECE_FLAGS and _PIECE_FLAGS[piece.kind] not in pflags:
            pflags.append(_PIECE_FLAGS[piece.kind])
        out.append(
            PanelRecord(
                figure_id=make_figure_id(doc, doc_sha256, page, placement, i), doc=doc, doc_sha256=doc_sha256,
                page=page, x0=float(pbox[0]), y0=float(pbox[1]), x1=float(pbox[2]), y1=float(pbox[3]),
                width=int(crop.shape[1]), height=int(crop.shape[0]), image=encode_png(crop),
                parent_id=parent_id, flags=tuple(pflags),
            )
        )
    return out
