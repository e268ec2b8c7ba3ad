"""Load external backbone weights from a local file (nothing is ever downloaded).

Supported files:
- a torchvision ResNet state_dict (`torch.save(resnet50().state_dict(), path)`, keys like
  `conv1.weight`, `layer1.0.bn1.running_mean`, `fc.weight`): the classifier is dropped;
- the official Barlow Twins `resnet50.pth` (the same backbone keys without `fc.`);
- wrapped variants: `{"state_dict": ...}` / `{"model": ...}` and `module.` / `backbone.`
  key prefixes (as DDP or the Barlow Twins training checkpoint write them).
"""
from __future__ import annotations

import logging
import os
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

_PREFIXES = ("module.", "backbone.", "encoder.")


class WeightsError(ValueError):
    """The file does not hold weights for this backbone."""


def _unwrap(obj: Any) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError("file does not contain a state_dict of tensors")
    return obj


def backbone_state_dict(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], str]:
    """Read a backbone state_dict from `path`; also say which format it looked like."""
    raw = _unwrap(torch.load(path, map_location="cpu", weights_only=True))
    state: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        state[key] = value
    fmt = "torchvision" if "fc.weight" in state else "barlowtwins"
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    return state, fmt


def load_backbone_weights(encoder: nn.Module, path: str | os.PathLike[str]) -> str:
    """Copy the backbone weights in `path` into `encoder` (strict: every key must match).

    Returns "torchvision" or "barlowtwins" (the detected format).
    """
    state, fmt = backbone_state_dict(path)
    expected = set(encoder.state_dict())
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise WeightsError(
            f"{path}: weights do not fit this backbone "
            f"(missing {sorted(missing)[:5]}..., unexpected {sorted(unexpected)[:5]}...)"
        )
    encoder.load_state_dict(state, strict=True)
    log.info("loaded %s backbone weights from %s", fmt, path)
    return fmt
