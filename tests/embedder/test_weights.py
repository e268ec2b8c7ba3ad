"""External backbone weights from local files the tests write."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from embedder.config import Preset
from embedder.model import BTAModel
from embedder.weights import WeightsError, load_backbone_weights


@pytest.fixture(scope="module")
def resnet50_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return torchvision.models.resnet50(weights=None).state_dict()


def _assert_loaded(model: BTAModel, state: dict[str, torch.Tensor]) -> None:
    own = model.encoder.state_dict()
    for key, value in state.items():
        if not key.startswith("fc."):
            assert torch.equal(own[key], value), key


def test_torchvision_resnet50_state_dict(tmp_path: Path, resnet50_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "resnet50-torchvision.pth"
    torch.save(resnet50_state, path)
    model = BTAModel(Preset.PAPER.config)
    assert load_backbone_weights(model.encoder, path) == "torchvision"
    _assert_loaded(model, resnet50_state)


def test_official_barlow_twins_file(tmp_path: Path, resnet50_state: dict[str, torch.Tensor]) -> None:
    # the official resnet50.pth is the torchvision backbone without fc.*
    path = tmp_path / "resnet50.pth"
    torch.save({k: v for k, v in resnet50_state.items() if not k.startswith("fc.")}, path)
    model = BTAModel(Preset.PAPER.config)
    assert load_backbone_weights(model.encoder, path) == "barlowtwins"
    _assert_loaded(model, resnet50_state)


def test_wrapped_and_prefixed_keys(tmp_path: Path) -> None:
    torch.manual_seed(1)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, path)
    model = BTAModel(Preset.COMPACT.config.replace(backbone="resnet18", d4_pool=False))
    load_backbone_weights(model.encoder, path)
    _assert_loaded(model, state)


def test_mismatching_weights_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(WeightsError):
        load_backbone_weights(BTAModel(Preset.PAPER.config).encoder, path)
    junk = tmp_path / "junk.pth"
    torch.save([1, 2, 3], junk)
    with pytest.raises(WeightsError):
        load_backbone_weights(BTAModel(Preset.PAPER.config).encoder, junk)
