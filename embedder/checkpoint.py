"""Save and load model checkpoints.

A checkpoint is a plain dict `{"format", "config", "model", "meta"}` written with
`torch.save` to a temporary name and then `os.replace`d, and read back with
`torch.load(weights_only=True)`: only tensors and plain containers, never pickled code.
The architecture is rebuilt from the stored config, never from the caller's arguments.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from embedder.config import ModelConfig
from embedder.model import BTAModel

log = logging.getLogger(__name__)

FORMAT = "reusescan-bta/1"


class CheckpointError(ValueError):
    """The file is not a reusescan model checkpoint (or is from an unknown format)."""


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """torch.save to `path.tmp`, then rename: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(path: str | os.PathLike[str], model: BTAModel, meta: dict[str, Any] | None = None) -> None:
    """Write the model (config + weights) and free-form metadata (plain types only)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_torch_save({"format": FORMAT, "config": model.config.to_dict(), "model": state, "meta": dict(meta or {})}, path)
    log.info("saved checkpoint %s", path)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw checkpoint dict, validated."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    return data


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[BTAModel, dict[str, Any]]:
    """Rebuild the model from the config stored in the file; return it (eval mode) and meta."""
    data = read_checkpoint(path)
    config = ModelConfig.from_dict(data["config"])
    model = BTAModel(config)
    model.load_state_dict(data["model"], strict=True)
    model.eval()
    return model, dict(data.get("meta", {}))


def weights_digest(path: str | os.PathLike[str]) -> str:
    """`checkpoint_weights_digest` of the checkpoint file at `path`."""
    return checkpoint_weights_digest(read_checkpoint(path))


def checkpoint_weights_digest(data: dict[str, Any]) -> str:
    """SHA-256 of what decides the vectors: the config and every weight tensor (not the meta).

    Calibrating a checkpoint (threshold, pixel-check weights in its meta) leaves
    this unchanged, so stores built with the model stay valid.
    """
    import hashlib
    import json

    h = hashlib.sha256(json.dumps(data["config"], sort_keys=True).encode())
    for name in sorted(data["model"]):
        tensor = data["model"][name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tensor.dtype).encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return h.hexdigest()
