"""The fast paths of extraction give the same result, bit for bit, as the formulas they replace.

Extraction's output (flags, panel boxes, stored pixels) must not move when it gets cheaper:
each fast path is pinned here against its reference on random, sparse, striped and
odd-shaped inputs.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from scanner.noise import _chart_residuals_reference, _grey, chart_residuals
from scanner.panels import channel_mean, lightest_channel, square_dilation, square_erosion, square_opening
from scanner.pieces import _colour_codes, _grey_and_level

SHAPES = [(1, 1), (1, 9), (9, 1), (2, 3), (4, 4), (5, 300), (300, 5), (61, 47), (257, 640), (700, 420)]


def _images(rng: np.random.Generator, h: int, w: int) -> list[np.ndarray]:
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    paper = np.full((h, w, 3), 255, np.uint8)
    paper[rng.random((h, w)) < 0.1] = (7, 80, 200)
    stripes = np.broadcast_to(rng.integers(0, 256, (1, w, 3), dtype=np.uint8), (h, w, 3)).copy()
    pale = np.clip(rng.normal(230, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    return [noise, paper, stripes, pale]


@pytest.mark.parametrize(("h", "w"), SHAPES)
def test_chart_residuals_equal_the_reference(h: int, w: int) -> None:
    rng = np.random.default_rng(h * 1000 + w)
    for rgb in _images(rng, h, w):
        assert chart_residuals(rgb) == _chart_residuals_reference(rgb)
        sub = rgb[::2, ::3]  # strided, as the subsampled figures are
        assert chart_residuals(sub) == _chart_residuals_reference(sub)
        turned = rgb.transpose(1, 0, 2)  # column order in memory: once read uninitialised memory (nan, garbage)
        assert chart_residuals(turned) == _chart_residuals_reference(np.ascontiguousarray(turned))


def test_chart_residuals_other_inputs_take_the_reference() -> None:
    grey = np.random.default_rng(0).integers(0, 256, (40, 30), dtype=np.uint8)
    assert chart_residuals(grey) == _chart_residuals_reference(grey)


@pytest.mark.parametrize(("h", "w"), SHAPES)
def test_grey_equals_the_float_mean(h: int, w: int) -> None:
    rng = np.random.default_rng(h + 7 * w)
    for rgb in _images(rng, h, w):
        for x in (rgb, rgb[::3, ::2]):
            expected = x.astype(np.float32).mean(axis=2)
            got = _grey(x)
            assert got.dtype == expected.dtype and np.array_equal(got, expected)
            assert float(got.std()) == float(expected.std())


@pytest.mark.parametrize("size", [1, 3, 5, 7, 4])  # 4: an even size is handed to scipy (checks the dispatch)
def test_square_morphology_equals_scipy(size: int) -> None:
    rng = np.random.default_rng(size)
    square = np.ones((size, size), dtype=bool)
    for h, w in [*SHAPES, (0, 5), (5, 0)]:
        for density in (0.05, 0.5, 0.95):
            mask = rng.random((h, w)) < density
            if h and w:
                mask = ndimage.binary_dilation(mask)  # blobs as well as speckle
            assert np.array_equal(square_erosion(mask, size), ndimage.binary_erosion(mask, structure=square))
            assert np.array_equal(square_dilation(mask, size), ndimage.binary_dilation(mask, structure=square))
            assert np.array_equal(square_opening(mask, size), ndimage.binary_opening(mask, structure=square))


@pytest.mark.parametrize(("h", "w"), SHAPES)
def test_piece_colour_codes_and_grey_levels_equal_the_reference(h: int, w: int) -> None:
    rng = np.random.default_rng(h * 31 + w)
    for rgb in _images(rng, h, w):
        for x in (rgb, rgb[h // 4:, w // 5:]):  # crops, as classify_piece gets them
            inked = lightest_channel(x) < 236
            q = (x[inked] // 16).astype(np.int32)
            assert np.array_equal(_colour_codes(x)[inked], q[:, 0] * 256 + q[:, 1] * 16 + q[:, 2])
            grey, level = _grey_and_level(x)
            expected = channel_mean(x)
            assert grey.dtype == expected.dtype and np.array_equal(grey, expected)
            assert np.array_equal(level, (expected // 4).astype(np.int32))
