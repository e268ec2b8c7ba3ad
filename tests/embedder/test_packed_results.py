"""Per-pair results as rows of structured arrays (`embedder.verify.ALIGNMENT_DTYPE`, `embedder.pose.POSE_DTYPE`):
what a scan's driver holds for every candidate pair instead of an object each."""
from __future__ import annotations

import numpy as np

from embedder.d4 import D4_NAMES
from embedder.fusion import PixelFusion
from embedder.pose import Pose, PoseRule, pack_poses, unpack_poses
from embedder.verify import AlignConfig, Alignment, no_alignments, pack_alignments, unpack_alignments


def _alignments(rng: np.random.Generator, n: int) -> list[Alignment]:
    return [Alignment(float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)), D4_NAMES[i % len(D4_NAMES)],
                      float(rng.uniform(-180, 180)), float(rng.uniform(0.1, 1)), bool(i % 3)) for i in range(n)]


def test_alignments_come_back_exactly_in_every_view() -> None:
    found = _alignments(np.random.default_rng(0), 40)
    assert {a.transform for a in found} == set(D4_NAMES) and not all(a.b_inside_a for a in found)
    assert unpack_alignments(pack_alignments(found)) == found
    assert unpack_alignments(no_alignments(3)) == [Alignment(0.0)] * 3
    assert pack_alignments([]).shape == (0,)


def test_poses_come_back_exactly_and_the_rule_reads_the_rows_as_it_reads_poses() -> None:
    rng = np.random.default_rng(1)
    poses = [Pose(int(rng.integers(0, 40)), int(rng.integers(0, 90)), float(rng.uniform(0.2, 3)),
                  float(rng.uniform(-180, 180)), bool(rng.integers(2)), float(rng.uniform(0.1, 1)),
                  float(rng.uniform(0.1, 1)), float(rng.uniform(0.85, 1)), float(rng.uniform(0.8, 1)),
                  tuple(float(v) for v in rng.uniform(0, 1, 4)), tuple(float(v) for v in rng.uniform(0, 1, 4)))
             for _ in range(200)]
    rows = pack_poses(poses)
    assert unpack_poses(rows) == poses
    rule = PoseRule()
    accepted = [rule.accepts(p) for p in poses]
    assert 0 < sum(accepted) < len(poses)  # both outcomes occur
    assert rule.accepts_rows(rows).tolist() == accepted


def test_the_fusion_scores_rows_as_it_scores_alignments_with_none_for_pairs_not_checked() -> None:
    rng = np.random.default_rng(2)
    found = _alignments(rng, 30)
    head = rng.uniform(0, 1, 30)
    fusion = PixelFusion(2.0, 3.0, 1.5, -2.0, AlignConfig(), w_match_margin=0.5, crop_floor=True)
    checked = np.arange(30) % 4 != 0
    rows = no_alignments(30)
    rows[checked] = pack_alignments([a for a, c in zip(found, checked) if c])
    as_objects = [a if c else None for a, c in zip(found, checked)]
    pair_ids = (np.arange(30) % 7, 10 + np.arange(30) % 5)
    assert np.array_equal(fusion.score(head, rows, pair_ids), fusion.score(head, as_objects, pair_ids))
