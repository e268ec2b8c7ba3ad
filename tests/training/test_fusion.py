"""Fitting the fused score on calibration pairs and writing it into a checkpoint."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from embedder.checkpoint import read_checkpoint, save_checkpoint, weights_digest
from embedder.config import Preset
from embedder.fusion import META_KEY, PixelFusion
from embedder.inference import Embedder
from embedder.model import BTAModel
from jobs.cli import main as cli
from training.fusion import calibrate_checkpoint, calibration_pairs, fit_fusion, fit_logistic, set_fused_threshold


def test_logistic_fit_recovers_a_known_rule() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    labels = (rng.random(4000) < 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.0 * x[:, 1] + 0.5)))).astype(float)
    w, b = fit_logistic(x, labels, l2=0.0)
    assert w == pytest.approx([2.0, -1.0], abs=0.25) and b == pytest.approx(0.5, abs=0.2)


def test_fit_fusion_weighs_the_signal_that_separates() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    head = rng.uniform(0.2, 0.9, 400)  # uninformative
    corr = np.where(labels == 1, rng.uniform(0.9, 1.0, 400), rng.uniform(0.3, 0.9, 400))
    detail = np.where(labels == 1, rng.uniform(0.6, 1.0, 400), rng.uniform(0.0, 0.6, 400))
    fusion = fit_fusion(head, corr, detail, labels)
    assert fusion.w_detail > 1.0 and fusion.w_match > 0.0 and abs(fusion.w_head) < 0.5
    assert ((fusion.combine(head, corr, detail) >= 0.5) == labels).mean() > 0.97
    with pytest.raises(ValueError, match="both similar and dissimilar"):
        fit_fusion(head, corr, detail, np.ones(400))


def test_calibration_pairs_are_reproducible_and_mixed() -> None:
    pairs = calibration_pairs(40, seed=3, min_side=40, max_side=60)
    labels = [p.label for p in pairs]
    assert 6 <= sum(labels) <= 30
    assert {p.negative for p in pairs if not p.label} == {"same specimen", "other specimen"}
    again = calibration_pairs(40, seed=3, min_side=40, max_side=60)
    assert np.array_equal(np.asarray(again[7].b), np.asarray(pairs[7].b))
    with pytest.raises(ValueError, match="never meet training or evaluation"):
        calibration_pairs(10, seed=9)  # its specimens would reach the evaluation seeds


@pytest.fixture()
def tiny_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, BTAModel(Preset.TINY.config), {"head_trained": True, "threshold": 0.42})
    return path


@pytest.mark.slow
def test_calibrate_checkpoint_adds_the_fusion_and_keeps_the_weights(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "calibrated.pt"
    fusion, stats = calibrate_checkpoint(tiny_checkpoint, out, n_pairs=60, seed=1)
    assert weights_digest(out) == weights_digest(tiny_checkpoint)  # stores built with the model stay valid
    meta = read_checkpoint(out)["meta"]
    assert meta["threshold"] == 0.42  # the head's own calibration is kept
    assert PixelFusion.from_meta(meta) == fusion
    assert meta[META_KEY]["calibration"]["pairs"] == 60
    # an untrained head knows nothing; the pixel check alone separates copies from other fields
    assert stats["auc_fused"] > 0.95 and stats["auc_fused"] > stats["auc_head"]
    assert fusion.w_match > 0 and fusion.w_detail > 0
    assert PixelFusion.from_meta(Embedder.load(out, device="cpu").meta) == fusion


def test_threshold_is_stored_only_on_a_calibrated_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no pixel-check calibration"):
        set_fused_threshold(tiny_checkpoint, tmp_path / "x.pt", 0.9)
    calibrated = tmp_path / "calibrated.pt"
    calibrate_checkpoint(tiny_checkpoint, calibrated, n_pairs=20, seed=2)
    result = CliRunner().invoke(cli, ["calibrate", "--model", str(calibrated), "--out", str(calibrated),
                                      "--threshold", "0.93"])
    assert result.exit_code == 0, result.output
    assert read_checkpoint(calibrated)["meta"][META_KEY]["threshold"] == 0.93
    refused = CliRunner().invoke(cli, ["calibrate", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "y.pt"),
                                       "--threshold", "0.5"])
    assert refused.exit_code != 0 and "run `reusescan calibrate` first" in refused.output


def test_fusion_is_copied_onto_another_checkpoint_without_touching_its_weights(tiny_checkpoint: Path, tmp_path: Path) -> None:
    source = tmp_path / "source.pt"
    fusion = PixelFusion(0.1, 0.8, 1.0, -1.3, w_match_margin=0.9, w_detail_margin=0.6)
    save_checkpoint(source, BTAModel(Preset.TINY.config), {"head_trained": True, META_KEY: {**fusion.to_meta(), "threshold": 0.93}})
    out = tmp_path / "tuned.pt"
    result = CliRunner().invoke(cli, ["calibrate", "--model", str(tiny_checkpoint), "--out", str(out), "--fusion-from", str(source)])
    assert result.exit_code == 0, result.output
    meta = read_checkpoint(out)["meta"]
    assert PixelFusion.from_meta(meta) == fusion and meta[META_KEY]["threshold"] == 0.93
    assert meta["threshold"] == 0.42 and weights_digest(out) == weights_digest(tiny_checkpoint)  # the model's own part kept
    refused = CliRunner().invoke(cli, ["calibrate", "--model", str(source), "--out", str(tmp_path / "y.pt"),
                                       "--fusion-from", str(tiny_checkpoint)])
    assert refused.exit_code != 0 and "no pixel-check calibration to copy" in refused.output
