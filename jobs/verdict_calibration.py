"""Learning from verdicts: a small correction of the shipped score, fitted on the pairs reviewers decided.

The shipped fusion (`embedder.fusion.PixelFusion`) was fitted on generated pairs and on
scanned reports; a reviewer's verdict is a label on exactly the look-alikes a real corpus
throws up (`confirmed` a positive, `dismissed` a negative, `unsure` left out). Refitting the
fusion's weights from scratch on a few dozen verdicts undoes what the shipped fit learned, so
the verdicts fit a *correction anchored on the shipped score* instead:

    z_new = z_shipped + a * z_shipped + b_head * logit(head) + b_match * atanh(match)
            + b_detail * atanh(detail) + c

where z_shipped is the logit of the score the pair was reported with (it holds the pair's
background margins, which a report row cannot rebuild) and the five correction numbers carry
a Gaussian (L2) prior pulling them to zero: the fit minimises the summed log loss of the
reviewed pairs plus `prior * |(a, b, c)|^2`. With no verdicts, or a prior too strong to move,
the score is exactly the shipped one; the more consistent verdicts, the further it moves. The
prior's strength is chosen by inner cross-validation over the reviewed pairs (`PRIOR_GRID`,
and "no correction" when no strength beats the shipped score's log loss) or given.

The correction keeps the score monotone (`monotone_constraints`: no head, match or detail weight
turns negative). The correction is linear in the fusion's own features, so it is written back as a fusion:
every shipped weight, margins included, times (1 + a), plus b and c. The checkpoint keeps its
encoder and head (stores built with it stay valid) and its report threshold.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize

from embedder.fusion import META_KEY, PixelFusion, head_feature, match_feature
from jobs.review.data import read_rows, resolve
from jobs.verdicts import CONFIRMED, DISMISSED

log = logging.getLogger(__name__)

# L2 strengths tried by the inner cross-validation (per squared correction weight, against summed log loss)
PRIOR_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
CV_FOLDS = 5
MIN_VERDICTS = 4


@dataclass(frozen=True)
class ReviewedPairs:
    """The reviewed pairs' fusion inputs and labels (1 confirmed, 0 dismissed), one row per pair key."""

    keys: list[str]
    head: np.ndarray
    correlation: np.ndarray
    detail: np.ndarray
    labels: np.ndarray
    score: np.ndarray  # the fused score the pair was reported with (the shipped score the correction starts from)

    def __len__(self) -> int:
        return len(self.keys)


def _number(text: str | None, default: float) -> float:
    try:
        value = float(text) if text not in (None, "") else default
    except ValueError:
        return default
    return default if math.isnan(value) else value


def reviewed_pairs(sources: Iterable[Path]) -> ReviewedPairs:
    """Every pair with a latest verdict `confirmed` or `dismissed` in the scan folders / nightly stores `sources`.

    A pair's numbers come from the newest report that lists it (a head score is
    required; a pair the pixel check did not place counts as no match, as in a scan).
    """
    keys: list[str] = []
    values: list[tuple[float, float, float, int, float]] = []
    seen: set[str] = set()
    for source in sources:
        target = resolve(Path(source))
        latest = target.verdicts.latest()
        wanted = {k: 1 if r["verdict"] == CONFIRMED else 0 for k, r in latest.items() if r["verdict"] in (CONFIRMED, DISMISSED)}
        for report_dir in target.reports.values():  # newest first
            for row in read_rows(report_dir):
                key = row.get("pair_key", "")
                if key not in wanted or key in seen or row.get("head_score") in (None, ""):
                    continue
                seen.add(key)
                keys.append(key)
                values.append((_number(row["head_score"], 0.0), _number(row.get("pixel_match"), 0.0),
                               _number(row.get("pixel_detail"), 0.0), wanted[key], _number(row.get("score"), 0.5)))
        missing = set(wanted) - seen
        if missing:
            log.warning("%d verdict(s) of %s match no report row with a head score: left out", len(missing), source)
    arr = np.array(values, dtype=np.float64).reshape(-1, 5)
    return ReviewedPairs(keys, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3].astype(np.int64), arr[:, 4])


def features(head: np.ndarray, correlation: np.ndarray, detail: np.ndarray) -> np.ndarray:
    """(N, 3) inputs of the fused score's logistic regression (as `embedder.fusion.PixelFusion.combine` reads them)."""
    return np.stack([head_feature(head), match_feature(correlation), match_feature(detail)], axis=1)


def shipped_logit(reviewed: ReviewedPairs) -> np.ndarray:
    """Per reviewed pair, the logit of the score it was reported with (the correction's offset)."""
    # scores are written with 4 decimals: 1.0000 and 0.0000 only bound the logit
    score = np.clip(np.asarray(reviewed.score, dtype=np.float64), 5e-5, 1.0 - 5e-5)
    return np.log(score / (1.0 - score))


def correction_inputs(reviewed: ReviewedPairs) -> np.ndarray:
    """(N, 4) inputs of the correction: the shipped logit and the fusion's three features."""
    return np.column_stack([shipped_logit(reviewed), features(reviewed.head, reviewed.correlation, reviewed.detail)])


@dataclass(frozen=True)
class Correction:
    """z_new = (1 + scale) * z_shipped + weights . (logit head, atanh match, atanh detail) + bias (module doc)."""

    scale: float = 0.0
    weights: tuple[float, float, float] = (0.0, 0.0, 0.0)
    bias: float = 0.0
    prior: float | None = None  # the L2 strength it was fitted with (None: none fitted)

    def logit(self, x: np.ndarray) -> np.ndarray:
        """(N,) corrected logits for `correction_inputs` rows."""
        return (1.0 + self.scale) * x[:, 0] + x[:, 1:] @ np.array(self.weights) + self.bias

    def apply(self, base: PixelFusion) -> PixelFusion:
        """The fusion scoring `base`'s logit plus this correction (every weight of `base` times 1 + scale)."""
        k = 1.0 + self.scale
        return dataclasses.replace(base, w_head=k * base.w_head + self.weights[0], w_match=k * base.w_match + self.weights[1],
                                   w_detail=k * base.w_detail + self.weights[2], bias=k * base.bias + self.bias,
                                   w_match_margin=k * base.w_match_margin, w_detail_margin=k * base.w_detail_margin)

    def to_meta(self) -> dict[str, Any]:
        return {"scale": self.scale, "w_head": self.weights[0], "w_match": self.weights[1], "w_detail": self.weights[2],
                "bias": self.bias, "prior": self.prior}


def fit_correction(x: np.ndarray, y: np.ndarray, prior: float, base: PixelFusion | None = None) -> Correction:
    """The correction minimising the summed log loss of `correction_inputs` rows `x`, labels `y`, + prior * |params|^2.

    With `base`, the corrected fusion stays monotone: no weight of `base.apply`'s result turns
    negative, so a higher head score or a better pixel match never lowers a pair's score (a few
    dozen verdicts can otherwise trade a feature against its own background margin and rank the
    unreviewed rest of a report upside down).
    """
    if not len(y):
        return Correction(prior=prior)
    design = np.column_stack([x, np.ones(len(y))])
    y = np.asarray(y, dtype=np.float64)

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = x[:, 0] + design @ theta
        p = 1.0 / (1.0 + np.exp(-z))
        return log_loss(z, y) + prior * float(theta @ theta), design.T @ (p - y) + 2.0 * prior * theta

    constraints = [] if base is None else monotone_constraints(base)
    # convex loss, linear constraints: SLSQP from the feasible start "no correction" reaches the optimum
    result = optimize.minimize(loss_and_grad, np.zeros(design.shape[1]), jac=True, method="SLSQP",
                               constraints=constraints, options={"ftol": 1e-12, "maxiter": 500})
    p_ = [float(v) for v in result.x]
    return Correction(p_[0], (p_[1], p_[2], p_[3]), p_[4], prior)


def monotone_constraints(base: PixelFusion) -> list[dict[str, Any]]:
    """SLSQP constraints keeping `Correction.apply(base)`'s weights >= 0: (1 + scale) * w + b_w >= 0, 1 + scale >= 0.

    (A shipped weight that is already negative only may not be pushed further down: b_w >= 0.)
    """
    weights = (base.w_head, base.w_match, base.w_detail)

    def margins(theta: np.ndarray) -> np.ndarray:
        k = 1.0 + theta[0]
        return np.array([k, *(k * max(w, 0.0) + theta[1 + j] for j, w in enumerate(weights))])

    def jacobian(theta: np.ndarray) -> np.ndarray:
        jac = np.zeros((4, len(theta)))
        jac[:, 0] = [1.0, *(max(w, 0.0) for w in weights)]
        jac[1:, 1:4] = np.eye(3)
        return jac

    return [{"type": "ineq", "fun": margins, "jac": jacobian}]


def log_loss(z: np.ndarray, y: np.ndarray) -> float:
    """Summed binary log loss of logits `z` against labels `y`."""
    return float(np.sum(np.logaddexp(0.0, z) - y * z))


def cv_folds(y: np.ndarray, k: int = CV_FOLDS, seed: int = 0) -> np.ndarray:
    """(N,) fold of each row, each class dealt round the folds in a seeded random order (stratified)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=np.int64)
    offset = 0
    for label in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == label))
        fold[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)
    return fold


def choose_prior(x: np.ndarray, y: np.ndarray, grid: Iterable[float] = PRIOR_GRID,
                 base: PixelFusion | None = None) -> tuple[float | None, dict[str, float]]:
    """The prior strength with the lowest inner cross-validated log loss, or None when the shipped score's is lower.

    Returns it and the held-out log loss per strength ("none": the shipped score).
    """
    k = int(min(CV_FOLDS, np.bincount(y, minlength=2).min()))
    losses = {"none": log_loss(x[:, 0], y)}
    if k < 2:
        return None, losses
    fold = cv_folds(y, k)
    for prior in grid:
        total = 0.0
        for f in range(k):
            test = fold == f
            total += log_loss(fit_correction(x[~test], y[~test], prior, base).logit(x[test]), y[test])
        losses[str(prior)] = total
    best = min(losses, key=lambda key: (losses[key], -math.inf if key == "none" else -float(key)))  # ties: the stronger
    return (None if best == "none" else float(best)), losses


def correction_from_verdicts(reviewed: ReviewedPairs, prior: float | None = None,
                             base: PixelFusion | None = None) -> tuple[Correction, dict[str, Any]]:
    """The correction of `base` (kept monotone) learnt from `reviewed` with `prior`, or with the inner-CV choice when None.

    Returns it and how the prior was chosen.
    """
    x, y = correction_inputs(reviewed), reviewed.labels.astype(np.int64)
    if prior is not None:
        return fit_correction(x, y, prior, base), {"prior_chosen_by": "given"}
    chosen, losses = choose_prior(x, y, base=base)
    info: dict[str, Any] = {"prior_chosen_by": f"{CV_FOLDS}-fold inner cross-validation",
                            "cv_log_loss": {k: round(v, 4) for k, v in losses.items()}}
    return (Correction() if chosen is None else fit_correction(x, y, chosen, base)), info


def calibrate_with_verdicts(model: str | Path | None, out: str | Path, sources: Iterable[Path],
                            prior: float | None = None) -> tuple[PixelFusion, dict[str, Any]]:
    """Correct the fusion of `model` with the verdicts of `sources` and write the new checkpoint to `out`.

    `out` must not be `model` (the model learnt from stays as shipped); the alignment search and the
    report threshold are kept. The provenance goes into the fusion's meta under "verdicts".
    """
    from embedder.checkpoint import atomic_torch_save, read_checkpoint
    from embedder.inference import DEFAULT_CHECKPOINT
    from training.evaluate import roc_auc

    sources = list(sources)
    path = Path(model) if model is not None else DEFAULT_CHECKPOINT
    if Path(out).resolve() == path.resolve():
        raise ValueError(f"--out {out} is the model learnt from: write the corrected checkpoint to a new file")
    data = read_checkpoint(path)
    meta = data.get("meta", {})
    old = PixelFusion.from_meta(meta)
    if old is None:
        raise ValueError(f"{path} has no fused score to correct: run `reusescan calibrate` first")
    reviewed = reviewed_pairs(sources)
    confirmed = int(reviewed.labels.sum())
    if len(reviewed) < MIN_VERDICTS or confirmed == 0 or confirmed == len(reviewed):
        raise ValueError(f"{len(reviewed)} reviewed pair(s) found ({confirmed} confirmed): at least {MIN_VERDICTS}, "
                         "with both confirmed and dismissed ones, are needed")
    correction, how = correction_from_verdicts(reviewed, prior, old)
    fusion = correction.apply(old)
    x = correction_inputs(reviewed)
    stats: dict[str, Any] = {"base_model": str(path), "reviewed_pairs": len(reviewed), "confirmed": confirmed,
                             "dismissed": len(reviewed) - confirmed, "correction": correction.to_meta(), **how,
                             "reviewed_auc_before": roc_auc(x[:, 0], reviewed.labels),
                             "reviewed_auc_after": roc_auc(correction.logit(x), reviewed.labels)}  # in-sample
    entry = {**(meta.get(META_KEY) or {}), **fusion.to_meta(), "verdicts": {"sources": [str(s) for s in sources], **stats}}
    data["meta"] = {**meta, META_KEY: entry}
    atomic_torch_save(data, out)
    log.info("corrected %s with %d verdicts -> %s", path, len(reviewed), out)
    return fusion, stats
