"""Training batches built from the procedural generators and the alteration library.

Base images: specimen `s` of kind `KINDS[s % len(KINDS)]`, fields 0 and 1 (two different
fields of the same synthetic specimen: same style, different content, the hard
negatives). Training uses specimen seeds `[seed_offset, seed_offset + n_specimens)`;
evaluation uses seeds from `EVAL_SEED_BASE` on, which training never sees.

Every batch is a pure function of (data config, seed, rank, step), so a resumed or
data-parallel run sees exactly the batches it would have seen uninterrupted, and
workers never draw the same batch. Batches are built in the training process (no
DataLoader worker processes: the machine has 2 cores and they are for the model).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from embedder.config import ModelConfig
from embedder.inference import to_tensor

log = logging.getLogger(__name__)

EVAL_SEED_BASE = 1_000_000
PAIR_POS_FRACTION = 0.4


def all_kinds() -> tuple[str, ...]:
    from training.synth import KINDS

    return tuple(KINDS)


@dataclass(frozen=True)
class DataConfig:
    """Where training images come from and how they are altered."""

    n_specimens: int = 1000
    seed_offset: int = 0
    kinds: tuple[str, ...] = ()  # empty = every generator kind
    min_side: int = 80
    max_side: int = 160
    max_ops: int = 3
    cache: bool = True

    def kind_list(self) -> tuple[str, ...]:
        return self.kinds or all_kinds()


def specimen_size(seed: int, min_side: int, max_side: int) -> tuple[int, int]:
    """A (width, height) drawn from the seed: panels come in many aspect ratios."""
    rng = np.random.default_rng([seed, 31337])
    return int(rng.integers(min_side, max_side + 1)), int(rng.integers(min_side, max_side + 1))


def specimen_image(kinds: tuple[str, ...], seed: int, field_index: int, min_side: int, max_side: int) -> tuple[str, Image.Image]:
    """(kind, image) for field `field_index` of specimen `seed`."""
    from training.synth import generate_specimen_field

    kind = kinds[seed % len(kinds)]
    return kind, generate_specimen_field(kind, seed, field_index, specimen_size(seed, min_side, max_side))


def alter(image: Image.Image, rng: np.random.Generator, max_ops: int = 3) -> Image.Image:
    """A random composition of alterations (rotations, flips, crops, colour, noise, JPEG, blur, ...)."""
    from training.alterations import random_alteration

    out: Any = random_alteration(image, rng, max_ops=max_ops)
    return out[0] if isinstance(out, tuple) else out


def apply_named(image: Image.Image, name: str, rng: np.random.Generator) -> Image.Image:
    """One named alteration kind."""
    from training import alterations

    out: Any = alterations.apply_named(image, name, rng)
    return out[0] if isinstance(out, tuple) else out


def alteration_kinds() -> tuple[str, ...]:
    from training.alterations import ALTERATION_KINDS

    return tuple(ALTERATION_KINDS)


@dataclass
class SpecimenPool:
    """Base images for training, generated on first use and cached in memory."""

    config: DataConfig = field(default_factory=DataConfig)
    _cache: dict[tuple[int, int], Image.Image] = field(default_factory=dict, repr=False)

    def get(self, specimen: int, field_index: int) -> Image.Image:
        key = (specimen, field_index)
        img = self._cache.get(key)
        if img is None:
            c = self.config
            _, img = specimen_image(c.kind_list(), c.seed_offset + specimen, field_index, c.min_side, c.max_side)
            if c.cache:
                self._cache[key] = img
        return img


def batch_rng(seed: int, rank: int, step: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, rank, step, stream, 271828])


def view_batch(pool: SpecimenPool, batch_size: int, model_config: ModelConfig, seed: int, rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independently altered views of `batch_size` images: (x1, x2), row i = image i.

    Half the batch are sibling fields of the same specimens, so every batch holds hard
    negatives (same style and statistics, different content).
    """
    rng = batch_rng(seed, rank, step)
    n_spec = max(1, batch_size // 2)
    specimens = rng.choice(pool.config.n_specimens, size=n_spec, replace=pool.config.n_specimens < n_spec)
    images = []
    for i in range(batch_size):
        images.append(pool.get(int(specimens[i % n_spec]), i // n_spec % 2))
    v1 = [alter(im, rng, pool.config.max_ops) for im in images]
    v2 = [alter(im, rng, pool.config.max_ops) for im in images]
    return to_tensor(v1, model_config), to_tensor(v2, model_config)


def pair_batch(pool: SpecimenPool, batch_size: int, model_config: ModelConfig, seed: int, rank: int, step: int,
               p_similar: float = PAIR_POS_FRACTION) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(xa, xb, labels): pairs similar with probability `p_similar` (the paper's protocol).

    Similar: an image and an altered copy. Dissimilar: an image and an altered different
    image, half of the time the sibling field of the same specimen (a hard negative).
    """
    rng = batch_rng(seed, rank, step, stream=1)
    a_imgs, b_imgs, labels = [], [], []
    n = pool.config.n_specimens
    for _ in range(batch_size):
        spec, fld = int(rng.integers(n)), int(rng.integers(2))
        base = pool.get(spec, fld)
        if rng.random() < p_similar:
            other, label = base, 1.0
        elif rng.random() < 0.5:
            other, label = pool.get(spec, 1 - fld), 0.0
        else:
            other, label = pool.get(int((spec + 1 + rng.integers(n - 1)) % n) if n > 1 else spec, 1 - fld), 0.0
        a_imgs.append(alter(base, rng, 1) if rng.random() < 0.5 else base)
        b_imgs.append(alter(other, rng, pool.config.max_ops))
        labels.append(label)
    return to_tensor(a_imgs, model_config), to_tensor(b_imgs, model_config), torch.tensor(labels)
