"""Losses of the BTA recipe (and InfoNCE), as small typed functions and modules.

- `barlow_twins_loss`: L_BT = sum_i (1 - C_ii)^2 + lambda * sum_{i!=j} C_ij^2, where C is
  the cross-correlation of the two views' projections, each standardised over the batch
  (zero mean, unit variance per dimension: the "normalised projections"); lambda = 4e-3.
- `bce_head_loss`: binary cross-entropy of head logits against pair labels.
- `bta_combined_loss`: L = L_BCE + 2e-5 * L_BT, the BCE over all in-batch pairs
  (view-1 of image i against view-2 of image j; similar iff i == j), weighted so the
  similar pairs carry `pos_fraction` (0.4, the paper's pair prior) of the total weight.
- `info_nce_loss`: NT-Xent (SimCLR) on L2-normalised projections, temperature 0.1, which
  converged much faster than Barlow Twins when training from scratch on a 2-core CPU.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

LAMBDA_BT = 4e-3
LAMBDA_COMBINED = 2e-5
PAIR_POS_FRACTION = 0.4


def standardize(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-dimension zero mean / unit (biased) variance over the batch, like BatchNorm1d(affine=False)."""
    z = z.float()
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)


def cross_correlation(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """C = standardize(z1)^T standardize(z2) / N, shape (D, D)."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"need two (N, D) batches of the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] < 2:
        raise ValueError("Barlow Twins needs a batch of at least 2")
    return standardize(z1).T @ standardize(z2) / z1.shape[0]


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = LAMBDA_BT) -> torch.Tensor:
    """L_BT on two (N, D) projection batches (rows = the same images under two alterations)."""
    c = cross_correlation(z1, z2)
    diag = torch.diagonal(c)
    on = (1 - diag).pow(2).sum()
    off = c.pow(2).sum() - diag.pow(2).sum()
    return on + lambd * off


class BarlowTwinsLoss(nn.Module):
    """Module form of `barlow_twins_loss`."""

    def __init__(self, lambd: float = LAMBDA_BT) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return barlow_twins_loss(z1, z2, self.lambd)


def bce_head_loss(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy of head logits (N,) against labels in {0, 1} (N,)."""
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float(), weight=weight)


def all_pairs(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every (a_i, b_j) pair of two (N, D) batches, flattened: (N*N, D), (N*N, D), labels (N*N,)."""
    n = a.shape[0]
    left = a.unsqueeze(1).expand(n, n, -1).reshape(n * n, -1)
    right = b.unsqueeze(0).expand(n, n, -1).reshape(n * n, -1)
    labels = torch.eye(n, device=a.device).reshape(-1)
    return left, right, labels


def pair_weights(labels: torch.Tensor, pos_fraction: float = PAIR_POS_FRACTION) -> torch.Tensor:
    """Per-pair weights summing to len(labels): positives share `pos_fraction` of it."""
    n = labels.numel()
    n_pos = labels.sum().clamp(min=1)
    n_neg = (n - labels.sum()).clamp(min=1)
    return n * torch.where(labels > 0.5, pos_fraction / n_pos, (1 - pos_fraction) / n_neg)


def bta_combined_loss(
    head: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    z1: torch.Tensor,
    z2: torch.Tensor,
    lambd: float = LAMBDA_COMBINED,
    lambd_bt: float = LAMBDA_BT,
    pos_fraction: float = PAIR_POS_FRACTION,
) -> tuple[torch.Tensor, dict[str, float]]:
    """BTA-combined: L = L_BCE(all in-batch pairs) + lambd * L_BT(z1, z2).

    z1, z2 are the raw projections p(f(.)) of two alterations of the same N images; the head
    sees their L2-normalised versions (the index vectors). Returns the loss and its parts.
    """
    l_bt = barlow_twins_loss(z1, z2, lambd_bt)
    a, b = F.normalize(z1.float(), dim=-1), F.normalize(z2.float(), dim=-1)
    left, right, labels = all_pairs(a, b)
    l_bce = bce_head_loss(head(left, right), labels, pair_weights(labels, pos_fraction))
    return l_bce + lambd * l_bt, {"bce": float(l_bce.detach()), "bt": float(l_bt.detach())}


def info_nce_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent: each view must pick its partner among the other 2N-1 views of the batch."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0).float(), dim=-1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)
