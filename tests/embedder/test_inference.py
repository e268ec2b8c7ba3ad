"""The batch inference API: preprocessing, shapes, normalisation, head on stored vectors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import embedder.inference as inference
from embedder.checkpoint import save_checkpoint
from embedder.config import Preset
from embedder.inference import Embedder, letterbox, pick_device, to_tensor
from embedder.model import BTAModel


def _image(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.fixture()
def tiny_embedder() -> Embedder:
    torch.manual_seed(0)
    return Embedder(BTAModel(Preset.TINY.config), {"method": "test"}, device="cpu", precision="fp32")


def test_letterbox_keeps_aspect_and_pads_evenly() -> None:
    out = letterbox(_image(100, 25, 0), 32)
    rows = ~np.isnan(out[:, :, 0]).all(axis=1)
    cols = ~np.isnan(out[:, :, 0]).all(axis=0)
    assert cols.all()  # the long side fills the width
    top, bottom = np.argmax(rows), len(rows) - np.argmax(rows[::-1])
    assert bottom - top == 8 and top == 32 - bottom  # 100:25 -> 32:8, centred


def test_letterbox_commutes_with_rotation() -> None:
    img = _image(60, 23, 1)
    a = np.nan_to_num(letterbox(img.transpose(Image.Transpose.ROTATE_90), 32), nan=-1)
    b = np.nan_to_num(np.rot90(letterbox(img, 32), 1), nan=-1)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_padding_is_zero_after_normalisation() -> None:
    t = to_tensor([Image.new("RGB", (40, 10), (255, 255, 255))], Preset.TINY.config)
    assert t.shape == (1, 3, 32, 32)
    assert float(t[0, :, 0, 0].abs().max()) == 0.0 and float(t[0, :, 16, 16].min()) == 1.0


def test_embed_shapes_dtype_and_norm(tiny_embedder: Embedder) -> None:
    images = [_image(50, 30, i) for i in range(5)] + [Image.new("L", (20, 70), 128)]
    vecs = tiny_embedder.embed(images)
    assert vecs.shape == (6, tiny_embedder.dim) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert tiny_embedder.embed([]).shape == (0, tiny_embedder.dim)
    tiny_embedder.batch_size = 2  # batching does not change results
    np.testing.assert_allclose(tiny_embedder.embed(images), vecs, atol=1e-5)


def test_rotated_and_flipped_images_embed_identically(tiny_embedder: Embedder) -> None:
    img = _image(64, 40, 3)
    variants = [img] + [img.transpose(t) for t in (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
                                                   Image.Transpose.ROTATE_270, Image.Transpose.FLIP_LEFT_RIGHT,
                                                   Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.TRANSPOSE)]
    vecs = tiny_embedder.embed(variants)
    np.testing.assert_allclose(vecs, np.repeat(vecs[:1], len(variants), axis=0), atol=1e-4)


def test_score_on_stored_vectors(tiny_embedder: Embedder) -> None:
    vecs = tiny_embedder.embed([_image(40, 40, i) for i in range(4)])
    s = tiny_embedder.score(vecs[:2], vecs[2:])
    assert s.shape == (2,) and s.dtype == np.float32 and ((s >= 0) & (s <= 1)).all()
    np.testing.assert_allclose(s, tiny_embedder.score(vecs[2:], vecs[:2]), atol=1e-6)  # symmetric head
    with pytest.raises(ValueError):
        tiny_embedder.score(vecs[:2], vecs[:3])


def test_load_from_path_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = BTAModel(Preset.TINY.config).eval()
    path = tmp_path / "default.pt"
    save_checkpoint(path, model, {"method": "BTA"})
    img = [_image(30, 50, 9)]
    direct = Embedder(model, device="cpu").embed(img)
    np.testing.assert_allclose(Embedder.load(path).embed(img), direct, atol=1e-6)
    monkeypatch.setattr(inference, "DEFAULT_CHECKPOINT", tmp_path / "default.pt")
    loaded = Embedder.load()
    assert loaded.meta["method"] == "BTA" and loaded.config == Preset.TINY.config
    monkeypatch.setattr(inference, "DEFAULT_CHECKPOINT", tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError):
        Embedder.load()


def test_device_choice() -> None:
    assert pick_device("cpu") == torch.device("cpu")  # an explicit choice is kept
    chosen = pick_device()  # the default is a device this machine can really compute on
    assert chosen.type in ("cpu", "cuda")
    assert float((torch.ones(3, device=chosen) * 2).sum().cpu()) == 6.0


def test_the_default_device_and_precision_embed_deterministically() -> None:
    torch.manual_seed(0)
    emb = Embedder(BTAModel(Preset.TINY.config), {"method": "test"})  # device and precision "auto"
    img = _image(48, 30, 5)
    vecs = emb.embed([img, img.copy(), img.transpose(Image.Transpose.ROTATE_90)])
    assert vecs.shape == (3, emb.dim) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
    assert np.array_equal(vecs[0], vecs[1])  # identical inputs, identical outputs
    np.testing.assert_allclose(emb.embed([img])[0], vecs[0], atol=1e-5)  # alone in its batch too
    assert float(vecs[0] @ vecs[2]) > 0.999  # invariant to a quarter turn


def test_precision_choices(tiny_embedder: Embedder) -> None:
    from embedder.inference import resolve_precision

    assert resolve_precision("auto", torch.device("cpu")) in ("bf16", "fp32")  # never fp16 on a CPU
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"  # explicit choices are kept
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"
    with pytest.raises(ValueError):
        resolve_precision("int8", torch.device("cpu"))
    images = [_image(50, 40, i) for i in range(4)]
    ref = tiny_embedder.embed(images)
    assert tiny_embedder.precision == "fp32"
    tiny_embedder.precision = "bf16"
    low = tiny_embedder.embed(images)
    assert low.dtype == np.float32
    assert float((ref * low).sum(axis=1).min()) > 0.99
    rotated = tiny_embedder.embed([im.transpose(Image.Transpose.ROTATE_90) for im in images])
    assert float((rotated * low).sum(axis=1).min()) > 0.999  # D4 pooling holds in bf16 too


def test_a_model_without_a_trained_head_scores_by_cosine() -> None:
    torch.manual_seed(0)
    model = BTAModel(Preset.TINY.config)
    untrained = Embedder(model, {"head_trained": False}, device="cpu", precision="fp32")
    trained = Embedder(model, {"head_trained": True}, device="cpu", precision="fp32")
    vecs = untrained.embed([_image(40, 30, s) for s in range(4)])
    cosine = np.clip((vecs[:2] * vecs[2:]).sum(axis=1), 0.0, 1.0)
    assert np.allclose(untrained.score(vecs[:2], vecs[2:]), cosine, atol=1e-6)
    assert untrained.score(vecs[:1], vecs[:1])[0] == pytest.approx(1.0, abs=1e-5)  # a vector against itself
    assert not np.allclose(trained.score(vecs[:2], vecs[2:]), cosine, atol=1e-3)  # the head is used when trained


@pytest.mark.parametrize(("amx", "avx512_bf16", "expected"),
                         [(True, False, "bf16"), (False, True, "bf16"), (False, False, "fp32")])
def test_auto_takes_bf16_on_a_cpu_that_computes_it_natively(monkeypatch: pytest.MonkeyPatch, amx: bool,
                                                           avx512_bf16: bool, expected: str) -> None:
    from embedder.inference import resolve_precision

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert resolve_precision("auto", torch.device("cpu")) == expected
