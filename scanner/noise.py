"""Noise that must not reach matching: tiny images, near-uniform images, chart pieces, text, boilerplate.

`tiny`, `uniform`, `chart` and `text` are properties of one image (`image_flags`); `boilerplate` (the same
pixels on many pages, in many documents or at a template's spot, e.g. a publisher logo) needs the whole corpus, so
it is a separate pass run after all documents are read: one rule (`boilerplate_mask`)
with adapters for records (`flag_boilerplate`, `reusescan extract`) and for store
tables (`flag_boilerplate_table`, `reusescan scan` / `nightly`).
"""
from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from scanner.panels import channel_mean, lightest_channel, square_erosion, square_opening
from scanner.records import FLAG_BOILERPLATE, FLAG_CHART, FLAG_TEXT, FLAG_TINY, FLAG_UNIFORM, PanelRecord

# A pixel this light in every channel is white paper.
PAPER_LEVEL = 235
# A pixel this dark in its darkest channel is ink (a yellow or cyan line is ink, light anti-aliasing is not).
INK_LEVEL = 160
# Even faint ink (anti-aliasing) joins strokes: at this level a letter is one piece, only true dots stand alone.
FAINT_INK_LEVEL = 230
# Truly white: the paper of a page. A pale slide or a plot background drawn by a generator is below it.
PAPER_WHITE = 250
# Boilerplate is small: a logo or icon (longest side at most LOGO_MAX_SIDE_PT) or a
# banner strip (shortest side at most BANNER_MAX_SIDE_PT). A large figure that
# recurs verbatim across papers is exactly what a reviewer must see, never noise.
LOGO_MAX_SIDE_PT = 150.0
BANNER_MAX_SIDE_PT = 60.0
# The top of a page, where running headers put journal logos on every page.
HEADER_BAND_PT = 72.0
# Badges, icons and cover thumbnails of journal templates (CrossMark, open-access locks,
# publisher logos) are at most this big; two such placements (whole placements: a panel of a
# larger figure is not one) in the template zones of two papers are never reported as a
# pair, even when their pixels differ (another rendering).
ICON_MAX_SIDE_PT = 80.0  # at most LOGO_MAX_SIDE_PT: an icon is small (`same_spot_hashes` counts on it)
BOILERPLATE_MIN_DOCS = 3
BOILERPLATE_MIN_PAGES = 4
# Two placements are "at the same spot" when every edge agrees within this many points: a
# template places its images identically in every paper, while a reused figure is laid out anew.
SAME_SPOT_PT = 1.0
# A page of two different papers sharing this many images, each at the same spot, is a
# publisher's page (a back cover advertising the journal's other titles), whatever the sizes.
TEMPLATE_PAGE_MIN_IMAGES = 3

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class NoiseOptions:
    """Thresholds of the per-image noise flags."""

    min_side_px: int = 24        # tiny: a side shorter than this many pixels ...
    min_pixels: int = 40 * 40    # ... or fewer pixels than this ...
    min_side_pt: float = 14.0    # ... or (PDF placements) a side shorter than this on the page
    uniform_std: float = 4.0     # uniform: grey-level standard deviation below this, unless the 1st to
    uniform_spread: float = 12.0 # 99th percentile span this many levels (a dim but real micrograph) ...
    uniform_share: float = 0.995 # ... or this share of pixels within +-6 levels of the median
    # chart piece: what is left after removing each row's (or each column's) mean is below this
    # share of the image's own variation. Measured on real papers: gradient bars of a bar chart
    # 0.000; every real panel (blots, micrographs, histology, CT, 713 panels of 106 papers and
    # 248 microscopy images) 0.26 or more.
    chart_max_residual: float = 0.1
    # text drawn as an image (axis labels, letters): at most this long on the page and at most
    # this many distinct colours (glyphs in one ink on paper, anti-aliasing off). On the real
    # development papers such labels are 15-21 pt with 2 colours; real panels that small are tiny anyway.
    label_max_side_pt: float = 36.0
    label_max_colours: int = 4
    # bar piece of a split chart: this share of its pixels within +-6 levels of their column's
    # (or row's) median colour, less than `bar_max_paper` of it white paper (a plot on paper or
    # a blot on white stays matchable) and less than `bar_max_dark` of it black (a fluorescence
    # field: sparse cells on black is flat too). Measured on the 34 publisher PDFs: bars with
    # error bars and numbers inside 0.89-0.99 (black share <= 0.50); real pictures cut from the
    # same figures 0.23-0.79, two fluorescence fields 0.94-0.95 (black share 0.95).
    bar_min_banded: float = 0.88
    bar_max_paper: float = 0.5
    bar_max_dark: float = 0.6
    # plot drawn as one raster (a line plot, scatter, Kaplan-Meier plot, a bar chart that did not
    # split): at least `plot_min_paper` of it white paper and at most `plot_max_filled` of it filled
    # ink (ink left after removing strokes thinner than `plot_stroke_px`, then `plot_stroke_px` of
    # its rim). Only for figures that do not split (the pieces of a split figure have their own
    # kinds). Paper is truly white (PAPER_WHITE): a pale slide is not paper. Measured: plots of the
    # published figures and the real papers 0.000-0.094 filled; the least filled real pictures (PET
    # and CT scans on paper) 0.26.
    flag_plots: bool = True
    plot_min_paper: float = 0.5
    plot_max_filled: float = 0.12
    plot_stroke_px: int = 5
    # ... except a flow-cytometry plot (`is_flow_plot`), whose duplication an integrity editor must
    # see: its ink is a pseudocolour ramp (`hue_run`: at least `flow_min_hue_run` neighbouring hue
    # bins of 15 degrees, each >= 2% of the coloured ink), a cloud of dots (`dot_cloud`: at least
    # `flow_min_cloud` of the image is dots of <= 4 px with three more dot pixels in their 7 x 7
    # window), or contour lines (`contour_loops`: a closed, non-rectangular curve inside another
    # one, or `flow_min_holes` such holes tangled in one web). Tuned on the clean set's charts, 48
    # plots of the logos set, the real papers' 14 plots, 40 generator flow plots and the R-drawn
    # flow plots of CytoExploreR's documentation: charts, KM curves, spectra, forest plots, flow
    # charts and chemical drawings reach hue runs <= 4, clouds <= 0.00064 (a molecular mesh
    # 0.0019), <= 16 holes and no nested loop (a publisher's logo has one); flow plots have hue
    # runs 5-16, clouds >= 0.0017 or nested loops. Measured in docs/benchmarks.md.
    flow_min_hue_run: int = 5
    flow_min_cloud: float = 0.001
    flow_min_holes: int = 20


def is_tiny(width: int, height: int, opts: NoiseOptions, bbox_pt: tuple[float, float] | None = None) -> bool:
    """Icon- or bullet-sized: too few pixels, or drawn tiny on the page."""
    if min(width, height) < opts.min_side_px or width * height < opts.min_pixels:
        return True
    if bbox_pt is not None and min(bbox_pt) < opts.min_side_pt:
        return True
    return False


def _grey(rgb: np.ndarray) -> np.ndarray:
    """`rgb.astype(np.float32).mean(axis=2)`, bit for bit, without numpy's slow reduction over the 3-long last axis.

    For uint8 pixels the sum of three channels is an exact float32 integer whatever the order,
    so `channel_mean` (channel by channel) gives the same floats ~10x faster.
    """
    if rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3:
        return channel_mean(rgb)
    return rgb.astype(np.float32).mean(axis=2)


def is_uniform(rgb: np.ndarray, opts: NoiseOptions) -> bool:
    """Near-constant image (blank, solid fill): nothing to match on."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))  # subsample big images
    gray = _grey(rgb[::step, ::step])
    if gray.size == 0:
        return True
    if float(gray.std()) < opts.uniform_std:
        low, high = np.percentile(gray, [1, 99])
        if high - low < opts.uniform_spread:
            return True
    hist = np.bincount(np.clip(gray, 0, 255).astype(np.uint8).ravel(), minlength=256)
    peak = int(hist.argmax())
    return float(hist[max(0, peak - 6): peak + 7].sum()) / gray.size >= opts.uniform_share


def is_chart_fragment(rgb: np.ndarray, opts: NoiseOptions) -> bool:
    """A flat or plain-gradient image (constant along its rows or its columns): a bar of a chart.

    PDFs often draw the bars of a chart, colour ramps and legend swatches as small raster
    images. Every real picture varies in both directions; these vary in one at most.
    """
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))  # subsample big images
    variation, along_rows, along_columns = chart_residuals(rgb[::step, ::step])
    return min(along_rows, along_columns) <= opts.chart_max_residual * variation


# float32 holds every integer below this exactly: sums of uint8 pixels that stay below it are exact in any order.
_EXACT_F32 = 2**24


def chart_residuals(rgb: np.ndarray) -> tuple[float, float, float]:
    """Mean absolute deviation of the pixels from their channel means, from their row means and from their column means.

    The reference formula is `_chart_residuals_reference` (float32, numpy's own reductions);
    uint8 RGB pixels take `_chart_residuals_rgb8`, which gives the same floats bit for bit
    about twice as fast (numpy reduces and broadcasts over a 3-long last axis very slowly).
    """
    h, w = rgb.shape[:2]
    if rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and h * w > 0 and w * 255 < _EXACT_F32:
        return _chart_residuals_rgb8(rgb)
    return _chart_residuals_reference(rgb)


def _chart_residuals_reference(rgb: np.ndarray) -> tuple[float, float, float]:
    """`chart_residuals` as written first, for any dtype and shape."""
    x = rgb.astype(np.float32)
    if x.ndim == 2:
        x = x[..., None]
    variation = float(np.abs(x - x.mean(axis=(0, 1), keepdims=True)).mean())
    along_rows = float(np.abs(x - x.mean(axis=1, keepdims=True)).mean())
    along_columns = float(np.abs(x - x.mean(axis=0, keepdims=True)).mean())
    return variation, along_rows, along_columns


def _mean_like_numpy(total: np.ndarray, count: int) -> np.ndarray:
    """`total / count` in place, as `np.mean` turns its float32 sum into the mean."""
    return np.true_divide(total, np.intp(count), out=total, casting="unsafe")


def _chart_residuals_rgb8(rgb: np.ndarray) -> tuple[float, float, float]:
    """`_chart_residuals_reference` of uint8 (H, W, 3) pixels with W * 255 < 2**24: the same floats.

    Identity rests on three facts: (1) numpy sums float32 over axes (0, 1) and over axis 1 one
    pixel after another, in memory order; (2) such a sum of integers is exact while it stays
    below 2**24, so a row sum (W * 255 < 2**24) may be taken in any order, and a channel's total
    only needs the sequential order (`np.add.accumulate`) when it could reach 2**24;
    (3) element-wise differences and the final `.mean()` over the same contiguous (H, W, 3)
    array are unchanged. `tests/scanner/test_fast_paths.py` pins it against the reference.
    """
    h, w, c = rgb.shape
    # C order whatever `rgb`'s: `flat` below must be a view of `dev` (of a transposed image, `astype` kept
    # its column order, `reshape` then copied, and the variation was taken on uninitialised memory)
    x = rgb.astype(np.float32, order="C")
    planes = np.moveaxis(x, 2, 0).copy()  # (3, H, W): each channel contiguous
    dev = np.empty_like(x)
    flat = dev.reshape(h, w * c)  # a view: row-wise broadcasting of a (W * 3,) vector is fast

    totals = planes.reshape(c, h * w).sum(axis=1)
    if h * w * 255 >= _EXACT_F32:  # may round: take numpy's order (pixel after pixel)
        totals = np.array([np.add.accumulate(planes[k].ravel())[-1] for k in range(c)], dtype=np.float32)
    channel_means = _mean_like_numpy(totals, h * w)
    np.subtract(x.reshape(h, w * c), np.tile(channel_means, w), out=flat)
    variation = float(np.abs(dev, out=dev).mean())

    row_means = _mean_like_numpy(planes.sum(axis=2), w)  # (3, H), exact sums
    for k in range(c):
        np.subtract(x[:, :, k], row_means[k][:, None], out=dev[:, :, k])
    along_rows = float(np.abs(dev, out=dev).mean())

    np.subtract(x, x.mean(axis=0, keepdims=True), out=dev)  # column means: numpy's fast case already
    along_columns = float(np.abs(dev, out=dev).mean())
    return variation, along_rows, along_columns


def is_label(rgb: np.ndarray, size_pt: tuple[float, float], opts: NoiseOptions) -> bool:
    """Text drawn as an image: small on the page and in a handful of exact colours (ink on paper)."""
    if max(size_pt) > opts.label_max_side_pt:
        return False
    x = rgb.reshape(-1, rgb.shape[-1]) if rgb.ndim == 3 else rgb.reshape(-1, 1)
    codes = np.zeros(len(x), dtype=np.int64)
    for c in range(x.shape[1]):
        codes = codes * 256 + x[:, c].astype(np.int64)
    return len(np.unique(codes)) <= opts.label_max_colours


def banded_share(rgb: np.ndarray, tol: int = 6) -> float:
    """Share of pixels that are white paper or within `tol` levels of their column's median ink colour (or row's, whichever is more).

    The medians leave paper out: the bars of a chart, of different heights, are flat along
    their columns up to the paper above them.
    """
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))  # subsample big images
    x = rgb[::step, ::step].astype(np.float32)
    if x.ndim == 2:
        x = x[..., None]
    if x.size == 0:
        return 1.0
    paper: np.ndarray = np.asarray((x >= PAPER_LEVEL).all(axis=-1))
    ink = np.where(paper[..., None], np.nan, x)
    best = 0.0
    for axis in (0, 1):
        median = _median_ink(ink, ~paper, axis)
        best = max(best, float(((np.abs(x - median).max(axis=-1) <= tol) | paper).mean()))
    return best


def _median_ink(ink: np.ndarray, inked: np.ndarray, axis: int) -> np.ndarray:
    """Per line along `axis`, the (lower) median of the non-NaN values of `ink` (NaN sorts last)."""
    ordered = np.sort(ink, axis=axis)
    middle = np.maximum(inked.sum(axis=axis, keepdims=True) - 1, 0) // 2
    return np.take_along_axis(ordered, np.repeat(middle[..., None], ink.shape[-1], axis=-1), axis=axis)


def is_bar_piece(rgb: np.ndarray, opts: NoiseOptions) -> bool:
    """A filled bar (or bars) of a chart with its error bar and numbers: flat along one axis, neither paper nor black.

    `is_chart_fragment` needs the whole image flat along an axis; a bar cut from a chart
    with its error bar, asterisks or value inside is flat only for most of its pixels.
    Only for panels cut from a figure: a whole plot placed as an image stays matchable.
    """
    px = rgb.reshape(-1, rgb.shape[-1]) if rgb.ndim == 3 else rgb.reshape(-1, 1)
    if px.size == 0:
        return False
    paper = float((px >= PAPER_LEVEL).all(axis=-1).mean())
    dark = float((px <= 40).all(axis=-1).mean())
    return paper < opts.bar_max_paper and dark < opts.bar_max_dark and banded_share(rgb) >= opts.bar_min_banded


def is_plot(rgb: np.ndarray, opts: NoiseOptions) -> bool:
    """A chart on white paper: mostly paper, its ink strokes (axes, lines, text) with little filled area, not a flow plot.

    A figure that is one chart does not split into pieces, so the piece kinds never see
    it; every real picture, even a scan on paper, fills far more of its box. A flow-cytometry
    plot on paper is a plot too, but its duplication is a reuse to see (`is_flow_plot`).
    """
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))  # subsample big images
    x = lightest_channel(rgb[::step, ::step])
    if x.size == 0:
        return False
    paper = x >= PAPER_WHITE
    if not opts.flag_plots or float(paper.mean()) < opts.plot_min_paper:
        return False
    filled = square_erosion(square_opening(~paper, opts.plot_stroke_px), opts.plot_stroke_px)
    return float(filled.mean()) <= opts.plot_max_filled and not is_flow_plot(rgb, opts)


def block_mean(rgb: np.ndarray, max_pixels: int = 250_000) -> np.ndarray:
    """`rgb` (H, W, 3) shrunk by an integer factor to at most `max_pixels`, each pixel the mean of its block.

    Unlike striding, averaging keeps thin strokes (text, lines) whole: they get lighter, not broken into dots.
    """
    f = max(1, int(np.ceil(np.sqrt(rgb.shape[0] * rgb.shape[1] / max_pixels))))
    if f == 1:
        return rgb
    h, w = rgb.shape[0] // f * f, rgb.shape[1] // f * f
    return rgb[:h, :w].reshape(h // f, f, w // f, f, -1).mean(axis=(1, 3)).astype(np.uint8)


def hue_run(rgb: np.ndarray, ink: np.ndarray, bins: int = 24, share: float = 0.02, min_saturation: int = 60) -> int:
    """Longest run of neighbouring hue bins (of `bins` around the circle) each holding >= `share` of the coloured ink.

    A pseudocolour density or contour plot grades its ink through a ramp of hues; the
    series of a chart are a few separate colours.
    """
    px = rgb[ink].astype(np.int32)
    px = px[px.max(axis=-1) - px.min(axis=-1) >= min_saturation]  # coloured, not grey or black
    if len(px) < 20:
        return 0
    from PIL import Image

    hue = np.asarray(Image.fromarray(px[None].astype(np.uint8)).convert("HSV"))[0, :, 0].astype(np.int64)
    occupied = np.bincount(hue * bins // 256, minlength=bins) / len(px) >= share
    if occupied.all():
        return bins
    best = run = 0
    for v in np.concatenate([occupied, occupied]):  # twice round: a run may wrap past red
        run = run + 1 if v else 0
        best = max(best, run)
    return best


def dot_cloud(labels: np.ndarray, sizes: np.ndarray, max_dot: int = 4) -> float:
    """Share of the image's pixels that are dots (ink pieces of <= `max_dot` pixels) with three more dot pixels in their 7 x 7 window: a dot plot's cloud.

    `labels`, `sizes`: the 8-connected ink components and their pixel counts (index 0 = paper).
    Text, even small, is made of larger strokes; its full stops stand alone.
    """
    from scipy import ndimage

    dot = sizes <= max_dot
    dot[0] = False
    dots = dot[labels]
    near = ndimage.uniform_filter(dots.astype(np.float32), size=7) * 49
    return float((dots & (near >= 3.5)).sum()) / max(1, labels.size)


def contour_loops(labels: np.ndarray, min_hole: float = 0.0005, max_rectangular: float = 0.9) -> tuple[int, int]:
    """(closed curves inside another closed curve, all enclosed holes): contour levels, nested or tangled into one web.

    Only holes that are >= `min_hole` of the image and fill less than `max_rectangular` of
    their box count (frames, gates, legend and flow-chart boxes are rectangles; letters' holes are small).
    """
    from scipy import ndimage

    min_area = max(12.0, min_hole * labels.size)
    min_side = int(np.sqrt(min_area))
    loops: list[tuple[int, tuple[slice, slice], np.ndarray]] = []
    holes_total = 0
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None or box[0].stop - box[0].start < min_side or box[1].stop - box[1].start < min_side:
            continue
        curve = labels[box] == i
        holes, n = ndimage.label(ndimage.binary_fill_holes(curve) & ~curve)
        if n == 0:
            continue
        area = np.bincount(holes.ravel())
        keep = np.zeros(n + 1, dtype=bool)
        for j, hole in enumerate(ndimage.find_objects(holes), start=1):
            extent = (hole[0].stop - hole[0].start) * (hole[1].stop - hole[1].start)
            keep[j] = min_area <= area[j] < max_rectangular * extent
        if keep.any():
            holes_total += int(keep.sum())
            loops.append((i, box, keep[holes]))
    ids = {i for i, _, _ in loops}
    nested = sum(len((ids - {i}).intersection(np.unique(labels[box][inside]))) for i, box, inside in loops)
    return nested, holes_total


def is_flow_plot(rgb: np.ndarray, opts: NoiseOptions) -> bool:
    """A flow-cytometry plot: a pseudocolour ramp, a cloud of dots or nested contour lines (see NoiseOptions)."""
    from scipy import ndimage

    x = block_mean(rgb if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=-1))
    lightest = lightest_channel(x)
    ink = lightest < INK_LEVEL
    if hue_run(x, ink) >= opts.flow_min_hue_run:
        return True
    eight = np.ones((3, 3), dtype=bool)
    labels, _ = ndimage.label(lightest < FAINT_INK_LEVEL, structure=eight)
    if dot_cloud(labels, np.bincount(labels.ravel())) >= opts.flow_min_cloud:
        return True
    labels, _ = ndimage.label(ink, structure=eight)
    nested, holes = contour_loops(labels)
    return nested >= 1 or holes >= opts.flow_min_holes


def image_flags(rgb: np.ndarray, opts: NoiseOptions, size_pt: tuple[float, float] | None = None,
                *, piece: bool = False) -> list[str]:
    """The noise flags of one image (`tiny`, `uniform`, `chart`, `text`): the per-image half of the noise rule.

    `piece` says the image is a panel cut from a larger figure (bar pieces are flagged only then).
    Plots (`is_plot`) are judged on figures that do not split, in `scanner.placement`.
    """
    flags = []
    if is_tiny(rgb.shape[1], rgb.shape[0], opts, size_pt):
        flags.append(FLAG_TINY)
    if is_uniform(rgb, opts):
        flags.append(FLAG_UNIFORM)
    elif is_chart_fragment(rgb, opts) or (piece and is_bar_piece(rgb, opts)):
        flags.append(FLAG_CHART)
    if size_pt is not None and FLAG_UNIFORM not in flags and is_label(rgb, size_pt, opts):
        flags.append(FLAG_TEXT)
    return flags


def pixel_hash(image_png: bytes) -> str:
    """Hash of a record's pixels (the PNG bytes are a deterministic function of them)."""
    return hashlib.sha256(image_png).hexdigest()


def boilerplate_hashes(
    occurrences: Iterable[tuple[str, str, int]], min_docs: int = 3, min_pages: int = 4
) -> set[str]:
    """Pixel hashes that occur in >= `min_docs` documents or on >= `min_pages` distinct pages.

    `occurrences` are (pixel_hash, doc, page) triples, one per record.
    """
    docs: dict[str, set[str]] = defaultdict(set)
    pages: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for h, doc, page in occurrences:
        docs[h].add(doc)
        pages[h].add((doc, page))
    return {h for h in docs if len(docs[h]) >= min_docs or len(pages[h]) >= min_pages}


def in_template_zone(page: int, bbox: Box) -> bool:
    """Where a journal template puts logos, cover thumbnails and badges: page 1, or the header band."""
    return page == 1 or bbox[3] <= HEADER_BAND_PT


def icon_in_template_zone(page: np.ndarray, bbox: np.ndarray, max_side_pt: float = ICON_MAX_SIDE_PT) -> np.ndarray:
    """Per placement (pages (n,), boxes (n, 4) in pt): icon-sized and on page 1 or in the header band."""
    side = np.maximum(bbox[:, 2] - bbox[:, 0], bbox[:, 3] - bbox[:, 1])
    return (side <= max_side_pt) & ((page == 1) | (bbox[:, 3] <= HEADER_BAND_PT))


def is_small(bbox: Box) -> bool:
    """Logo-sized (longest side <= LOGO_MAX_SIDE_PT) or a banner strip (shortest side <= BANNER_MAX_SIDE_PT)."""
    w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    return max(w, h) <= LOGO_MAX_SIDE_PT or min(w, h) <= BANNER_MAX_SIDE_PT


def logo_hashes(
    placements: Iterable[tuple[str, str, int, Box]], min_docs: int = 2, max_side_pt: float = LOGO_MAX_SIDE_PT,
) -> set[str]:
    """Pixel hashes of logo-like placements: logo- or banner-sized, in a template zone, in >= `min_docs` documents.

    `placements` are (pixel_hash, doc, page, bbox) tuples. A publisher's logo, a journal cover
    thumbnail or a CrossMark-style badge sits on the first page or in the header of every paper
    of that journal, so two papers suffice, and its position shifts a little with the
    layout of each paper. A reused panel is rarely logo-sized (max side <= `max_side_pt`)
    and in a template zone in both papers. A running-header logo (the header band of two
    pages, even of one paper) is one too; a wide header logo is a banner (BioMed Central's is 177 x 34 pt).
    """
    docs: dict[str, set[str]] = defaultdict(set)
    header_pages: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for h, doc, page, bbox in placements:
        w, ht = bbox[2] - bbox[0], bbox[3] - bbox[1]
        small = max(w, ht) <= max_side_pt or min(w, ht) <= BANNER_MAX_SIDE_PT
        if small and in_template_zone(page, bbox):
            docs[h].add(doc)
        if small and bbox[3] <= HEADER_BAND_PT:
            header_pages[h].add((doc, page))
    return {h for h, where in docs.items() if len(where) >= min_docs} | {
        h for h, where in header_pages.items() if len(where) >= 2}


def _same_spot(a: Box, b: Box, tol: float = SAME_SPOT_PT) -> bool:
    return all(abs(u - v) <= tol for u, v in zip(a, b))


def _same_column(a: Box, b: Box, tol: float = SAME_SPOT_PT) -> bool:
    """Same left and right edges and the same height: one template slot at another height of the page."""
    return abs(a[0] - b[0]) <= tol and abs(a[2] - b[2]) <= tol and abs((a[3] - a[1]) - (b[3] - b[1])) <= tol


def _icon_sized(b: Box) -> bool:
    return max(b[2] - b[0], b[3] - b[1]) <= ICON_MAX_SIDE_PT


Place = tuple[str, int, Box]  # (document content, page, bbox) of one placement of an image


def same_spot_hashes(
    hashes: Sequence[str], contents: Sequence[str], pages: Sequence[int], boxes: Sequence[Box],
    *, min_page_images: int = TEMPLATE_PAGE_MIN_IMAGES,
) -> set[str]:
    """Pixel hashes a journal template places identically in two different documents.

    `contents` identify documents by their content (two byte-identical files, a paper
    submitted twice, are one document here: their pages pair up as reuse). A hash is
    template when
    - it is logo- or banner-sized (`is_small`) and sits at the same spot (every edge within
      SAME_SPOT_PT) on a page of two different documents (icons, logos, badges on any page), or
    - it is icon-sized (ICON_MAX_SIDE_PT) and drawn in the same column at the same size in two
      different documents, at any height (a template's icon beside a section that starts lower), or
    - it is one of >= `min_page_images` hashes that two pages of two different documents share,
      each at the same spot, whatever its size (a back page advertising the journal's titles).
    A figure reused in another paper is laid out anew there, alone.

    Memory grows with the placements, not with their pairs, and so does the time of the usual
    cases: a hash is settled at the first pair of its placements that flags it, only placements
    within SAME_SPOT_PT of each other's left edge are paired, and the page pairs of the third case
    are looked at only for a hash the first two left open, on pages holding >= `min_page_images`
    images that recur in another document. (Holding every page pair that shares a hash at the same
    spot, n²/2 for a logo in n papers, took +1.9 GB and 17 s for three logos in 5,000 generated
    papers, `benchmarks/bench_store_stage.py`.) What still costs a pair of placements: a large image
    at one spot in many documents, on pages that hold other recurring images too.
    """
    where: dict[str, list[Place]] = defaultdict(list)
    for h, c, p, b in zip(hashes, contents, pages, boxes):
        x0, y0, x1, y1 = (float(v) for v in b)
        where[h].append((c, int(p), (x0, y0, x1, y1)))
    where = {h: places for h, places in where.items() if len({c for c, _, _ in places}) >= 2}
    on_page: dict[tuple[str, int], list[tuple[str, Box]]] = defaultdict(list)
    for h, places in where.items():  # only images found in two documents: the others are no one's template
        for c, p, b in places:
            on_page[(c, p)].append((h, b))
    flagged: set[str] = set()
    open_hashes = []
    for h, places in where.items():
        # the earlier placement of a pair must be small (an icon is small too)
        if any(is_small(b) for _, _, b in places) and any(
                (_same_spot(a, b) and is_small(a)) or (_icon_sized(a) and _same_column(a, b))
                for (_, _, a), (_, _, b) in _pairs_in_line(places)):
            flagged.add(h)
        else:
            open_hashes.append(h)
    for h in open_hashes:
        if h in flagged:  # shared with a page pair that flagged another hash
            continue
        places = [(c, p, b) for c, p, b in where[h] if len(on_page[(c, p)]) >= min_page_images]
        for (ci, pi, a), (cj, pj, b) in _pairs_in_line(places):
            if _same_spot(a, b):
                shared = _shared_at_same_spot(on_page[(ci, pi)], on_page[(cj, pj)])
                if len(shared) >= min_page_images:
                    flagged |= shared
                    break
    return flagged


def _pairs_in_line(places: list[Place]) -> Iterator[tuple[Place, Place]]:
    """The pairs of `places` in different documents whose left edges are within SAME_SPOT_PT (the only ones
    `_same_spot` or `_same_column` can accept), each as (earlier, later) in `places`, lazily."""
    order = sorted((i for i, (_, _, b) in enumerate(places) if not math.isnan(b[0])), key=lambda i: places[i][2][0])
    for n, i in enumerate(order):
        for m in range(n + 1, len(order)):
            j = order[m]
            if places[j][2][0] - places[i][2][0] > SAME_SPOT_PT:
                break
            if places[i][0] != places[j][0]:
                yield places[min(i, j)], places[max(i, j)]


def _shared_at_same_spot(first: list[tuple[str, Box]], second: list[tuple[str, Box]]) -> set[str]:
    """The hashes placed at the same spot on two pages (each page's (hash, bbox) placements)."""
    boxes: dict[str, list[Box]] = defaultdict(list)
    for h, b in second:
        boxes[h].append(b)
    return {h for h, a in first if any(_same_spot(a, b) for b in boxes.get(h, ()))}


def add_flag(flags: Iterable[str], flag: str) -> tuple[str, ...]:
    """`flags` with `flag` appended once (order kept)."""
    flags = tuple(flags)
    return flags if flag in flags else flags + (flag,)


def boilerplate_mask(
    hashes: Sequence[str], docs: Sequence[str], pages: Sequence[int], boxes: Sequence[Box],
    *, min_docs: int = BOILERPLATE_MIN_DOCS, min_pages: int = BOILERPLATE_MIN_PAGES,
    contents: Sequence[str] | None = None,
) -> list[bool]:
    """The boilerplate rule, one entry per placement: True where it is a publisher's template.

    Placements are given as parallel sequences (pixel hash, document, page, bbox in pt;
    `contents`, the documents' content hashes, default `docs`).
    A pixel hash is boilerplate when either
    - its logo- or banner-sized placements (`LOGO_MAX_SIDE_PT`, `BANNER_MAX_SIDE_PT`)
      occur in >= `min_docs` documents or on >= `min_pages` pages (above what image
      reuse in papers looks like, below a logo on every page), or
    - it is logo- or banner-sized and in a template zone (page 1 or the header band) in two or
      more documents, wherever it sits there, or in the header band of two pages (`logo_hashes`:
      a journal template, even with only two papers of that journal), or
    - a template placed it at the same spot in two PDFs of different content
      (`same_spot_hashes`: small images anywhere, any size on a page sharing >= 3 such images).
    Every placement of a flagged hash is flagged.
    """
    small = [is_small(b) for b in boxes]
    recurring = boilerplate_hashes(((h, d, p) for h, d, p, s in zip(hashes, docs, pages, small) if s),
                                   min_docs=min_docs, min_pages=min_pages)
    logos = logo_hashes(zip(hashes, docs, pages, boxes))
    # only PDF pages have a template; an image file's box is its own size in pixels, so two copies
    # of one picture "sit at the same spot"
    pdf = [i for i, d in enumerate(docs) if str(d).lower().endswith(".pdf")]
    keys = contents if contents is not None else docs
    spots = same_spot_hashes([hashes[i] for i in pdf], [keys[i] for i in pdf], [pages[i] for i in pdf],
                             [boxes[i] for i in pdf])
    flagged = recurring | logos | spots
    return [h in flagged for h in hashes]


def flag_boilerplate(records: list[PanelRecord], min_docs: int = BOILERPLATE_MIN_DOCS,
                     min_pages: int = BOILERPLATE_MIN_PAGES) -> list[PanelRecord]:
    """`records` with `boilerplate` added where `boilerplate_mask` says so."""
    mask = boilerplate_mask([pixel_hash(r.image) for r in records], [r.doc for r in records],
                            [r.page for r in records], [r.bbox for r in records], min_docs=min_docs, min_pages=min_pages,
                            contents=[r.doc_sha256 for r in records])
    return [replace(r, flags=add_flag(r.flags, FLAG_BOILERPLATE)) if m else r for r, m in zip(records, mask)]


def flag_boilerplate_table(table: pa.Table, *, min_docs: int = BOILERPLATE_MIN_DOCS,
                           min_pages: int = BOILERPLATE_MIN_PAGES) -> pa.Table:
    """`table` (columns image or its pixel_hash, doc, page, x0..y1, flags) with `boilerplate` added to its flags per `boilerplate_mask`."""
    hashes = (table.column("pixel_hash").to_pylist() if "pixel_hash" in table.column_names  # computed before
              else [pixel_hash(img) for img in table.column("image").to_pylist()])
    mask = boilerplate_mask(
        hashes,
        table.column("doc").to_pylist(), table.column("page").to_pylist(),
        list(zip(*(table.column(c).to_pylist() for c in ("x0", "y0", "x1", "y1")))),
        min_docs=min_docs, min_pages=min_pages,
        contents=table.column("doc_sha256").to_pylist() if "doc_sha256" in table.column_names else None)
    if not any(mask):
        return table
    flags = [list(add_flag(f or (), FLAG_BOILERPLATE)) if m else list(f or ())
             for m, f in zip(mask, table.column("flags").to_pylist())]
    return table.set_column(table.schema.get_field_index("flags"), "flags", pa.array(flags, pa.list_(pa.string())))
