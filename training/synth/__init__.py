"""Procedural biology-like images: the project's own training, test and benchmark data.

No public data set or sample image is used (scikit-image's samples are reserved
for evaluation). Every generator is numpy-vectorised, seeded and deterministic,
and works at any size.

API:
- `KINDS`: the generator names.
- `generate(kind, seed, size)`: one RGB `PIL.Image` of `size = (width, height)`.
- `generate_specimen_field(kind, specimen_seed, field_index, size)`: another field
  of the same synthetic specimen: same style and statistics (magnification,
  staining, channels, blot layout), different content. `generate(kind, seed, size)`
  is field 0 of specimen `seed`. Different fields are the hard negatives.
- `FolderSource(path)`: the user's own images served with the same interface.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("fluorescence", "western_blot", "gel", "histology_he", "histology_dab", "brightfield", "flow")

_KIND_IDS = {k: i + 1 for i, k in enumerate(KINDS)}

Renderer = Callable[[np.random.Generator, np.random.Generator, tuple[int, int]], np.ndarray]


def _renderer(kind: str) -> Renderer:
    if kind == "fluorescence":
        from training.synth.microscopy import fluorescence

        return fluorescence
    if kind == "brightfield":
        from training.synth.microscopy import brightfield

        return brightfield
    if kind == "western_blot":
        from training.synth.blots import western_blot

        return western_blot
    if kind == "gel":
        from training.synth.blots import gel

        return gel
    if kind == "histology_he":
        from training.synth.histology import he

        return he
    if kind == "histology_dab":
        from training.synth.histology import dab

        return dab
    if kind == "flow":
        from training.synth.flow import flow_plot

        return flow_plot
    raise ValueError(f"unknown generator kind {kind!r}; expected one of {', '.join(KINDS)}")


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    w, h = int(size[0]), int(size[1])
    if w < 8 or h < 8:
        raise ValueError(f"size must be at least 8x8 pixels, got {size!r}")
    return w, h


def generate_specimen_field(kind: str, specimen_seed: int, field_index: int, size: tuple[int, int]) -> Image.Image:
    """Field `field_index` of synthetic specimen `specimen_seed` of `kind`, as an RGB image of size (w, h).

    The style is drawn from the specimen seed alone, the content from
    (specimen seed, field index): so fields share statistics but not content.
    """
    render = _renderer(kind)
    w, h = _check_size(size)
    kid = _KIND_IDS[kind]
    style = np.random.default_rng([kid, int(specimen_seed) & 0xFFFFFFFF, int(specimen_seed) >> 32 & 0xFFFFFFFF])
    field = np.random.default_rng([kid, int(specimen_seed) & 0xFFFFFFFF, int(specimen_seed) >> 32 & 0xFFFFFFFF, 7919, int(field_index)])
    arr = render(style, field, (h, w))
    if arr.shape != (h, w, 3) or arr.dtype != np.uint8:
        raise AssertionError(f"{kind} renderer returned {arr.shape} {arr.dtype}")
    return Image.fromarray(arr, "RGB")


def generate(kind: str, seed: int, size: tuple[int, int] = (256, 256)) -> Image.Image:
    """One image of `kind` for `seed` (field 0 of specimen `seed`), RGB, `size = (width, height)`."""
    return generate_specimen_field(kind, seed, 0, size)


def random_image(seed: int, size: tuple[int, int] = (256, 256)) -> tuple[str, Image.Image]:
    """An image of a kind chosen by `seed` (uniform over KINDS); returns (kind, image)."""
    kind = KINDS[int(np.random.default_rng([seed, 104729]).integers(len(KINDS)))]
    return kind, generate(kind, seed, size)


IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif"})


class FolderSource:
    """The user's own images as a source: lists image files under `path` (recursively, sorted).

    `get(seed, size)` returns image `seed % len(self)` as RGB, resized to `size`
    when given (a random crop is left to the alterations). Unreadable files are
    skipped with a warning when they are first opened.
    """

    def __init__(self, path: str | Path) -> None:
        self.root = Path(path)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.root}")
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise ValueError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {self.root}")

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Image.Image]:
        for i in range(len(self.files)):
            yield self.get(i)

    def get(self, seed: int, size: tuple[int, int] | None = None) -> Image.Image:
        """Image number `seed` modulo the folder size, RGB, optionally resized to (w, h)."""
        n = len(self.files)
        for k in range(n):
            path = self.files[(seed + k) % n]
            try:
                with Image.open(path) as im:
                    img = im.convert("RGB")
            except (OSError, ValueError) as exc:
                logger.warning("skipping unreadable image %s: %s", path, exc)
                continue
            return img.resize(size, Image.Resampling.BILINEAR) if size else img
        raise ValueError(f"no readable image under {self.root}")
