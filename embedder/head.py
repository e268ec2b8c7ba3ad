"""Similarity heads h(a, b) -> logit, applied to two index vectors.

The head consumes exactly the L2-normalised index vectors the index stores, so candidate
pairs found by nearest-neighbour search are scored without touching pixels again.

- `ConcatHead` is the paper's head: an MLP on the concatenation [a, b]. It is not
  symmetric: h(a, b) != h(b, a) in general, so the score of a pair depends on which
  panel happened to be the query.
- `AveragedConcatHead` makes the paper's head symmetric by averaging the logits of both
  orders (twice the cost, same parameters).
- `SymmetricHead` is symmetric by construction: an MLP on [a * b, |a - b|], features that
  do not change when a and b swap, plus a learnable affine term of the cosine a . b.
"""
from __future__ import annotations

import torch
from torch import nn


def _mlp(in_dim: int, hidden: tuple[int, ...]) -> nn.Sequential:
    """Linear+ReLU layers ending in a single logit (the paper's 8192-512-256-64-16-1 shape)."""
    layers: list[nn.Module] = []
    prev = in_dim
    for width in hidden:
        layers += [nn.Linear(prev, width), nn.ReLU(inplace=True)]
        prev = width
    layers.append(nn.Linear(prev, 1))
    return nn.Sequential(*layers)


class ConcatHead(nn.Module):
    """The paper's head: logit = MLP([a, b]). Order-dependent."""

    symmetric = False

    def __init__(self, dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.mlp = _mlp(2 * dim, hidden)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([a, b], dim=-1)).squeeze(-1)


class AveragedConcatHead(ConcatHead):
    """logit = (MLP([a, b]) + MLP([b, a])) / 2: the paper's head made symmetric."""

    symmetric = True

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        both = torch.cat([torch.cat([a, b], dim=-1), torch.cat([b, a], dim=-1)], dim=0)
        logits = self.mlp(both).squeeze(-1)
        n = a.shape[0]
        return 0.5 * (logits[:n] + logits[n:])


class SymmetricHead(nn.Module):
    """logit = MLP([a * b, |a - b|]) + s * <a, b> + c: exactly symmetric in (a, b).

    The learnable affine term of the cosine <a, b> (the vectors are unit length) starts
    at s = 10, c = -6 (similar above a cosine of 0.6): the head starts from the
    representation's own similarity and the MLP learns corrections, instead of having to
    rediscover the cosine from scratch (a 40-step pilot without it scored AUC 0.90
    against 0.95 for the raw cosine).
    """

    symmetric = True

    def __init__(self, dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.mlp = _mlp(2 * dim, hidden)
        self.cos_scale = nn.Parameter(torch.tensor(10.0))
        self.cos_bias = nn.Parameter(torch.tensor(-6.0))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        prod = a * b
        mlp = self.mlp(torch.cat([prod, (a - b).abs()], dim=-1)).squeeze(-1)
        return mlp + self.cos_scale * prod.sum(dim=-1) + self.cos_bias


def build_head(kind: str, dim: int, hidden: tuple[int, ...]) -> nn.Module:
    """Head by name: "concat", "concat_sym" or "symmetric"."""
    if kind == "concat":
        return ConcatHead(dim, hidden)
    if kind == "concat_sym":
        return AveragedConcatHead(dim, hidden)
    if kind == "symmetric":
        return SymmetricHead(dim, hidden)
    raise ValueError(f"unknown head kind {kind!r}")
