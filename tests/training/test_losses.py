"""Losses against their formulas and their invariances (in the style of lightly's tests)."""
from __future__ import annotations

import math

import pytest
import torch

from embedder.head import SymmetricHead
from training.losses import (
    LAMBDA_BT,
    all_pairs,
    barlow_twins_loss,
    bce_head_loss,
    bta_combined_loss,
    info_nce_loss,
    pair_weights,
)


def reference_bt(z1: torch.Tensor, z2: torch.Tensor, lambd: float) -> float:
    """Barlow Twins written out with loops over the cross-correlation entries."""
    n, d = z1.shape
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + 1e-5)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + 1e-5)
    total = 0.0
    for i in range(d):
        for j in range(d):
            c = float(sum(a[k, i] * b[k, j] for k in range(n)) / n)
            total += (1 - c) ** 2 if i == j else lambd * c * c
    return total


def test_barlow_twins_matches_formula() -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(9, 5, generator=g), torch.randn(9, 5, generator=g)
    assert barlow_twins_loss(z1, z2).item() == pytest.approx(reference_bt(z1, z2, LAMBDA_BT), rel=1e-5)
    assert barlow_twins_loss(z1, z2, lambd=0.5).item() == pytest.approx(reference_bt(z1, z2, 0.5), rel=1e-5)


def test_barlow_twins_invariances() -> None:
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    base = barlow_twins_loss(z1, z2)
    # swapping the views transposes C: same loss
    assert barlow_twins_loss(z2, z1).item() == pytest.approx(base.item(), rel=1e-5)
    # the same permutation of the batch rows on both views
    perm = torch.randperm(16, generator=g)
    assert barlow_twins_loss(z1[perm], z2[perm]).item() == pytest.approx(base.item(), rel=1e-5)
    # per-dimension positive scale and shift (the projections are standardised)
    scale, shift = torch.rand(8, generator=g) * 5 + 0.5, torch.randn(8, generator=g) * 3
    assert barlow_twins_loss(z1 * scale + shift, z2).item() == pytest.approx(base.item(), rel=1e-3)


def test_barlow_twins_minimum_for_identical_decorrelated_views() -> None:
    # orthogonal columns with zero mean: C == identity -> loss ~ 0; shuffled partner -> large
    q, _ = torch.linalg.qr(torch.randn(64, 8))
    z = q - q.mean(0)
    assert barlow_twins_loss(z, z).item() < 1e-3
    assert barlow_twins_loss(z, z[torch.randperm(64)]).item() > 1.0


def test_barlow_twins_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        barlow_twins_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError):
        barlow_twins_loss(torch.randn(1, 3), torch.randn(1, 3))


def test_info_nce_matches_formula_and_prefers_matching_views() -> None:
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    t = 0.1
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    n2 = z.shape[0]
    total = 0.0
    for i in range(n2):
        partner = (i + 5) % n2
        denom = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n2) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[partner]) / t) / denom)
    assert info_nce_loss(z1, z2, t).item() == pytest.approx(total / n2, rel=1e-4)
    assert info_nce_loss(z1, z1 + 0.01 * z2, t) < info_nce_loss(z1, z2, t)


def test_all_pairs_and_weights() -> None:
    a, b = torch.arange(6.0).view(3, 2), -torch.arange(6.0).view(3, 2)
    left, right, labels = all_pairs(a, b)
    assert left.shape == (9, 2) and labels.tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert torch.equal(left[1], a[0]) and torch.equal(right[1], b[1])
    w = pair_weights(labels, 0.4)
    assert w.sum().item() == pytest.approx(9.0)
    assert (w * labels).sum().item() / 9 == pytest.approx(0.4)


def test_bta_combined_is_bce_plus_scaled_bt() -> None:
    torch.manual_seed(3)
    head = SymmetricHead(6, (8,))
    z1, z2 = torch.randn(5, 6), torch.randn(5, 6)
    loss, parts = bta_combined_loss(head, z1, z2, lambd=2e-5)
    a, b = torch.nn.functional.normalize(z1, dim=1), torch.nn.functional.normalize(z2, dim=1)
    left, right, labels = all_pairs(a, b)
    bce = bce_head_loss(head(left, right), labels, pair_weights(labels))
    assert parts["bce"] == pytest.approx(bce.item(), rel=1e-5)
    assert parts["bt"] == pytest.approx(barlow_twins_loss(z1, z2).item(), rel=1e-5)
    assert loss.item() == pytest.approx(bce.item() + 2e-5 * parts["bt"], rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in head.parameters())
