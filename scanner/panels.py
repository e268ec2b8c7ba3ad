"""Splitting a compound figure into panels along white gutters (recursive XY-cut).

A figure raster often holds several panels (A, B, C ...) separated by white or
near-white gutters. We threshold "ink" (anything clearly darker than white: light
grey blot backgrounds count as ink), drop small connected components (panel
letters and labels that sit in the gutters, JPEG speckle) so they do not bridge
gutters, then cut recursively along full-length empty rows/columns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, exclusive ends


@dataclass(frozen=True)
class SplitOptions:
    """Tunables of the panel splitter (defaults suit figures of a few hundred pixels and up)."""

    white_level: int = 236          # a pixel is background when all channels are >= this
    min_gutter_px: int = 3          # a gutter must be at least this many pixels wide ...
    min_gutter_frac: float = 0.008  # ... and this fraction of the cut dimension
    line_ink_frac: float = 0.004    # a row/column is empty when at most this fraction is ink
    label_max_frac: float = 0.12    # components smaller than this fraction of both figure sides ...
    label_max_px: int = 48          # ... and of at most this many pixels each side are labels
    min_panel_px: int = 32          # smaller pieces are dropped (stray marks), not panels
    min_panel_area_frac: float = 0.01
    min_fill: float = 0.8           # a panel's ink (holes filled) must cover this share of its box
    min_explained: float = 0.97     # panels must hold this share of the figure's (label-free) ink
    max_depth: int = 6
    max_panels: int = 64


def lightest_channel(rgb: np.ndarray) -> np.ndarray:
    """Per pixel, its smallest channel value (a 2-D image as it is).

    Channel by channel, because `rgb.min(axis=2)` reduces over the strided last axis and takes
    ~18x longer on the multi-megapixel figures of real papers (it was most of extraction's time).
    """
    if rgb.ndim == 2:
        return rgb
    out = np.minimum(rgb[..., 0], rgb[..., 1])
    for c in range(2, rgb.shape[2]):
        np.minimum(out, rgb[..., c], out=out)
    return out


def channel_mean(rgb: np.ndarray) -> np.ndarray:
    """Per pixel, the float32 mean of its channels (= `rgb.astype(np.float32).mean(axis=2)`, channel by channel)."""
    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    total = rgb[..., 0].astype(np.float32)
    for c in range(1, rgb.shape[2]):
        total += rgb[..., c]
    return total / np.float32(rgb.shape[2])


def _square_pass(mask: np.ndarray, size: int, axis: int, erode: bool) -> np.ndarray:
    """One axis of a binary erosion (AND) or dilation (OR) by a centred line of `size` (odd) pixels.

    Pixels outside the image count as False, as `border_value=0` in scipy.ndimage.
    """
    n = mask.shape[axis]
    r = size // 2
    op = np.logical_and if erode else np.logical_or
    out = mask.copy()

    def span(start: int, stop: int) -> tuple[slice, ...]:
        return (slice(start, stop), slice(None)) if axis == 0 else (slice(None), slice(start, stop))

    for s in range(1, min(r, n - 1) + 1):  # OR/AND with the neighbours s pixels before and after
        op(out[span(0, n - s)], mask[span(s, n)], out=out[span(0, n - s)])
        op(out[span(s, n)], mask[span(0, n - s)], out=out[span(s, n)])
    if erode:  # the window of a pixel within r of the border holds outside (False) pixels
        out[span(0, min(r, n))] = False
        out[span(max(n - r, 0), n)] = False
    return out


def square_erosion(mask: np.ndarray, size: int) -> np.ndarray:
    """`ndimage.binary_erosion(mask, structure=np.ones((size, size)))` of a 2-D mask, exactly.

    A square is a row times a column, so for an odd `size` the erosion is done one axis at a
    time with shifted slices: ~20x faster than scipy's generic structuring-element loop on the
    multi-megapixel masks of real figures (5x5 openings were a large share of extraction's CPU).
    An even size (its window is off-centre) is left to scipy.
    """
    if size % 2 == 0 or mask.ndim != 2:
        from scipy import ndimage

        return ndimage.binary_erosion(mask, structure=np.ones((size,) * mask.ndim, dtype=bool))
    return _square_pass(_square_pass(mask.astype(bool, copy=False), size, 1, True), size, 0, True)


def square_dilation(mask: np.ndarray, size: int) -> np.ndarray:
    """`ndimage.binary_dilation(mask, structure=np.ones((size, size)))` of a 2-D mask, exactly (see `square_erosion`)."""
    if size % 2 == 0 or mask.ndim != 2:
        from scipy import ndimage

        return ndimage.binary_dilation(mask, structure=np.ones((size,) * mask.ndim, dtype=bool))
    return _square_pass(_square_pass(mask.astype(bool, copy=False), size, 1, False), size, 0, False)


def square_opening(mask: np.ndarray, size: int) -> np.ndarray:
    """`ndimage.binary_opening(mask, structure=np.ones((size, size)))` of a 2-D mask, exactly (see `square_erosion`)."""
    if size % 2 == 0 or mask.ndim != 2:
        from scipy import ndimage

        return ndimage.binary_opening(mask, structure=np.ones((size,) * mask.ndim, dtype=bool))
    return square_dilation(square_erosion(mask, size), size)


def ink_mask(rgb: np.ndarray, white_level: int) -> np.ndarray:
    """True where a pixel is not (near-)white."""
    return lightest_channel(rgb) < white_level


def _drop_labels(mask: np.ndarray, opts: SplitOptions) -> np.ndarray:
    """The ink mask without small connected components (letters, tick labels, speckle)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return mask
    h, w = mask.shape
    max_h = min(opts.label_max_px, max(4, int(h * opts.label_max_frac)))
    max_w = min(opts.label_max_px, max(4, int(w * opts.label_max_frac)))
    keep = np.zeros(n + 1, dtype=bool)
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        ch, cw = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        keep[i] = ch > max_h or cw > max_w
    return keep[labels]


def _runs(empty: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of runs of True in a 1-D boolean array."""
    if not empty.any():
        return []
    padded = np.concatenate(([False], empty, [False]))
    diff = np.diff(padded.astype(np.int8))
    starts = np.flatnonzero(diff == 1)
    stops = np.flatnonzero(diff == -1)
    return list(zip(starts.tolist(), stops.tolist()))


def _cut(mask: np.ndarray, axis: int, opts: SplitOptions) -> list[tuple[int, int]]:
    """Segments of `mask` along `axis` (0 = rows) separated by internal gutters; [] if none."""
    length = mask.shape[axis]
    other = mask.shape[1 - axis]
    profile = mask.sum(axis=1 - axis)
    empty = profile <= max(1.0, opts.line_ink_frac * other)
    min_gap = max(opts.min_gutter_px, int(round(opts.min_gutter_frac * length)))
    gaps = [(s, e) for s, e in _runs(empty) if s > 0 and e < length and e - s >= min_gap]
    if not gaps:
        return []
    segments: list[tuple[int, int]] = []
    start = 0
    for s, e in gaps:
        segments.append((start, s))
        start = e
    segments.append((start, length))
    return segments


def _tight(mask: np.ndarray) -> Box | None:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _xy_cut(mask: np.ndarray, x: int, y: int, depth: int, opts: SplitOptions, out: list[Box]) -> None:
    tight = _tight(mask)
    if tight is None:
        return
    tx0, ty0, tx1, ty1 = tight
    sub = mask[ty0:ty1, tx0:tx1]
    x, y = x + tx0, y + ty0
    if depth < opts.max_depth and len(out) < opts.max_panels:
        for axis in (0, 1):
            segments = _cut(sub, axis, opts)
            if segments:
                for s, e in segments:
                    part = sub[s:e, :] if axis == 0 else sub[:, s:e]
                    _xy_cut(part, x if axis == 0 else x + s, y + s if axis == 0 else y, depth + 1, opts, out)
                return
    out.append((x, y, x + sub.shape[1], y + sub.shape[0]))


def split_panels(rgb: np.ndarray, opts: SplitOptions | None = None) -> list[Box]:
    """Panel boxes of a figure: the strict split below when it holds, else the image pieces
    of `scanner.pieces.split_figure` (charts and text left out); [] when nothing splits.

    Figures whose every piece is a filled rectangle (our generated corpora) split exactly
    as before; published figures mixing pictures with charts/text/labels now keep their
    picture panels instead of staying whole.
    """
    boxes = split_panels_strict(rgb, opts)
    if boxes:
        return boxes
    from scanner.pieces import KIND_IMAGE, split_figure_loose

    return [p.box for p in split_figure_loose(rgb, opts) if p.kind == KIND_IMAGE]


def split_panels_strict(rgb: np.ndarray, opts: SplitOptions | None = None) -> list[Box]:
    """Panel boxes of a figure, in reading order (top to bottom, then left to right).

    Returns [] when the figure is a single panel (nothing to split), else two or
    more boxes in the figure's pixel coordinates. Labels in the gutters are not
    part of any box. A split is only accepted when every piece is panel-like
    (its ink, holes filled, covers most of its box) and the pieces hold nearly
    all of the figure's ink; otherwise the figure is kept whole (over-splitting a
    single picture with a light background is worse than not splitting).
    """
    opts = opts or SplitOptions()
    h, w = rgb.shape[:2]
    if max(h, w) < 2 * opts.min_panel_px:
        return []
    mask = _drop_labels(ink_mask(rgb, opts.white_level), opts)
    boxes: list[Box] = []
    _xy_cut(mask, 0, 0, 0, opts, boxes)
    min_area = opts.min_panel_area_frac * h * w
    boxes = [
        b for b in boxes
        if (b[2] - b[0]) >= opts.min_panel_px and (b[3] - b[1]) >= opts.min_panel_px
        and (b[2] - b[0]) * (b[3] - b[1]) >= min_area
    ]
    if len(boxes) < 2:
        return []
    # Panels are rectangles (micrographs, blots on grey, framed plots). Blobs of a single
    # picture on a near-white background (histology, sparse plots) are not: keep those whole.
    from scipy import ndimage

    total = int(mask.sum())
    inside = 0
    for x0, y0, x1, y1 in boxes:
        sub = mask[y0:y1, x0:x1]
        inside += int(sub.sum())
        filled = ndimage.binary_fill_holes(sub)
        if float(filled.mean()) < opts.min_fill:
            return []
    if total and inside < opts.min_explained * total:
        return []
    return boxes
