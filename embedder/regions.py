"""Sub-regions of a panel, embedded as extra index entries so that crops are found (issue 13).

One vector per panel finds altered copies of the whole panel, but a crop keeping a
quarter to half of a real panel's area has cosine ~0.3 to it and ranks 14th-40th
among its neighbours: the pooled vector of the whole mixes in everything the crop
lost. A vector of a sub-region of about the crop's extent, on the other hand, sees
nearly the same pixels as the crop. `sub_regions` cuts a few such windows (a layout):

- ``"2x2c"``: the four half-size quadrants and the centre half-size window (5 regions);
- ``"3x3"``: the nine third-size tiles;
- ``"2x2c+3x3"``: both (14 regions).

Windows are boxes in pixels (x0, y0, x1, y1). Panels whose shorter side is below
`min_side` get no sub-regions (their tiles would be too small to mean anything), so
small panels cost nothing extra. `benchmarks/bench_crop_candidates.py` measures
which layout finds which crops, and at what index size and embedding time.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from PIL import Image

LAYOUTS = ("2x2c", "3x3", "2x2c+3x3")
DEFAULT_LAYOUT = "2x2c"
# Shorter panel side (pixels) below which a panel gets no sub-region vectors.
MIN_SIDE = 96

Box = tuple[int, int, int, int]


class Embeds(Protocol):
    def embed(self, images: Sequence[Image.Image]) -> np.ndarray: ...


def _grid(w: int, h: int, n: int) -> list[Box]:
    xs = [round(w * i / n) for i in range(n + 1)]
    ys = [round(h * i / n) for i in range(n + 1)]
    return [(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(n) for i in range(n)]


def region_boxes(size: tuple[int, int], layout: str = DEFAULT_LAYOUT, min_side: int = MIN_SIDE) -> list[Box]:
    """The sub-region boxes of a panel of `size` (w, h); [] when its shorter side is below `min_side`."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    w, h = size
    if min(w, h) < min_side:
        return []
    boxes: list[Box] = []
    if "2x2c" in layout:
        boxes += _grid(w, h, 2)
        boxes.append((w // 4, h // 4, w // 4 + round(w / 2), h // 4 + round(h / 2)))
    if "3x3" in layout:
        boxes += _grid(w, h, 3)
    return boxes


def sub_regions(image: Image.Image, layout: str = DEFAULT_LAYOUT, min_side: int = MIN_SIDE) -> list[Image.Image]:
    """The sub-region crops of `image` (see `region_boxes`)."""
    return [image.crop(box) for box in region_boxes(image.size, layout, min_side)]


def embed_regions(embedder: Embeds, images: Sequence[Image.Image], layout: str = DEFAULT_LAYOUT,
                  min_side: int = MIN_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """Sub-region vectors of a batch: (owner position per vector, (M, D) vectors) with one `embed` call.

    `embedder` is an `embedder.inference.Embedder` (anything with `embed(images) -> (M, D)`).
    The owners are positions in `images`.
    """
    owners: list[int] = []
    crops: list[Image.Image] = []
    for i, image in enumerate(images):
        parts = sub_regions(image, layout, min_side)
        owners += [i] * len(parts)
        crops += parts
    return np.asarray(owners, dtype=np.int64), embedder.embed(crops)
