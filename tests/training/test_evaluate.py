"""Metrics against hand counts and brute force; the protocol on a tiny set."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from embedder.config import Preset
from embedder.fusion import PixelFusion
from embedder.inference import Embedder
from embedder.model import BTAModel
from training.evaluate import (
    binary_metrics,
    draw_roc,
    evaluate_embedders,
    format_table,
    make_pairs,
    per_alteration_accuracy,
    roc_auc,
    roc_curve,
)


def test_binary_metrics_by_hand() -> None:
    scores = np.array([0.9, 0.8, 0.3, 0.6, 0.1, 0.5])
    labels = np.array([1, 1, 1, 0, 0, 0])
    m = binary_metrics(scores, labels)
    # predicted similar: 0.9, 0.8, 0.6, 0.5 -> tp 2, fp 2, fn 1, tn 1
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["precision"] == pytest.approx(2 / 4) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_auc_equals_pair_counting_with_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 40) / 4  # many ties
    labels = rng.integers(0, 2, 40)
    pos, neg = scores[labels == 1], scores[labels == 0]
    brute = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)])
    assert roc_auc(scores, labels) == pytest.approx(brute)
    fpr, tpr = roc_curve(scores, labels)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.trapezoid(tpr, fpr) == pytest.approx(brute)
    assert roc_auc(np.array([0.2, 0.9]), np.array([0, 1])) == 1.0


def test_per_alteration_accuracy() -> None:
    acc = per_alteration_accuracy(np.array([0.9, 0.1, 0.9, 0.9]), np.array([1, 1, 0, 1]), ["a", "a", "b", "b"])
    assert acc == {"a": 0.5, "b": 0.5}


def test_pairs_from_generators_follow_the_protocol() -> None:
    pairs = make_pairs(60, seed=1, min_side=40, max_side=60)
    labels = np.array([p.label for p in pairs])
    assert 10 <= labels.sum() <= 40
    from training.data import alteration_kinds

    assert {p.alteration for p in pairs} == set(alteration_kinds())
    again = make_pairs(60, seed=1, min_side=40, max_side=60)
    assert [p.label for p in again] == labels.tolist()
    assert np.array_equal(np.asarray(again[5].b), np.asarray(pairs[5].b))


def test_pairs_from_a_folder(tmp_path: Path) -> None:
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    pairs = make_pairs(12, seed=0, folder=tmp_path)
    assert len(pairs) == 12 and all(p.kind.endswith(".png") for p in pairs)


def test_evaluate_tiny_models_and_draw_roc(tmp_path: Path) -> None:
    torch.manual_seed(0)
    pairs = make_pairs(16, seed=0, min_side=40, max_side=60)
    models = {"BTA": Embedder(BTAModel(Preset.TINY.config), {"head_trained": True}, device="cpu"),
              "Barlow Twins": Embedder(BTAModel(Preset.TINY.config), {"head_trained": False}, device="cpu")}
    rows = evaluate_embedders(models, pairs)
    assert [r.name for r in rows] == ["BTA", "BTA cosine", "Barlow Twins cosine"]
    # a fusion stored with a head-less model is fused with its cosine, and gets its own row
    models["Barlow Twins"].meta["pixel_check"] = PixelFusion(1.0, 1.0, 1.0, -2.0).to_meta()
    fused = {r.name: r for r in evaluate_embedders(models, pairs)}
    assert list(fused) == ["BTA", "BTA cosine", "Barlow Twins cosine", "Barlow Twins cosine + pixel check"]
    assert np.array_equal(fused["Barlow Twins cosine"].scores, rows[2].scores)
    assert fused["Barlow Twins cosine + pixel check"].metrics["auc"] > 0.9 > rows[2].metrics["auc"]
    for r in rows:
        assert set(r.metrics) == {"accuracy", "precision", "recall", "f1", "auc"}
        assert 0 <= r.metrics["accuracy"] <= 1 and len(r.scores) == 16
    table = format_table(rows)
    assert "BTA cosine" in table and "per-alteration accuracy" in table
    png = draw_roc(rows, np.array([p.label for p in pairs]), tmp_path / "roc.png")
    with Image.open(png) as im:
        assert im.size[0] > 400 and len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 3
