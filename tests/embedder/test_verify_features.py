"""The pixel check on precomputed luminances (`pixel_features`): the same answer as on the images."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from embedder.verify import (
    AlignConfig,
    PanelPixels,
    align_pair,
    feature_sides,
    luminance,
    panel_pixels,
    pixel_features,
)
from training.synth import KINDS, generate_specimen_field

CONFIG = AlignConfig()


def _pair(kind: str, size: tuple[int, int], copy: bool) -> tuple[Image.Image, Image.Image]:
    a = generate_specimen_field(kind, 3, 0, size)
    if copy:  # a turned crop of a
        w, h = size
        b = a.crop((w // 8, h // 10, w - w // 6, h - h // 9)).transpose(Image.Transpose.ROTATE_90)
    else:  # another field of the same specimen, at another aspect ratio
        b = generate_specimen_field(kind, 3, 1, (size[1], size[0] + 17))
    return a, b


@pytest.mark.parametrize("kind", KINDS[:4])
@pytest.mark.parametrize("size", [(160, 120), (90, 200), (300, 64)])
@pytest.mark.parametrize("copy", [True, False])
def test_align_on_features_is_bit_identical(kind: str, size: tuple[int, int], copy: bool) -> None:
    a, b = _pair(kind, size, copy)
    fa = panel_pixels(pixel_features(a, CONFIG), CONFIG)
    fb = panel_pixels(pixel_features(b, CONFIG), CONFIG)
    assert fa is not None and fb is not None
    assert align_pair(fa, fb, CONFIG) == align_pair(a, b, CONFIG)
    assert align_pair(fa, b, CONFIG) == align_pair(a, fb, CONFIG) == align_pair(a, b, CONFIG)


def test_features_hold_the_luminances_exactly() -> None:
    image = generate_specimen_field(KINDS[0], 1, 0, (123, 77)).convert("RGB")
    pixels = PanelPixels.from_bytes(pixel_features(image, CONFIG))
    assert tuple(sorted(pixels.greys)) == feature_sides(CONFIG) == (32, 64, 128)
    for side in feature_sides(CONFIG):
        assert np.array_equal(pixels.luminance(side).numpy(), luminance(image, side).numpy())


def test_features_for_other_sides_or_garbage_are_refused() -> None:
    image = generate_specimen_field(KINDS[0], 1, 0, (100, 100))
    data = pixel_features(image, CONFIG)
    assert panel_pixels(data, CONFIG) is not None
    assert panel_pixels(data, replace(CONFIG, detail_side=96)) is None  # another model's search
    assert panel_pixels(None, CONFIG) is None
    assert panel_pixels(b"\x89PNG....", CONFIG) is None
    assert panel_pixels(data[:40], CONFIG) is None  # truncated


def test_an_empty_image_has_no_features() -> None:
    with pytest.raises(ValueError):
        pixel_features(Image.new("RGB", (0, 0)), CONFIG)
