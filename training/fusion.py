"""Fit the fused score (`embedder.fusion.PixelFusion`) on generated calibration pairs.

Calibration pairs mimic what a scan sees among its candidates: a specimen field
against a *chain* of 1-3 alterations of itself (positives, p = 0.4), against
another field of the same specimen (the hard negatives that fool the head), or
against another specimen. Their seeds start at `CALIBRATION_SEED_BASE`, apart
from training specimens (below 1e5) and evaluation seeds (`EVAL_SEED_BASE` on).

The fit is a logistic regression (LBFGS, a little L2) on three features per pair:
the head's logit, and the atanh of the pixel check's two correlations (the best
placement's, and that placement's high-pass "detail" correlation). It is small
enough to be exact and fast; `calibrate_checkpoint` writes the result into a copy of the
checkpoint's meta.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from embedder.fusion import META_KEY, PixelFusion, head_feature, match_feature
from embedder.verify import AlignConfig, align_images
from training.data import PAIR_POS_FRACTION, all_kinds, alter, specimen_image

if TYPE_CHECKING:  # pragma: no cover
    from embedder.inference import Embedder

log = logging.getLogger(__name__)

CALIBRATION_SEED_BASE = 900_000
MAX_CALIBRATION_SEED = 8  # seeds 0-8 with at most MAX_CALIBRATION_PAIRS stay below EVAL_SEED_BASE (1e6)
MAX_CALIBRATION_PAIRS = 5_000


@dataclass
class CalibrationPair:
    a: Image.Image
    b: Image.Image
    label: int
    negative: str  # "" for positives, "same specimen" or "other specimen"


def calibration_pairs(n_pairs: int, seed: int = 0, min_side: int = 80, max_side: int = 200) -> list[CalibrationPair]:
    """`n_pairs` pairs: 40% altered copies (chains), the rest half same-specimen, half other-specimen."""
    if not 0 <= seed <= MAX_CALIBRATION_SEED or not 0 < n_pairs <= MAX_CALIBRATION_PAIRS:
        raise ValueError(f"calibration takes seed 0-{MAX_CALIBRATION_SEED} and 1-{MAX_CALIBRATION_PAIRS} pairs, "
                         "so that its specimens never meet training or evaluation ones")
    rng = np.random.default_rng([seed, 777])
    kinds = all_kinds()
    out: list[CalibrationPair] = []
    for i in range(n_pairs):
        spec = CALIBRATION_SEED_BASE + seed * 10_000 + i
        _, a = specimen_image(kinds, spec, 0, min_side, max_side)
        if rng.random() < PAIR_POS_FRACTION:
            other, label, negative = a, 1, ""
        elif rng.random() < 0.5:
            other, label, negative = specimen_image(kinds, spec, 1, min_side, max_side)[1], 0, "same specimen"
        else:
            other, label, negative = specimen_image(kinds, spec + 5_000, 0, min_side, max_side)[1], 0, "other specimen"
        out.append(CalibrationPair(a, alter(other, rng), label, negative))
    return out


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1e-3) -> tuple[np.ndarray, float]:
    """Weights (F,) and bias of a logistic regression minimising mean BCE + l2 * |w|^2."""
    x = torch.as_tensor(features, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.float64)
    params = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], max_iter=500, tolerance_grad=1e-10, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        z = x @ params[:-1] + params[-1]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y) + l2 * params[:-1].pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w = params.detach().numpy()
    return w[:-1].copy(), float(w[-1])


def fit_fusion(head: np.ndarray, correlation: np.ndarray, detail: np.ndarray, labels: np.ndarray,
               align: AlignConfig = AlignConfig()) -> PixelFusion:
    """The fused score's weights from per-pair head probabilities, pixel-check results and 0/1 labels."""
    labels = np.asarray(labels)
    if labels.min() == labels.max():
        raise ValueError("calibration needs both similar and dissimilar pairs")
    features = np.stack([head_feature(head), match_feature(correlation), match_feature(detail)], axis=1)
    (w_head, w_match, w_detail), bias = fit_logistic(features, labels)
    return PixelFusion(float(w_head), float(w_match), float(w_detail), bias, align)


def pair_signals(embedder: Embedder, a: Sequence[Image.Image], b: Sequence[Image.Image], align: AlignConfig,
                 progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head probabilities, pixel-check correlations and detail correlations of pairs (a[i], b[i])."""
    head = np.asarray(embedder.score(embedder.embed(list(a)), embedder.embed(list(b))), dtype=np.float64)
    found = align_images(a, b, align, progress)
    corr = np.array([f.correlation for f in found], dtype=np.float64)
    detail = np.array([f.detail for f in found], dtype=np.float64)
    return head, corr, detail


def calibrate_checkpoint(model: str | Path | None, out: str | Path, n_pairs: int = 1200, seed: int = 0,
                         align: AlignConfig = AlignConfig(),
                         progress: Callable[[int], None] | None = None) -> tuple[PixelFusion, dict[str, float]]:
    """Fit the fusion for a checkpoint and write the checkpoint with it to `out`.

    Returns the fusion and the calibration set's AUC for the head alone and fused.
    """
    from embedder.checkpoint import atomic_torch_save, read_checkpoint
    from embedder.inference import DEFAULT_CHECKPOINT, Embedder
    from training.evaluate import roc_auc

    path = Path(model) if model is not None else DEFAULT_CHECKPOINT
    embedder = Embedder.load(path)
    pairs = calibration_pairs(n_pairs, seed)
    labels = np.array([p.label for p in pairs])
    head, corr, detail = pair_signals(embedder, [p.a for p in pairs], [p.b for p in pairs], align, progress)
    fusion = fit_fusion(head, corr, detail, labels, align)
    fused = fusion.combine(head, corr, detail)
    stats = {"pairs": float(len(pairs)), "auc_head": roc_auc(head, labels), "auc_fused": roc_auc(fused, labels),
             "accuracy_head": float(((head >= 0.5) == labels).mean()),
             "accuracy_fused": float(((fused >= 0.5) == labels).mean())}
    data = read_checkpoint(path)
    data["meta"] = {**data.get("meta", {}), META_KEY: {**fusion.to_meta(), "calibration": {"seed": seed, **stats}}}
    atomic_torch_save(data, out)
    log.info("calibrated %s -> %s: %s", path, out, stats)
    return fusion, stats


def set_fused_threshold(model: str | Path, out: str | Path, threshold: float) -> None:
    """Store the report threshold of the fused score (`pixel_check.threshold`) in a calibrated checkpoint.

    The threshold comes from `benchmarks/bench_scan.py` (the lowest fused score
    that keeps precision at 0.9 on a corpus not used for evaluation).
    """
    from embedder.checkpoint import atomic_torch_save, read_checkpoint

    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], not {threshold}")
    data = read_checkpoint(model)
    entry = data.get("meta", {}).get(META_KEY)
    if not isinstance(entry, dict):
        raise ValueError(f"{model} has no pixel-check calibration: run `reusescan calibrate` first")
    data["meta"][META_KEY] = {**entry, "threshold": float(threshold)}
    atomic_torch_save(data, out)


def copy_fusion(source: str | Path, model: str | Path, out: str | Path) -> None:
    """Write `model` to `out` with the fusion and report threshold of checkpoint `source` (no refit)."""
    from embedder.checkpoint import atomic_torch_save, read_checkpoint

    entry = read_checkpoint(source).get("meta", {}).get(META_KEY)
    if not isinstance(entry, dict):
        raise ValueError(f"{source} has no pixel-check calibration to copy")
    data = read_checkpoint(model)
    data["meta"] = {**data.get("meta", {}), META_KEY: {**entry, "copied_from": str(source)}}
    atomic_torch_save(data, out)
