"""How the report words the pixel check's placement (`jobs.report_rows.describe_placement`)."""
from __future__ import annotations

from embedder.verify import Alignment
from jobs.report_rows import describe_placement


def test_placement_names_the_crop_and_the_turn() -> None:
    assert describe_placement(Alignment(0.99)) == "whole panel"
    assert describe_placement(Alignment(0.99, scale=0.72, b_inside_a=True)) == "b shows part of a (72% of its width)"
    assert describe_placement(Alignment(0.99, scale=0.6, b_inside_a=False)) == "a shows part of b (60% of its width)"
    # angle turns b onto a: a negative angle means b was turned counter-clockwise
    assert describe_placement(Alignment(0.99, angle=-9.0)) == "b turned a further 9° counter-clockwise"
    assert describe_placement(Alignment(0.99, angle=6.0, scale=0.85, b_inside_a=True)) == (
        "b shows part of a (85% of its width), b turned a further 6° clockwise")
