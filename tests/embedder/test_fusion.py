"""The fused score: a logistic combination of head, pixel correlation and detail, stored in checkpoint meta."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from embedder.fusion import META_KEY, PixelFusion, background_margin, head_feature, match_feature
from embedder.verify import AlignConfig

FUSION = PixelFusion(w_head=0.4, w_match=2.4, w_detail=2.5, bias=-5.5, align=AlignConfig(detail_side=96))


def test_features_stay_finite_at_the_ends() -> None:
    assert np.isfinite(head_feature(np.array([0.0, 1.0]))).all()
    assert head_feature(np.array([0.5]))[0] == pytest.approx(0.0)
    assert match_feature(np.array([-0.3]))[0] == 0.0  # anti-correlation counts as none
    assert np.isfinite(match_feature(np.array([1.0]))).all()


def test_combine_is_the_logistic_formula() -> None:
    head, corr, detail = np.array([0.8]), np.array([0.9]), np.array([0.7])
    z = 0.4 * np.log(0.8 / 0.2) + 2.4 * np.arctanh(0.9) + 2.5 * np.arctanh(0.7) - 5.5
    assert FUSION.combine(head, corr, detail)[0] == pytest.approx(1 / (1 + np.exp(-z)), rel=1e-5)


def test_combine_rises_with_every_signal() -> None:
    grid = np.linspace(0.05, 0.95, 10)
    base = np.full(10, 0.5)
    for args in ((grid, base, base), (base, grid, base), (base, base, grid)):
        assert np.all(np.diff(FUSION.combine(*args)) > 0)


def test_a_copy_outscores_a_look_alike_the_head_prefers() -> None:
    copy = FUSION.combine(np.array([0.3]), np.array([0.98]), np.array([0.9]))
    look_alike = FUSION.combine(np.array([0.9]), np.array([0.95]), np.array([0.3]))
    assert copy[0] > 0.95 > 0.7 > look_alike[0]


def test_meta_round_trip_and_absence() -> None:
    meta = {"threshold": 0.4, META_KEY: {**FUSION.to_meta(), "threshold": 0.7, "calibration": {"seed": 0}}}
    assert PixelFusion.from_meta(meta) == FUSION
    assert PixelFusion.from_meta({"threshold": 0.4}) is None
    assert PixelFusion.from_meta({META_KEY: "garbage"}) is None


def test_a_confident_crop_placement_is_not_dragged_down_by_the_head() -> None:
    head, corr, detail = np.array([0.02, 0.02, 0.02, 0.9]), np.array([0.965, 0.965, 0.7, 0.965]), np.full(4, 0.8)
    scale = np.array([0.6, 1.0, 0.6, 0.6])
    plain = FUSION.combine(head, corr, detail)
    assert (FUSION.combine(head, corr, detail, scale) == plain).all()  # off by default
    floored = replace(FUSION, crop_floor=True)
    crop_aware = floored.combine(head, corr, detail, scale)
    neutral = FUSION.combine(np.array([0.5]), corr[:1], detail[:1])[0]
    assert crop_aware[0] == pytest.approx(neutral) and crop_aware[0] > plain[0] + 0.2  # a crop: head counts as 0.5
    assert crop_aware[1] == plain[1]  # a whole-panel placement is scored as fitted
    assert crop_aware[2] == plain[2]  # a weak placement keeps the head's doubt
    assert crop_aware[3] == plain[3]  # a head for the pair is kept
    from embedder.verify import Alignment

    found = [Alignment(0.965, 0.8, scale=0.6), Alignment(0.965, 0.8, scale=1.0), None]
    assert floored.score(head[:3], found)[0] == pytest.approx(crop_aware[0])
    assert floored.score(head[:3], found)[1] == pytest.approx(plain[1])


def test_background_margin_is_the_lead_over_each_panels_other_pairs() -> None:
    a, b = np.array([1, 1, 2, 5]), np.array([2, 3, 3, 6])
    feature = np.array([3.0, 1.0, 1.5, 2.0])
    # (1,2) leads its panels' other pairs (1.0, 1.5) by 1.5; (1,3) trails (1,2) by 2; a lone pair's background is 0
    assert background_margin(a, b, feature, clip=9.0).tolist() == [1.5, -2.0, -1.5, 2.0]
    assert background_margin(a, b, feature, clip=1.0).tolist() == [1.0, -1.0, -1.0, 1.0]
    assert background_margin(np.array([1, 1]), np.array([2, 3]), np.array([2.0, 2.0])).tolist() == [0.0, 0.0]


def test_margins_rank_a_copy_above_a_series_of_look_alikes() -> None:
    # frames 1-4 of one run correlate 0.97 with each other; frame 5 is a copy of frame 1 (0.999)
    a, b = np.array([1, 1, 2, 2, 3, 1]), np.array([2, 3, 3, 4, 4, 5])
    corr = np.array([0.97, 0.97, 0.97, 0.97, 0.97, 0.98])
    head, detail = np.full(6, 0.8), np.array([0.8, 0.8, 0.8, 0.8, 0.8, 0.95])
    normalised = replace(FUSION, w_match_margin=1.0, w_detail_margin=1.0)
    plain = normalised.combine(head, corr, detail)  # no pair ids: margins unused
    assert (plain == FUSION.combine(head, corr, detail)).all()
    scored = normalised.combine(head, corr, detail, pair_ids=(a, b))
    assert scored[5] > plain[5] and (scored[:5] <= plain[:5]).all() and scored[5] > scored[:5].max()
    assert (FUSION.combine(head, corr, detail, pair_ids=(a, b)) == plain).all()  # weights 0: as before


def test_meta_keeps_margin_weights_only_when_used() -> None:
    assert "w_match_margin" not in FUSION.to_meta()
    normalised = replace(FUSION, w_match_margin=0.9, w_detail_margin=0.8)
    assert PixelFusion.from_meta({META_KEY: normalised.to_meta()}) == normalised
