"""The alterations the scanner must see through — also the augmentation library for training.

Every alteration is a pure function of (image, params) registered in
`_APPLY`, and a sampler drawing its params from a numpy Generator. Applying
returns the image and an `AlterationRecord(name, params)`; `replay(image,
records)` re-applies recorded alterations exactly (noise carries its own seed).
Works on PIL RGB images of any size and is cheap on 64–128 px training crops.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

ALTERATION_KINDS: tuple[str, ...] = (
    "crop",
    "rotate90",
    "rotate",
    "hflip",
    "vflip",
    "color_jitter",
    "grayscale",
    "gaussian_noise",
    "poisson_noise",
    "blur",
    "jpeg",
    "rescale",
)


@dataclass(frozen=True)
class AlterationRecord:
    """What was done: the alteration's name and the exact parameters used."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


def label(records: Sequence[AlterationRecord]) -> str:
    """A compact label for a chain: names joined by '+' ('none' for the empty chain)."""
    return "+".join(r.name for r in records) if records else "none"


# ---------------------------------------------------------------- appliers


def _crop(img: Image.Image, p: dict[str, Any]) -> Image.Image:
    w, h = img.size
    cw, ch = max(1, round(w * p["keep_w"])), max(1, round(h * p["keep_h"]))
    x0, y0 = round((w - cw) * p["fx"]), round((h - ch) * p["fy"])
    out = img.crop((x0, y0, x0 + cw, y0 + ch))
    return out.resize((w, h), Image.Resampling.BILINEAR) if p.get("rescale", True) else out


def _rotate90(img: Image.Image, p: dict[str, Any]) -> Image.Image:
    k = int(p["k"]) % 4
    return img if k == 0 else img.transpose({1: Image.Transpose.ROTATE_90, 2: Image.Transpose.ROTATE_180, 3: Image.Transpose.ROTATE_270}[k])


def _rotate(img: Image.Image, p: dict[str, Any]) -> Image.Image:
    """Small arbitrary rotation; `fill` corners with the image's mean colour so no black wedge gives it away."""
    fill = tuple(int(v) for v in p["fill"])
    return img.rotate(float(p["angle"]), resample=Image.Resampling.BILINEAR, expand=False, fillcolor=fill)


def _hflip(img: Image.Image, p: dict[str, Any]) -> Image.Image:
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def _vflip(img: Image.Image, p: dict[str, Any]) -> Image.Image:
    return img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)


def _color_jitter(img: Image.Image, p: dict[str, Any]) -> Image.Image:
    out = ImageEnhance.Brightness(img).enhance(p["brightness"])
    out = ImageEnhance.Contrast(out).enhance(p["contrast"])
    out = ImageEnhance.Color(out).enhance(p["saturation"])
    shift = int(round(p["hue"] * 255)) % 256
    if shift:
        h, s, v = out.convert("HSV").split()
        h = h.point(lambda x: (x + shift) % 256)
        out = Image.merge("HSV", (h, s, v)).convert("RGB")
    return out


def _grayscale(img: Image.Image, p: dict[str, Any]) -> Image.Image:
    return img.convert("L").convert("RGB")


def _gaussian_noise(img: Image.Image, p: dict[str, Any]) -> Image.Image:
    arr = np.asarray(img, dtype=np.float32)
    noise = np.random.default_rng(int(p["seed"])).normal(0.0, float(p["sigma"]) * 255.0, arr.shape)
    return Image.fromarray(np.clip(arr + noise, 0, 255).round().astype(np.uint8), "RGB")


def _poisson_noise(img: Image.Image, p: dict[str, Any]) -> Image.Image:
    peak = float(p["peak"])  # photon count at full scale: lower is noisier
    arr = np.asarray(img, dtype=np.float32) / 255.0
    noisy = np.random.default_rng(int(p["seed"])).poisson(arr * peak) / peak
    return Image.fromarray(np.clip(noisy * 255.0, 0, 255).round().astype(np.uint8), "RGB")


def _blur(img: Image.Image, p: dict[str, Any]) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius=float(p["radius"])))


def _jpeg(img: Image.Image, p: dict[str, Any]) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(p["quality"]))
    buf.seek(0)
    with Image.open(buf) as im:
        return im.convert("RGB")


def _rescale(img: Image.Image, p: dict[str, Any]) -> Image.Image:
    w, h = img.size
    return img.resize((max(4, round(w * p["factor"])), max(4, round(h * p["factor"]))), Image.Resampling.BILINEAR)


_APPLY: dict[str, Callable[[Image.Image, dict[str, Any]], Image.Image]] = {
    "crop": _crop,
    "rotate90": _rotate90,
    "rotate": _rotate,
    "hflip": _hflip,
    "vflip": _vflip,
    "color_jitter": _color_jitter,
    "grayscale": _grayscale,
    "gaussian_noise": _gaussian_noise,
    "poisson_noise": _poisson_noise,
    "blur": _blur,
    "jpeg": _jpeg,
    "rescale": _rescale,
}

# ---------------------------------------------------------------- samplers


def _mean_colour(img: Image.Image) -> list[int]:
    small = np.asarray(img.resize((8, 8), Image.Resampling.BOX), dtype=np.float32)
    return [int(v) for v in small.reshape(-1, 3).mean(0).round()]


def sample_params(name: str, image: Image.Image, rng: np.random.Generator) -> dict[str, Any]:
    """Random parameters for alteration `name` within the benchmark's ranges."""
    if name == "crop":
        keep = float(rng.uniform(0.6, 0.9))
        return {"keep_w": keep, "keep_h": float(np.clip(keep * rng.uniform(0.9, 1.1), 0.6, 0.9)), "fx": float(rng.random()), "fy": float(rng.random()), "rescale": True}
    if name == "rotate90":
        return {"k": int(rng.integers(1, 4))}
    if name == "rotate":
        angle = float(rng.uniform(2.0, 15.0) * rng.choice([-1, 1]))
        return {"angle": angle, "fill": _mean_colour(image)}
    if name in ("hflip", "vflip", "grayscale"):
        return {}
    if name == "color_jitter":
        return {
            "brightness": float(rng.uniform(0.7, 1.3)),
            "contrast": float(rng.uniform(0.7, 1.3)),
            "saturation": float(rng.uniform(0.5, 1.5)),
            "hue": float(rng.uniform(-0.1, 0.1)),
        }
    if name == "gaussian_noise":
        return {"sigma": float(rng.uniform(0.01, 0.08)), "seed": int(rng.integers(2**31))}
    if name == "poisson_noise":
        return {"peak": float(rng.uniform(20.0, 200.0)), "seed": int(rng.integers(2**31))}
    if name == "blur":
        return {"radius": float(rng.uniform(0.5, 2.5))}
    if name == "jpeg":
        return {"quality": int(rng.integers(20, 76))}
    if name == "rescale":
        return {"factor": float(rng.uniform(0.5, 1.6))}
    raise ValueError(f"unknown alteration {name!r}; expected one of {', '.join(ALTERATION_KINDS)}")


# ---------------------------------------------------------------- public API


def apply(image: Image.Image, record: AlterationRecord) -> Image.Image:
    """Apply one recorded alteration exactly (deterministic)."""
    try:
        fn = _APPLY[record.name]
    except KeyError:
        raise ValueError(f"unknown alteration {record.name!r}; expected one of {', '.join(ALTERATION_KINDS)}") from None
    return fn(image.convert("RGB"), record.params)


def replay(image: Image.Image, records: Sequence[AlterationRecord]) -> Image.Image:
    """Apply a recorded chain in order."""
    out = image.convert("RGB")
    for r in records:
        out = apply(out, r)
    return out


def apply_named(image: Image.Image, name: str, rng: np.random.Generator) -> tuple[Image.Image, AlterationRecord]:
    """Apply alteration `name` with random parameters; returns (image, record)."""
    record = AlterationRecord(name, sample_params(name, image, rng))
    return apply(image, record), record


# Ops that make a chain pointless when repeated, and the order-insensitive exclusions.
_EXCLUSIVE = ({"hflip", "vflip", "rotate90"},)


def random_alteration(
    image: Image.Image,
    rng: np.random.Generator,
    max_ops: int = 3,
    min_ops: int = 1,
    kinds: Sequence[str] = ALTERATION_KINDS,
) -> tuple[Image.Image, list[AlterationRecord]]:
    """A random chain of `min_ops`..`max_ops` distinct alterations (no two of hflip/vflip/rotate90,
    which would compose to another of them). Returns (image, records)."""
    n = int(rng.integers(min_ops, max_ops + 1))
    chosen: list[str] = []
    pool = list(kinds)
    while len(chosen) < n and pool:
        name = str(pool.pop(int(rng.integers(len(pool)))))
        if any(name in group and chosen_group for group in _EXCLUSIVE for chosen_group in [group.intersection(chosen)]):
            continue
        chosen.append(name)
    out = image.convert("RGB")
    records: list[AlterationRecord] = []
    for name in chosen:
        out, rec = apply_named(out, name, rng)
        records.append(rec)
    return out, records
