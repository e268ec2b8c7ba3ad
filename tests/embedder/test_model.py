"""Model shapes, presets, and the built-in invariance to the 8 rotations/flips."""
from __future__ import annotations

import pytest
import torch

from embedder.config import ModelConfig, Preset
from embedder.model import BTAModel, d4_orbit


def _transforms(x: torch.Tensor) -> list[torch.Tensor]:
    flipped = torch.flip(x, dims=(-1,))
    return [torch.rot90(x, k, dims=(-2, -1)) for k in range(4)] + [torch.rot90(flipped, k, dims=(-2, -1)) for k in range(4)]


@pytest.mark.parametrize("preset", [Preset.TINY, Preset.COMPACT])
def test_embedding_is_invariant_to_every_rotation_and_flip(preset: Preset) -> None:
    torch.manual_seed(0)
    model = BTAModel(preset.config).eval()
    s = preset.config.image_size
    x = torch.randn(3, 3, s, s)
    with torch.no_grad():
        ref = model.embed(x)
        for gx in _transforms(x):
            torch.testing.assert_close(model.embed(gx), ref, rtol=0, atol=2e-5)
        # and a different image is not mapped to the same vector
        assert (model.embed(torch.randn(3, 3, s, s)) - ref).abs().max() > 1e-3


def test_without_d4_pooling_rotation_changes_the_embedding() -> None:
    torch.manual_seed(0)
    model = BTAModel(Preset.TINY.config.replace(d4_pool=False)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (model.embed(torch.rot90(x, 1, dims=(-2, -1))) - model.embed(x)).abs().max() > 1e-4


def test_d4_orbit_has_eight_distinct_views() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    orbit = d4_orbit(x)
    assert orbit.shape == (8, 1, 4, 4)
    assert len({tuple(v.flatten().tolist()) for v in orbit}) == 8
    with pytest.raises(ValueError):
        d4_orbit(torch.zeros(1, 1, 4, 5))


def test_shapes_and_unit_norm() -> None:
    cfg = Preset.TINY.config
    model = BTAModel(cfg).eval()
    x, y = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        e = model.embed(x)
        assert e.shape == (4, cfg.embed_dim)
        torch.testing.assert_close(e.norm(dim=1), torch.ones(4))
        m = model(x, y)
    assert m.shape == (4,) and bool(((m >= 0) & (m <= 1)).all())


def test_presets_carry_metadata_and_respect_budgets() -> None:
    paper = Preset("paper").config
    assert paper.backbone == "resnet50" and paper.image_size == 224
    assert (paper.feature_dim, *paper.projector_dims) == (2048, 4096, 4096, 4096)
    assert paper.head_kind == "concat" and paper.head_hidden == (512, 256, 64, 16)
    compact = Preset.COMPACT.config
    assert compact.embed_dim <= 512 and compact.d4_pool
    assert "CPU" in Preset.COMPACT.description
    n = sum(p.numel() for p in BTAModel(compact).parameters())
    assert n * 4 < 50e6  # the shipped checkpoint must stay under 50 MB


def test_config_round_trip_and_validation() -> None:
    cfg = Preset.COMPACT.config
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        ModelConfig(backbone="vgg")
    with pytest.raises(ValueError):
        ModelConfig(head_kind="dot")
    with pytest.raises(ValueError):
        ModelConfig.from_dict({**cfg.to_dict(), "extra": 1})


def test_the_channels_last_max_pool_gives_the_same_maxima_as_torchs() -> None:
    from embedder.model import ChannelsLastMaxPool

    x = torch.randn(16, 32, 33, 32)
    x[0, 0, :4, :4] = float("-inf")
    pool, reference = ChannelsLastMaxPool(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1)
    pooled = pool(x)
    assert pooled.is_contiguous() and torch.equal(pooled, reference(x))
    last = x.contiguous(memory_format=torch.channels_last)  # a channels-last model's batch keeps its layout
    assert pool(last).is_contiguous(memory_format=torch.channels_last) and torch.equal(pool(last), pooled)
    assert torch.equal(pool(x[0]), reference(x[0]))  # one unbatched map stack, as nn.MaxPool2d takes it
