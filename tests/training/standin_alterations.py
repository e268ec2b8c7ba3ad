"""A minimal stand-in for `training.alterations`, used by the tests only while the real
module is missing. Same interface: `random_alteration(image, rng, max_ops)`,
`apply_named(image, name, rng)`, `ALTERATION_KINDS`."""
from __future__ import annotations

import sys
import types

import numpy as np
from PIL import Image, ImageFilter

ALTERATION_KINDS = ("rotate90", "hflip", "crop", "blur", "noise")


def apply_named(image: Image.Image, name: str, rng: np.random.Generator) -> Image.Image:
    if name == "rotate90":
        return image.transpose(Image.Transpose.ROTATE_90)
    if name == "hflip":
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if name == "crop":
        w, h = image.size
        dx, dy = int(rng.integers(0, max(1, w // 8))), int(rng.integers(0, max(1, h // 8)))
        return image.crop((dx, dy, w - dx // 2, h - dy // 2))
    if name == "blur":
        return image.filter(ImageFilter.GaussianBlur(1.0))
    if name == "noise":
        arr = np.asarray(image, dtype=np.float32) + rng.normal(0, 8, (image.size[1], image.size[0], 3))
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    raise ValueError(name)


def random_alteration(image: Image.Image, rng: np.random.Generator, max_ops: int = 3) -> Image.Image:
    for _ in range(int(rng.integers(1, max_ops + 1))):
        image = apply_named(image, ALTERATION_KINDS[int(rng.integers(len(ALTERATION_KINDS)))], rng)
    return image


def install_if_missing() -> bool:
    """Put this module in place of `training.alterations` if that cannot be imported; True if it did."""
    try:
        import training.alterations  # noqa: F401
        return False
    except ImportError:
        mod = types.ModuleType("training.alterations")
        mod.ALTERATION_KINDS = ALTERATION_KINDS  # type: ignore[attr-defined]
        mod.apply_named = apply_named  # type: ignore[attr-defined]
        mod.random_alteration = random_alteration  # type: ignore[attr-defined]
        sys.modules["training.alterations"] = mod
        return True
