"""Splitting published compound figures into pieces, and telling image pieces from charts/text.

`split_panels` (scanner.panels) only accepts a split when every piece is a filled
rectangle, which a published figure rarely satisfies: it mixes blots and micrographs
with bar charts, line plots, text and lane labels. Here the split is judged piece by
piece: a cut is kept unless it fragments a picture (a piece that looks like an image
but is not a filled rectangle, e.g. half of a histology section on a pale background),
and every final piece gets a kind:

- ``image``: photographic content (blot strip, micrograph, histology, scan): many
  colours/grey levels and fine texture over most of its box;
- ``chart`` / ``text``: few colours, little texture, thin strokes on white (plots,
  diagrams, labels) -- meant to be flagged out of matching.

The XY-cut runs on a *dense* ink mask (the ink mask opened with a small square), so
thin strokes of lane labels, protein names and axes do not bridge the white rows
between stacked blot strips or the gutter between a strip and its labels.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from scanner.panels import (
    Box,
    SplitOptions,
    _drop_labels,
    _tight,
    channel_mean,
    ink_mask,
    lightest_channel,
    square_opening,
)

KIND_IMAGE = "image"
KIND_CHART = "chart"
KIND_TEXT = "text"


@dataclass(frozen=True)
class Piece:
    """One piece of a figure: its pixel box (x0, y0, x1, y1, exclusive ends) and kind."""

    box: Box
    kind: str  # KIND_IMAGE, KIND_CHART or KIND_TEXT


@dataclass(frozen=True)
class PieceOptions:
    """Tunables of `split_figure` (on top of SplitOptions for the gutter search)."""

    open_px: int = 5                 # opening square side removing strokes thinner than this
    min_fill: float = 0.8            # an image piece's dense ink must cover this share of its box
    image_min_inked: float = 0.55    # an image piece is mostly non-white ...
    image_min_colours: int = 30      # ... with many distinct (quantised) colours or grey levels ...
    image_min_texture: float = 0.3   # ... and not flat nor a plain gradient (mean |high-pass| on inked pixels)
    min_piece_px: int = 16           # pieces smaller than this on a side are dropped
    bar_max_px: int = 32             # a piece at most this wide ...
    bar_min_aspect: float = 2.0      # ... and this many times as tall is a chart bar
    min_image_area_frac: float = 0.00125  # image pieces smaller than this share of the figure are text
    filled_min_inked: float = 0.9    # a filled box ...
    filled_min_side: int = 20        # ... not a thin line ...
    filled_min_levels: int = 8       # ... with this many grey levels (of 64) ...
    filled_min_std: float = 8.0      # ... and this grey spread is a picture even when smooth or dark
    refine_gutter_px: int = 1        # inside a connected piece, gutters this thin still cut ...
    refine_line_ink_frac: float = 0.03  # ... when at most this share of the line is ink ...
    refine_min_fill: float = 0.85    # ... and every part is a filled rectangle (stacked blot strips)
    blob_max_fill: float = 0.5       # an image-like piece this sparse is a fragment of a picture on a pale background
    # The loose split needs paper: at least this share of the background (pixels at or above
    # white_level) truly white (>= paper_level). Published figures measure 0.74-1.0; a stained
    # section on its pale slide (generated DAB histology) about 0.00: it is one picture, not a figure.
    paper_level: int = 250
    min_paper_share: float = 0.5
    tile_line_white: float = 0.97  # a hairline gutter between tiled pictures is white along this share of its span


def _dense_mask(rgb: np.ndarray, sopts: SplitOptions, popts: PieceOptions) -> np.ndarray:
    ink = ink_mask(rgb, sopts.white_level)
    dense = square_opening(ink, max(1, popts.open_px))
    return _drop_labels(dense, sopts)


def _colour_codes(rgb: np.ndarray) -> np.ndarray:
    """Per pixel (H, W), its colour quantised to 16 levels a channel as one code r * 256 + g * 16 + b.

    Computed on the whole box, channel by channel, before the inked pixels are picked:
    picking (N, 3) rows out of a cropped RGB view first was ~5x slower for the same codes.
    Codes are below 4,096: two bytes a pixel keep a large piece's array small.
    """
    if rgb.dtype == np.uint8:
        codes = (rgb[..., 0] >> 4).astype(np.uint16) << 8
        codes |= (rgb[..., 1] >> 4).astype(np.uint16) << 4
        codes |= rgb[..., 2] >> 4
        return codes
    q = (rgb // 16).astype(np.int32)
    return np.asarray(q[..., 0] * 256 + q[..., 1] * 16 + q[..., 2])


@functools.cache
def _grey_tables() -> tuple[np.ndarray, np.ndarray]:
    """For each channel sum s of a uint8 RGB pixel (0..765): its `channel_mean` (float32) and grey level (mean // 4)."""
    grey = np.arange(3 * 255 + 1, dtype=np.float32) / np.float32(3)  # the float32 division channel_mean does
    level = (grey // 4).astype(np.uint8)
    grey.setflags(write=False)  # shared by every call
    level.setflags(write=False)
    return grey, level


def _grey_and_level(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`channel_mean(rgb)` and its 64 grey levels `(grey // 4)`, the same numbers bit for bit.

    For uint8 RGB both are looked up from the pixel's integer channel sum (a float32 sum of
    three uint8 values is exact, so `channel_mean` is a function of it): a float floor
    division over every pixel cost more than the rest of `classify_piece`.
    """
    if rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3:
        sums = rgb[..., 0].astype(np.uint16)  # at most 765: two bytes a pixel
        sums += rgb[..., 1]
        sums += rgb[..., 2]
        grey_of_sum, level_of_sum = _grey_tables()
        return grey_of_sum[sums], level_of_sum[sums]
    grey = channel_mean(rgb)
    return grey, (grey // 4).astype(np.intp)


def classify_piece(rgb: np.ndarray, opts: PieceOptions | None = None, white_level: int = 236) -> str:
    """KIND_IMAGE for photographic content, else KIND_CHART (or KIND_TEXT for thin, label-like pieces)."""
    opts = opts or PieceOptions()
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    h, w = rgb.shape[:2]
    if h < 4 or w < 4:
        return KIND_TEXT
    inked = lightest_channel(rgb) < white_level
    inked_frac = float(inked.mean())
    codes = _colour_codes(rgb)[inked]
    if codes.size == 0:
        return KIND_TEXT
    counts = np.bincount(codes, minlength=4096)
    n_colours = int((counts >= max(3, 0.001 * codes.size)).sum())
    grey, grey_level = _grey_and_level(rgb)
    # grey-scale pictures (blots, scans) have few hues but many grey levels
    levels = np.bincount(grey_level[inked], minlength=64)
    n_colours = max(n_colours, int((levels >= max(3, 0.002 * codes.size)).sum()))
    # texture: |grey - 3x3 box mean| over inked pixels away from flat fills
    from scipy import ndimage

    hp = np.abs(grey - ndimage.uniform_filter(grey, size=3))
    texture = float(hp[inked].mean()) if inked.any() else 0.0
    if inked_frac >= opts.image_min_inked and n_colours >= opts.image_min_colours and texture >= opts.image_min_texture:
        return KIND_IMAGE
    # a narrow upright piece is a bar of a bar chart (blot strips lie horizontally)
    if w <= opts.bar_max_px and h >= opts.bar_min_aspect * w:
        return KIND_CHART
    # dark or smooth pictures (autoradiographs, faint blots, fluorescence on black, scans):
    # a filled box of many grey levels with real contrast; chart bars and fills are flat
    if (inked_frac >= opts.filled_min_inked and min(h, w) >= opts.filled_min_side
            and int((levels >= max(3, 0.002 * codes.size)).sum()) >= opts.filled_min_levels
            and float(grey[inked].std()) >= opts.filled_min_std):
        return KIND_IMAGE
    if inked_frac < 0.25 and min(h, w) < 64:
        return KIND_TEXT
    return KIND_CHART


def _fill(mask: np.ndarray) -> float:
    from scipy import ndimage

    return float(ndimage.binary_fill_holes(mask).mean()) if mask.size else 0.0


def split_figure(
    rgb: np.ndarray, opts: SplitOptions | None = None, piece_opts: PieceOptions | None = None,
    *, classify_strict: bool = True,
) -> list[Piece]:
    """Pieces of a figure with their kind; [] when it is one piece.

    With `classify_strict=False` the pieces of a strict split are all KIND_IMAGE (the
    strict split holds for our generated corpora, whose panels -- plots included -- are
    all meant to stay matchable); only the loose split's pieces get chart/text kinds.

    When the strict splitter (`scanner.panels.split_panels_strict`, every piece a filled
    rectangle) accepts, its boxes are returned, each classified; otherwise the loose
    piece-by-piece split. `[p.box for p in split_figure(rgb) if p.kind == KIND_IMAGE]`
    differs from `split_panels(rgb)` only in that split_panels keeps strict boxes of any kind.
    """
    from scanner.panels import split_panels_strict

    popts = piece_opts or PieceOptions()
    wl = (opts or SplitOptions()).white_level
    strict = split_panels_strict(rgb, opts)
    if strict:
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        mask = _dense_mask(rgb, opts or SplitOptions(), popts)
        boxes = [r for b in strict for r in _refine(mask, b, popts)]
        if not classify_strict:
            return [Piece(b, KIND_IMAGE) for b in boxes]
        return [Piece(b, classify_piece(rgb[b[1]:b[3], b[0]:b[2]], popts, wl)) for b in boxes]
    loose = split_figure_loose(rgb, opts, popts)
    return loose or _split_tiles(rgb, opts or SplitOptions(), popts)


def _split_tiles(rgb: np.ndarray, sopts: SplitOptions, popts: PieceOptions) -> list[Piece]:
    """Pictures tiled edge to edge with hairline white gutters (CT slices, radiographs); [] otherwise.

    Neither split above takes them: the gutters (2-5 px) are narrower than the strict
    splitter's minimum, and the bright tissue of the scans leaves too little paper for the
    loose split. A gutter here is a full-span line that is white nearly end to end; the
    split is accepted only when every tile is a picture.
    """
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    white = lightest_channel(rgb) >= sopts.white_level
    tiles = _tile_cut(white, (0, 0, white.shape[1], white.shape[0]), sopts.min_panel_px, popts.tile_line_white, 0)
    if len(tiles) < 2:
        return []
    pieces = [Piece(b, classify_piece(rgb[b[1]:b[3], b[0]:b[2]], popts, sopts.white_level)) for b in tiles]
    return pieces if all(p.kind == KIND_IMAGE for p in pieces) else []


def _tile_cut(white: np.ndarray, box: Box, min_px: int, line_white: float, depth: int) -> list[Box]:
    """Recursive cut of `box` along full-span lines at least `line_white` white, parts >= min_px."""
    x0, y0, x1, y1 = box
    sub = white[y0:y1, x0:x1]
    if depth >= 3 or sub.size == 0:
        return [box]
    for axis in (1, 0):  # columns first: tiles side by side are the common layout
        frac = sub.mean(axis=0) if axis == 1 else sub.mean(axis=1)
        gutter = frac >= line_white
        # the tiles are the runs between gutter lines; white margins at the border are trimmed
        cuts: list[tuple[int, int]] = []
        i, n = 0, gutter.size
        while i < n:
            if gutter[i]:
                i += 1
                continue
            j = i
            while j < n and not gutter[j]:
                j += 1
            cuts.append((i, j))
            i = j
        if len(cuts) < 2 or any(e - s < min_px for s, e in cuts):
            continue
        parts = [(x0 + s, y0, x0 + e, y1) if axis == 1 else (x0, y0 + s, x1, y0 + e) for s, e in cuts]
        return [t for b in parts for t in _tile_cut(white, b, min_px, line_white, depth + 1)]
    return [box]


def _merge_overlapping(boxes: list[Box]) -> list[Box]:
    """Union boxes that overlap until none do (fragments of one picture on a pale background)."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1]):
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def _refine(mask: np.ndarray, box: Box, popts: PieceOptions, depth: int = 0) -> list[Box]:
    """Cut one connected piece along thin, nearly empty lines when every part is a filled
    rectangle (blot strips stacked 1-3 px apart, micrographs tiled with hairline gutters)."""
    x0, y0, x1, y1 = box
    sub = mask[y0:y1, x0:x1]
    if depth >= 4 or sub.size == 0:
        return [box]
    for axis in (0, 1):
        length, other = sub.shape[axis], sub.shape[1 - axis]
        empty = sub.sum(axis=1 - axis) <= popts.refine_line_ink_frac * other
        segs: list[tuple[int, int]] = []
        start, i = 0, 0
        while i < length:
            if empty[i]:
                j = i
                while j < length and empty[j]:
                    j += 1
                if i > 0 and j < length and j - i >= popts.refine_gutter_px:
                    segs.append((start, i))
                    start = j
                i = j
            else:
                i += 1
        if not segs:
            continue
        segs.append((start, length))
        parts: list[Box] = []
        ok = True
        for s, e in segs:
            part = sub[s:e, :] if axis == 0 else sub[:, s:e]
            t = _tight(part)
            if t is None:
                continue
            px0, py0, px1, py1 = t
            if min(px1 - px0, py1 - py0) < popts.min_piece_px or _fill(part[py0:py1, px0:px1]) < popts.refine_min_fill:
                ok = False
                break
            if axis == 0:
                parts.append((x0 + px0, y0 + s + py0, x0 + px1, y0 + s + py1))
            else:
                parts.append((x0 + s + px0, y0 + py0, x0 + s + px1, y0 + py1))
        if ok and len(parts) >= 2:
            out: list[Box] = []
            for b in parts:
                out.extend(_refine(mask, b, popts, depth + 1))
            return out
    return [box]


def _merge_blobs(rgb: np.ndarray, mask: np.ndarray, boxes: list[Box], sopts: SplitOptions, popts: PieceOptions) -> list[Box]:
    """Keep a picture on a pale background whole: image-like pieces that are not filled
    rectangles (cells, tissue islands) are fragments of one picture, so their union box,
    and every piece it overlaps, becomes one piece."""
    fills = {b: _fill(mask[b[1]:b[3], b[0]:b[2]]) for b in boxes}
    blobs = [
        b for b in boxes
        if fills[b] < popts.refine_min_fill
        and classify_piece(rgb[b[1]:b[3], b[0]:b[2]], popts, sopts.white_level) == KIND_IMAGE
    ]
    # a light-background blot strip is a fairly filled box; a fragment of a picture is not
    if not blobs or min(fills[b] for b in blobs) >= popts.blob_max_fill:
        return boxes
    union = (min(b[0] for b in blobs), min(b[1] for b in blobs), max(b[2] for b in blobs), max(b[3] for b in blobs))
    rest = [b for b in boxes if b not in blobs]
    return _merge_overlapping([union, *rest])


def _on_paper(rgb: np.ndarray, white_level: int, popts: PieceOptions) -> bool:
    """Is the figure's background white paper (gutters between panels), not a pale picture's own ground?"""
    lightest = lightest_channel(rgb)
    background = lightest >= white_level
    if not background.any():
        return False
    return float((lightest[background] >= popts.paper_level).mean()) >= popts.min_paper_share


def split_figure_loose(
    rgb: np.ndarray, opts: SplitOptions | None = None, piece_opts: PieceOptions | None = None,
) -> list[Piece]:
    """All pieces of a figure with their kind, in reading order; [] when it is one piece.

    Pieces are the connected parts of the dense ink mask (thin strokes -- lane labels,
    protein names, arrows, axes, text -- opened away, so they neither bridge gutters nor
    stick to a strip), boxes that overlap merged (a picture on a pale background is one
    piece), and each piece cut further along hairline gutters when all its parts are
    filled rectangles. Unlike `split_panels_strict`, a chart or text piece does not veto
    the split: image pieces are kept and the others are returned as KIND_CHART / KIND_TEXT
    so callers can flag them out of matching.
    """
    from scipy import ndimage

    sopts = opts or SplitOptions()
    popts = piece_opts or PieceOptions()
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    h, w = rgb.shape[:2]
    if max(h, w) < 2 * sopts.min_panel_px:
        return []
    if not _on_paper(rgb, sopts.white_level, popts):
        return []
    mask = _dense_mask(rgb, sopts, popts)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    boxes: list[Box] = []
    for sl in ndimage.find_objects(labels):
        if sl is None:
            continue
        by, bx = sl
        if by.stop - by.start >= popts.min_piece_px and bx.stop - bx.start >= popts.min_piece_px:
            boxes.append((bx.start, by.start, bx.stop, by.stop))
    boxes = _merge_overlapping(boxes)
    refined: list[Box] = []
    for b in boxes:
        refined.extend(_refine(mask, b, popts))
    refined = _merge_blobs(rgb, mask, refined, sopts, popts)
    refined.sort(key=lambda b: (b[1], b[0]))
    min_area = popts.min_image_area_frac * h * w
    kept = []
    for b in refined:
        bw, bh = b[2] - b[0], b[3] - b[1]
        kind = classify_piece(rgb[b[1]:b[3], b[0]:b[2]], popts, sopts.white_level)
        if kind == KIND_IMAGE and bw * bh < min_area:
            kind = KIND_TEXT
        kept.append(Piece(b, kind))
    if len(kept) < 2 or not any(p.kind == KIND_IMAGE for p in kept):
        return []  # one piece, or only chart/text pieces: the figure stays whole (it is matched as such)
    return kept
