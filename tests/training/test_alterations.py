"""Every alteration is applied exactly as recorded, within its documented ranges."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from training.alterations import (
    ALTERATION_KINDS,
    AlterationRecord,
    apply,
    apply_named,
    label,
    random_alteration,
    replay,
)
from training.synth import generate


@pytest.fixture(scope="module")
def img() -> Image.Image:
    return generate("histology_he", 3, (96, 80))


def _a(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("name", ALTERATION_KINDS)
def test_named_alteration_replays_exactly(img: Image.Image, name: str) -> None:
    out, rec = apply_named(img, name, np.random.default_rng(1))
    assert rec.name == name
    assert out.mode == "RGB"
    assert np.array_equal(_a(out), _a(apply(img, rec)))
    if name != "rescale":
        assert out.size == img.size
    if name not in ("grayscale",):  # every op changes the pixels
        assert out.size != img.size or np.abs(_a(out) - _a(img)).mean() > 0.1, name


def test_geometry_is_what_was_recorded(img: Image.Image) -> None:
    a = _a(img)
    assert np.array_equal(_a(apply(img, AlterationRecord("hflip"))), a[:, ::-1])
    assert np.array_equal(_a(apply(img, AlterationRecord("vflip"))), a[::-1])
    for k in (1, 2, 3):
        assert np.array_equal(_a(apply(img, AlterationRecord("rotate90", {"k": k}))), np.rot90(a, k))
    crop = apply(img, AlterationRecord("crop", {"keep_w": 0.5, "keep_h": 0.75, "fx": 0.0, "fy": 1.0, "rescale": False}))
    assert np.array_equal(_a(crop), a[20:80, 0:48])
    assert apply(img, AlterationRecord("rescale", {"factor": 0.5})).size == (48, 40)


def test_photometric_ops(img: Image.Image) -> None:
    g = _a(apply(img, AlterationRecord("grayscale")))
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])
    q = 20
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=q)
    assert np.array_equal(_a(apply(img, AlterationRecord("jpeg", {"quality": q}))), _a(Image.open(buf)))
    noisy = _a(apply(img, AlterationRecord("gaussian_noise", {"sigma": 0.05, "seed": 4})))
    assert 6 < (noisy - _a(img)).std() < 20
    hue = apply(img, AlterationRecord("color_jitter", {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.25}))
    assert np.abs(_a(hue) - _a(img)).mean() > 10
    darker = apply(img, AlterationRecord("color_jitter", {"brightness": 0.7, "contrast": 1.0, "saturation": 1.0, "hue": 0.0}))
    assert _a(darker).mean() < _a(img).mean() * 0.8


def test_sampled_params_within_ranges(img: Image.Image) -> None:
    rng = np.random.default_rng(0)
    for _ in range(40):
        _, crop = apply_named(img, "crop", rng)
        assert 0.6 <= crop.params["keep_w"] <= 0.9 and 0.6 <= crop.params["keep_h"] <= 0.9
        _, jp = apply_named(img, "jpeg", rng)
        assert 20 <= jp.params["quality"] <= 75
        _, r90 = apply_named(img, "rotate90", rng)
        assert r90.params["k"] in (1, 2, 3)
        _, rot = apply_named(img, "rotate", rng)
        assert 2 <= abs(rot.params["angle"]) <= 15


def test_random_chain_is_recorded_and_replayable(img: Image.Image) -> None:
    lengths = set()
    for seed in range(30):
        out, recs = random_alteration(img, np.random.default_rng(seed), max_ops=3)
        lengths.add(len(recs))
        assert 1 <= len(recs) <= 3
        names = [r.name for r in recs]
        assert len(set(names)) == len(names)
        assert len({"hflip", "vflip", "rotate90"}.intersection(names)) <= 1
        assert np.array_equal(_a(out), _a(replay(img, recs)))
        assert label(recs) == "+".join(names)
    assert lengths == {1, 2, 3}
    assert label([]) == "none"


def test_unknown_alteration(img: Image.Image) -> None:
    with pytest.raises(ValueError, match="unknown alteration"):
        apply_named(img, "warp", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown alteration"):
        apply(img, AlterationRecord("warp"))


def test_fast_on_training_crops() -> None:
    small = generate("fluorescence", 1, (96, 96))
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(200):
        random_alteration(small, rng)
    per_image_ms = (time.perf_counter() - t0) / 200 * 1000
    print(f"random_alteration at 96 px: {per_image_ms:.2f} ms/image")
    assert per_image_ms < 20
