"""Batch inference: images in, L2-normalised index vectors out; head scores on stored vectors.

Preprocessing letterboxes: the longer side is resized to `image_size` and the shorter
side padded symmetrically with the normalisation mean (0 after normalisation). Why not
a centre crop or a squash:
- panels are often very elongated (a western blot strip is 4:1 to 10:1); a centre crop
  would throw most of it away, and a cropped copy would keep a different part;
- squashing to a square distorts shapes differently for each aspect ratio, and does not
  commute with a 90-degree rotation; the letterbox does, so a rotated panel gives exactly
  the rotated network input and D4 pooling makes the two embeddings equal.
The shorter side is rounded to the parity of `image_size`, so the padding is split
exactly evenly and survives a 180-degree rotation unchanged.

Precision: fp16 autocast on CUDA; on CPUs that compute bf16 natively (AMX, AVX-512 BF16)
bf16 autocast (measured 1.6-2.5x faster with unchanged metrics), else fp32. See
docs/model-and-training.md "Device/precision".
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from embedder.checkpoint import load_checkpoint
from embedder.config import ModelConfig
from embedder.model import BTAModel

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "default.pt"


def letterbox(image: Image.Image, size: int) -> np.ndarray:
    """RGB image -> (size, size, 3) float32 in [0, 1] plus a NaN mask for the padding.

    Padding pixels are NaN so that `to_tensor` can fill them with the normalisation
    mean (0 after normalisation) whatever mean the config uses.
    """
    image = image.convert("RGB")
    w, h = image.size
    if w <= 0 or h <= 0:
        raise ValueError("empty image")
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    # same parity as size -> even padding on both sides
    if (size - nw) % 2:
        nw = nw + 1 if nw < size else nw - 1
    if (size - nh) % 2:
        nh = nh + 1 if nh < size else nh - 1
    # float resize (torch, antialiased bilinear): PIL rounds to uint8 between its horizontal
    # and vertical passes, which breaks exact commutation with 90-degree rotations
    arr = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    resized = F.interpolate(arr, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    pixels = resized[0].permute(1, 2, 0).clamp_(0, 1).numpy()
    out = np.full((size, size, 3), np.nan, dtype=np.float32)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top:top + nh, left:left + nw] = pixels
    return out


def to_tensor(images: Sequence[Image.Image], config: ModelConfig) -> torch.Tensor:
    """Letterbox + normalise a list of images into a (N, 3, S, S) float32 batch."""
    s = config.image_size
    arr = np.stack([letterbox(im, s) for im in images]) if images else np.zeros((0, s, s, 3), np.float32)
    mean = np.asarray(config.mean, dtype=np.float32)
    std = np.asarray(config.std, dtype=np.float32)
    arr = (arr - mean) / std
    arr = np.nan_to_num(arr, nan=0.0)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def cpu_has_fast_bf16() -> bool:
    """True when the CPU computes in bf16 natively: AMX tiles or AVX-512 BF16 instructions (there bf16 autocast
    ran the default encoder 2-2.5x faster than fp32), not merely emulating it."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" = fp16 autocast on CUDA; on CPU bf16 autocast when the CPU computes bf16 natively, else fp32.

    bf16 on CPU was checked against fp32 on the shipped model (same evaluation metrics,
    vectors with cosine > 0.999 to the fp32 ones; docs/model-and-training.md "Device/precision").
    Explicit choices are kept.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    if precision == "auto":
        if device.type == "cuda":
            return "fp16"
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return precision


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present, else CPU (unless a device is given)."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Embedder:
    """A loaded BTA model for batch inference.

    >>> emb = Embedder.load()                   # the shipped default checkpoint
    >>> vecs = emb.embed(list_of_pil_images)    # (N, D) float32, rows of unit length
    >>> emb.score(vecs[:1], vecs[1:2])          # head probability for stored vectors
    """

    def __init__(self, model: BTAModel, meta: dict[str, Any] | None = None,
                 device: str | torch.device | None = None, batch_size: int = 64, precision: str = "auto") -> None:
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.meta = dict(meta or {})
        self.batch_size = batch_size
        self.precision = resolve_precision(precision, self.device)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, device: str | torch.device | None = None,
             batch_size: int = 64, precision: str = "auto") -> Embedder:
        """Load a checkpoint; `None` means the default shipped in `embedder/weights/default.pt`."""
        path = DEFAULT_CHECKPOINT if path is None else Path(path)
        if not Path(path).is_file():
            raise FileNotFoundError(f"model checkpoint not found: {path}")
        model, meta = load_checkpoint(path)
        log.info("loaded model %s (%s)", path, model.config.backbone)
        return cls(model, meta, device=device, batch_size=batch_size, precision=precision)

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def dim(self) -> int:
        """Index vector dimension D."""
        return self.config.embed_dim

    @torch.inference_mode()
    def embed_tensor(self, batch: torch.Tensor) -> np.ndarray:
        """Preprocessed (N, 3, S, S) batch -> (N, D) float32 unit vectors."""
        batch = batch.to(self.device)
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        with torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            vecs = self.model.embed(batch)
        return vecs.float().cpu().numpy().astype(np.float32)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """PIL images (any size/aspect/mode) -> (N, D) float32 L2-normalised vectors."""
        out = [np.zeros((0, self.dim), np.float32)]
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            out.append(self.embed_tensor(to_tensor(chunk, self.config)))
        return np.concatenate(out, axis=0)

    @property
    def head_trained(self) -> bool:
        """Whether the checkpoint's head was trained (a self-supervised stage alone has a random head)."""
        return bool(self.meta.get("head_trained", True))

    @torch.inference_mode()
    def score(self, vec_a: np.ndarray, vec_b: np.ndarray) -> np.ndarray:
        """Head probability M in [0, 1] for rows of stored index vectors: (N, D), (N, D) -> (N,).

        A checkpoint whose head was never trained (e.g. a Barlow Twins stage) scores
        by the vectors' cosine, clipped to [0, 1], instead of its random head.
        """
        a = torch.as_tensor(np.asarray(vec_a, dtype=np.float32)).reshape(-1, self.dim).to(self.device)
        b = torch.as_tensor(np.asarray(vec_b, dtype=np.float32)).reshape(-1, self.dim).to(self.device)
        if a.shape != b.shape:
            raise ValueError(f"vector batches differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
        if not self.head_trained:
            return (a * b).sum(dim=1).clamp(0.0, 1.0).cpu().numpy().astype(np.float32)
        return self.model.score_vectors(a, b).float().cpu().numpy().astype(np.float32)
