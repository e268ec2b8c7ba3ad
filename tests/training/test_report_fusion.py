"""Refitting the fused score on scanned reports with known truth (`reusescan calibrate --reports`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from embedder.checkpoint import read_checkpoint, save_checkpoint, weights_digest
from embedder.config import Preset
from embedder.fusion import META_KEY, PixelFusion
from embedder.model import BTAModel
from jobs.cli import main as cli
from training.report_fusion import fit_on_reports, report_features, rescore
from training.scoring import label_rows, score_report

BASE = PixelFusion(w_head=0.45, w_match=2.5, w_detail=2.5, bias=-5.9)


def _report(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs of 4 look-alike frames in 10 papers, 3 papers also hold a noisy copy of a frame.

    The frames correlate 0.96-0.975 among themselves and keep their static detail; the copies correlate
    0.985-0.995 but lost detail to noise, and the head prefers the frames: only the margins separate them.
    """
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for p in range(10):
        doc = f"p{p}.pdf"
        frames = [f"{10 * i} 0 {10 * i + 9} 9" for i in range(4)]
        for i in range(4):
            for j in range(i + 1, 4):
                rows.append((doc, frames[i], doc, frames[j], rng.uniform(0.8, 0.95), rng.uniform(0.96, 0.975),
                             rng.uniform(0.75, 0.85)))
        if p < 3:
            rows.append((doc, frames[0], f"c{p}.pdf", "0 0 9 9", rng.uniform(0.2, 0.5), rng.uniform(0.985, 0.995),
                         rng.uniform(0.6, 0.75)))
            truth.append({"doc_a": doc, "page_a": 1, "bbox_a": frames[0], "doc_b": f"c{p}.pdf", "page_b": 1,
                          "bbox_b": "0 0 9 9"})
    report = pd.DataFrame([{"score": 0.0, "doc_a": a, "page_a": 1, "bbox_a": ba, "doc_b": b, "page_b": 1,
                            "bbox_b": bb, "head_score": h, "pixel_match": m, "pixel_detail": d}
                           for a, ba, b, bb, h, m, d in rows])
    return report, pd.DataFrame(truth)


def test_features_and_labels_of_a_report() -> None:
    report, truth = _report(0)
    labels = label_rows(report, truth)
    assert labels.sum() == 3 and len(labels) == len(report)
    x = report_features(report)
    assert x.shape == (len(report), 5)
    assert x[labels == 1, 3].min() > 0.2 > x[labels == 0, 3].max()  # copies lead their background, frames do not


@pytest.mark.slow  # 29 s on the loaded machine (scoring the reports)
def test_a_refit_with_margins_ranks_copies_above_look_alikes_on_held_out_reports() -> None:
    report, truth = _report(0)
    fusion = fit_on_reports([(report, label_rows(report, truth))], BASE)
    assert fusion.w_match_margin > 0 and fusion.align == BASE.align
    held, held_truth = _report(1)
    before = score_report(held.assign(score=rescore(held, BASE)), held_truth)
    after = score_report(held.assign(score=rescore(held, fusion)), held_truth)
    assert after.average_precision == 1.0 > before.average_precision


@pytest.mark.slow
def test_calibrate_reports_stores_fusion_and_threshold(tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    save_checkpoint(model, BTAModel(Preset.TINY.config), {"threshold": 0.42, META_KEY: BASE.to_meta()})
    paths = []
    for seed in (0, 2):
        report, truth = _report(seed)
        paths += [str(tmp_path / f"r{seed}.csv"), str(tmp_path / f"t{seed}.csv")]
        report.to_csv(paths[-2], index=False)
        truth.to_csv(paths[-1], index=False)
    out = tmp_path / "out.pt"
    result = CliRunner().invoke(cli, ["calibrate", "--model", str(model), "--out", str(out),
                                      "--reports", paths[0], paths[1], "--reports", paths[2], paths[3]])
    assert result.exit_code == 0, result.output
    meta = read_checkpoint(out)["meta"]
    fusion = PixelFusion.from_meta(meta)
    assert fusion is not None and fusion.uses_background
    assert 0.0 < meta[META_KEY]["threshold"] <= 1.0 and meta["threshold"] == 0.42
    assert len(meta[META_KEY]["calibration"]["reports"]) == 2
    assert weights_digest(out) == weights_digest(model)
