"""Refit the fused score on scanned corpora with known truth (real papers, real images, generated corpora).

`reusescan calibrate --reports REPORT.csv TRUTH.csv ...` reads reports written by
`reusescan scan --threshold 0` (every candidate pair with its `head_score`,
`pixel_match` and `pixel_detail`), labels each row by the corpus truth, and fits
the five weights of `embedder.fusion.PixelFusion` (head, correlation, detail and
the two background margins, which need the run's other candidate pairs and so
cannot be fitted on isolated calibration pairs). The report threshold is then the
lowest rescored value that keeps precision >= 0.9 on every report. True pairs are
rare among candidates (about 1 in 175 on real papers), so the fitted bias is shifted by
log(false / true rows): the score is then the probability of a copy at even prior odds,
on the scale of the generated-pair calibration, and the ranking is unchanged. Scoring the
same reports again needs no rescan: `rescore`, or `benchmarks/rescore.py`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embedder.fusion import META_KEY, PixelFusion, background_margin, head_feature, match_feature
from training.fusion import fit_logistic
from training.scoring import label_rows, score_report

TOP_ROWS = 400  # a precision-0.9 prefix lies among the best rows; scoring every prefix of 5,000 rows is slow


def panel_ids(report: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One id per panel of each row's two sides (document, page and box identify a panel in a report)."""
    a = report["doc_a"].astype(str) + "|" + report["page_a"].astype(str) + "|" + report["bbox_a"].astype(str)
    b = report["doc_b"].astype(str) + "|" + report["page_b"].astype(str) + "|" + report["bbox_b"].astype(str)
    return a.to_numpy(), b.to_numpy()


def report_features(report: pd.DataFrame) -> np.ndarray:
    """(N, 5) fusion features of a threshold-0 report: head, correlation, detail and their two margins."""
    m = match_feature(report["pixel_match"].fillna(0.0).to_numpy())
    d = match_feature(report["pixel_detail"].fillna(0.0).to_numpy())
    ids = panel_ids(report)
    return np.stack([head_feature(report["head_score"].to_numpy()), m, d,
                     background_margin(*ids, m), background_margin(*ids, d)], axis=1)


def rescore(report: pd.DataFrame, fusion: PixelFusion) -> np.ndarray:
    """The score `fusion` gives each row of a threshold-0 report (no crop floor: reports keep no placement scale)."""
    return fusion.combine(report["head_score"].to_numpy(), report["pixel_match"].fillna(0.0).to_numpy(),
                          report["pixel_detail"].fillna(0.0).to_numpy(), pair_ids=panel_ids(report))


def fit_on_reports(labelled: Sequence[tuple[pd.DataFrame, np.ndarray]], base: PixelFusion,
                   l2: float = 1e-3, keep_base: bool = False) -> PixelFusion:
    """`base` with its five weights refitted on labelled report rows (each report's margins within itself).

    `keep_base`: keep the proportions of base's head, correlation and detail weights (one common
    factor is fitted for them, with the two margin weights and the bias).
    """
    x = np.concatenate([report_features(r) for r, _ in labelled])
    y = np.concatenate([np.asarray(lab, dtype=np.float64) for _, lab in labelled])
    if y.min() == y.max():
        raise ValueError("the reports need both true and false pairs")
    base_w = np.array([base.w_head, base.w_match, base.w_detail])
    if keep_base:
        w3, bias = fit_logistic(np.column_stack([x[:, :3] @ base_w + base.bias, x[:, 3:]]), y, l2)
        w = np.concatenate([w3[0] * base_w, w3[1:]])
        bias += float(w3[0] * base.bias)
    else:
        w, bias = fit_logistic(x, y, l2)
    bias += float(np.log((y == 0).sum() / (y == 1).sum()))  # even prior odds (module doc)
    w_head, w_match, w_detail, w_match_margin, w_detail_margin = (float(v) for v in w)
    return replace(base, bias=bias, w_head=w_head, w_match=w_match, w_detail=w_detail,
                   w_match_margin=w_match_margin, w_detail_margin=w_detail_margin)


def threshold_for_precision(report: pd.DataFrame, truth: pd.DataFrame, precision: float = 0.9,
                            contain: bool = False) -> float | None:
    """Lowest `score` whose report prefix keeps `precision` (None if no prefix does)."""
    top = report.nlargest(TOP_ROWS, "score")
    best = None
    for thr in sorted(set(top["score"].round(4)), reverse=True):
        res = score_report(top[top["score"] >= thr], truth, contain=contain)
        if res.precision is not None and res.precision >= precision:
            best = float(thr)
    return best


def write_calibration(model: str | Path, out: str | Path, fusion: PixelFusion, threshold: float,
                      stats: list[dict[str, Any]]) -> None:
    """Store the refitted fusion and its threshold in the checkpoint's meta (`pixel_check`)."""
    from embedder.checkpoint import atomic_torch_save, read_checkpoint

    data = read_checkpoint(model)
    meta = data.get("meta", {})
    data["meta"] = {**meta, META_KEY: {**fusion.to_meta(), "threshold": float(threshold),
                                       "calibration": {"reports": stats}}}
    atomic_torch_save(data, out)


def calibrate_on_reports(base: PixelFusion, reports: Sequence[tuple[str | Path, str | Path]], contain: bool = False,
                         precision: float = 0.9, keep_base: bool = False) -> tuple[PixelFusion, float, list[dict[str, Any]]]:
    """Fit on (report, truth) files; the threshold keeping `precision` on all; per-report AP and R@P0.9 after."""
    frames = [(pd.read_csv(r), pd.read_csv(t)) for r, t in reports]
    fusion = fit_on_reports([(r, label_rows(r, t, contain=contain)) for r, t in frames], base, keep_base=keep_base)
    thresholds: list[float | None] = []
    stats: list[dict[str, Any]] = []
    for (report, truth), (path, _) in zip(frames, reports):
        rescored = report.assign(score=rescore(report, fusion))
        res = score_report(rescored, truth, contain=contain)
        thr = threshold_for_precision(rescored, truth, precision, contain)
        thresholds.append(thr)
        stats.append({"report": str(path), "average_precision": res.average_precision,
                      "recall_at_p90": res.recall_at_p90, "threshold_for_p90": thr})
    found = [t for t in thresholds if t is not None]
    threshold = max(found) if found else 0.5
    return fusion, threshold, stats
