"""Which threshold a scoring mode uses (`jobs.match.model_threshold`)."""
from __future__ import annotations

from types import SimpleNamespace

from embedder.fusion import META_KEY
from jobs.scoring import DEFAULT_THRESHOLD, model_threshold


def test_each_scoring_mode_has_its_own_calibrated_threshold() -> None:
    calibrated = SimpleNamespace(meta={"threshold": 0.89, META_KEY: {"threshold": 0.81}})
    assert model_threshold(calibrated) == 0.89
    assert model_threshold(calibrated, fused=True) == 0.81
    bare = SimpleNamespace(meta={META_KEY: {"w_head": 1.0}})
    assert model_threshold(bare) == model_threshold(bare, fused=True) == DEFAULT_THRESHOLD == 0.5
    assert model_threshold(SimpleNamespace(meta={"threshold": 7})) == DEFAULT_THRESHOLD
