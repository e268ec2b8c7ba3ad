"""Checkpoint round trip: the config comes back from the file, outputs are identical."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from embedder.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from embedder.config import Preset
from embedder.model import BTAModel


def test_round_trip_restores_config_and_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = Preset.TINY.config.replace(head_kind="concat", projector_dims=(48, 24))
    model = BTAModel(cfg).eval()
    # make BatchNorm running stats non-trivial so they must be saved too
    model.train()
    with torch.no_grad():
        model.embed(torch.randn(8, 3, 32, 32))
    model.eval()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, {"method": "BTA", "steps": 3})
    assert not (tmp_path / "m.pt.tmp").exists()
    loaded, meta = load_checkpoint(path)
    assert loaded.config == cfg and meta == {"method": "BTA", "steps": 3}
    assert not loaded.training
    x, y = torch.randn(3, 3, 32, 32), torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x, y), model(x, y))
        assert torch.equal(loaded.embed(x), model.embed(x))


def test_foreign_files_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_pickled_code_is_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "reusescan-bta/1", "config": Preset.TINY.config}, path)  # a dataclass, not plain data
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_checkpoint(path)
