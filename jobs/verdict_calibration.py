"""Learning from verdicts: refit the fused score with the pairs reviewers decided.

`reusescan calibrate` fits the fusion (`embedder.fusion.PixelFusion`: head
score, pixel match and detail -> score) on generated calibration pairs, which
are not the look-alikes a real corpus throws up. A reviewer's verdict is a
label on exactly such a pair: `confirmed` is a positive, `dismissed` a negative
(`unsure` is left out). The three numbers of a reviewed pair are read back from
the report rows it was decided on (`head_score`, `pixel_match`, `pixel_detail`
of report.csv or dismissed.csv, joined by `pair_key`), so no pixel is read
again. The refit is the same logistic regression, on the generated pairs plus
the reviewed ones, each reviewed pair weighted so that together they carry
`verdict_share` of the fit. The checkpoint keeps its encoder and head: stores
built with it stay valid.

A fusion with background margins (`PixelFusion.uses_background`) keeps its two
margin weights: a report row does not hold the other candidates its margins came
from, but its reported score does, so each reviewed pair's margin part is read back
as logit(score) minus the three-weight part and held fixed in the fit.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedder.fusion import META_KEY, PixelFusion, head_feature, match_feature
from embedder.verify import AlignConfig
from jobs.review.data import read_rows, resolve
from jobs.verdicts import CONFIRMED, DISMISSED

log = logging.getLogger(__name__)

DEFAULT_VERDICT_SHARE = 0.5  # reviewed pairs weigh as much as all generated ones together
MIN_VERDICTS = 4


@dataclass(frozen=True)
class ReviewedPairs:
    """The reviewed pairs' fusion inputs and labels (1 confirmed, 0 dismissed), one row per pair key."""

    keys: list[str]
    head: np.ndarray
    correlation: np.ndarray
    detail: np.ndarray
    labels: np.ndarray
    score: np.ndarray | None = None  # the fused score the pair was reported with

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


def margin_part(fusion: PixelFusion, reviewed: ReviewedPairs) -> np.ndarray:
    """Per reviewed pair, the logit its background margins added to its reported score (0 without margins)."""
    if not fusion.uses_background or reviewed.score is None:
        return np.zeros(len(reviewed))
    # scores are written with 4 decimals: 1.0000 and 0.0000 only bound the logit
    score = np.clip(reviewed.score, 5e-5, 1.0 - 5e-5)
    base = features(reviewed.head, reviewed.correlation, reviewed.detail) @ np.array(
        [fusion.w_head, fusion.w_match, fusion.w_detail]) + fusion.bias
    return np.log(score / (1.0 - score)) - base


def fit_weighted_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float = 1e-3,
                          offset: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Weights (F,) and bias minimising the weighted mean BCE + l2 * |w|^2 (LBFGS, as `training.fusion.fit_logistic`).

    `offset` (N,) is a fixed logit added per row (a part of the score the fit does not change).
    """
    import torch

    off = torch.as_tensor(np.zeros(len(y)) if offset is None else offset, dtype=torch.float64)
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    wt = torch.as_tensor(weight / weight.sum(), dtype=torch.float64)
    params = torch.zeros(xt.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], max_iter=500, tolerance_grad=1e-10, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        z = xt @ params[:-1] + params[-1] + off
        bce = torch.nn.functional.binary_cross_entropy_with_logits(z, yt, reduction="none")
        loss = (wt * bce).sum() + l2 * params[:-1].pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w = params.detach().numpy()
    return w[:-1].copy(), float(w[-1])


def fit_with_verdicts(generated: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], reviewed: ReviewedPairs,
                      align: AlignConfig, verdict_share: float = DEFAULT_VERDICT_SHARE,
                      base: PixelFusion | None = None) -> PixelFusion:
    """The fusion fitted on generated (head, correlation, detail, labels) plus `reviewed`, which weigh `verdict_share`.

    With a `base` fusion that uses background margins, its margin weights are kept (module doc).
    """
    if not 0.0 < verdict_share < 1.0:
        raise ValueError(f"the verdicts' share of the fit lies strictly between 0 and 1, not {verdict_share}")
    g_head, g_corr, g_detail, g_labels = generated
    x = np.concatenate([features(g_head, g_corr, g_detail), features(reviewed.head, reviewed.correlation, reviewed.detail)])
    y = np.concatenate([np.asarray(g_labels, dtype=np.float64), reviewed.labels.astype(np.float64)])
    n_gen, n_rev = len(g_labels), len(reviewed)
    weight = np.concatenate([np.full(n_gen, (1.0 - verdict_share) / max(n_gen, 1)), np.full(n_rev, verdict_share / max(n_rev, 1))])
    if y.min() == y.max():
        raise ValueError("the fit needs both similar and dissimilar pairs")
    margins = base is not None and base.uses_background
    offset = np.concatenate([np.zeros(n_gen), margin_part(base, reviewed)]) if base is not None and margins else None
    (w_head, w_match, w_detail), bias = fit_weighted_logistic(x, y, weight, offset=offset)
    if base is not None and margins:
        return dataclasses.replace(base, w_head=float(w_head), w_match=float(w_match), w_detail=float(w_detail),
                                   bias=bias, align=align)
    return PixelFusion(float(w_head), float(w_match), float(w_detail), bias, align)


def generated_signals(model: str | Path | None, n_pairs: int, seed: int, align: AlignConfig,
                      progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Head, correlation, detail and labels of the generated calibration pairs (`training.fusion`), for one model."""
    from embedder.inference import DEFAULT_CHECKPOINT, Embedder
    from training.fusion import calibration_pairs, pair_signals

    embedder = Embedder.load(Path(model) if model is not None else DEFAULT_CHECKPOINT)
    pairs = calibration_pairs(n_pairs, seed)
    head, corr, detail = pair_signals(embedder, [p.a for p in pairs], [p.b for p in pairs], align, progress)
    return head, corr, detail, np.array([p.label for p in pairs])


def calibrate_with_verdicts(model: str | Path | None, out: str | Path, sources: Iterable[Path], *, n_pairs: int = 1200,
                            seed: int = 0, verdict_share: float = DEFAULT_VERDICT_SHARE,
                            progress: Callable[[int], None] | None = None) -> tuple[PixelFusion, dict[str, Any]]:
    """Refit the fusion of `model` with the verdicts of `sources` and write the checkpoint to `out`.

    The alignment search is the one the model was calibrated with (the reviewed
    pairs' pixel numbers were measured with it); the stored report threshold is kept.
    """
    from embedder.checkpoint import atomic_torch_save, read_checkpoint
    from embedder.inference import DEFAULT_CHECKPOINT
    from training.evaluate import roc_auc

    sources = list(sources)
    path = Path(model) if model is not None else DEFAULT_CHECKPOINT
    data = read_checkpoint(path)
    meta = data.get("meta", {})
    old = PixelFusion.from_meta(meta)
    align = old.align if old is not None else AlignConfig()
    reviewed = reviewed_pairs(sources)
    confirmed = int(reviewed.labels.sum())
    if len(reviewed) < MIN_VERDICTS or confirmed == 0 or confirmed == len(reviewed):
        raise ValueError(f"{len(reviewed)} reviewed pair(s) found ({confirmed} confirmed): at least {MIN_VERDICTS}, "
                         "with both confirmed and dismissed ones, are needed")
    generated = generated_signals(path, n_pairs, seed, align, progress)
    fusion = fit_with_verdicts(generated, reviewed, align, verdict_share, base=old)
    fused = fusion.combine(reviewed.head, reviewed.correlation, reviewed.detail)  # without margins: a comparison only
    stats: dict[str, Any] = {"generated_pairs": n_pairs, "reviewed_pairs": len(reviewed), "confirmed": confirmed,
                             "dismissed": len(reviewed) - confirmed, "verdict_share": verdict_share,
                             "reviewed_auc_after": roc_auc(fused, reviewed.labels)}
    if old is not None:
        stats["reviewed_auc_before"] = roc_auc(old.combine(reviewed.head, reviewed.correlation, reviewed.detail),
                                               reviewed.labels)
    entry = {**(meta.get(META_KEY) or {}), **fusion.to_meta(),
             "verdicts": {"seed": seed, "sources": [str(s) for s in sources], **stats}}
    data["meta"] = {**meta, META_KEY: entry}
    atomic_torch_save(data, out)
    log.info("recalibrated %s with %d verdicts -> %s", path, len(reviewed), out)
    return fusion, stats
