"""How the report words the pixel check's placement, and which threshold a scoring mode uses."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from embedder.verify import Alignment
from jobs.scan import DEFAULT_THRESHOLD, describe_placement, model_threshold


def test_placement_names_the_crop_and_the_turn() -> None:
    assert describe_placement(Alignment(0.99)) == "whole panel"
    assert describe_placement(Alignment(0.99, scale=0.72, b_inside_a=True)) == "b shows part of a (72% of its width)"
    assert describe_placement(Alignment(0.99, scale=0.6, b_inside_a=False)).startswith("a shows part of b (60%")
    # angle turns b onto a: a negative angle means b was turned counter-clockwise
    assert describe_placement(Alignment(0.99, angle=-9.0)) == "b turned a further 9° counter-clockwise"
    assert describe_placement(Alignment(0.99, angle=6.0, scale=0.85)).endswith("b turned a further 6° clockwise")


def test_each_scoring_mode_has_its_own_calibrated_threshold() -> None:
    calibrated = SimpleNamespace(meta={"threshold": 0.89, "pixel_check": {"threshold": 0.81}})
    assert model_threshold(calibrated) == 0.89
    assert model_threshold(calibrated, fused=True) == 0.81
    bare = SimpleNamespace(meta={"pixel_check": {"w_head": 1.0}})
    assert model_threshold(bare) == model_threshold(bare, fused=True) == DEFAULT_THRESHOLD
    assert model_threshold(SimpleNamespace(meta={"threshold": 7})) == DEFAULT_THRESHOLD  # out of range: ignored


def _fails_in_workers(xs: list[bytes], ys: list[bytes], driver_pid: int) -> list[int]:
    """Stands in for `align_many`: dies in any Ray worker, works in the driver."""
    import os

    if os.getpid() != driver_pid:
        raise RuntimeError("worker lost")
    return [len(x) + len(y) for x, y in zip(xs, ys)]


@pytest.mark.ray
def test_a_failed_pixel_check_task_is_redone_in_the_driver(caplog: pytest.LogCaptureFixture) -> None:
    import os

    import ray

    from jobs.scan import PIXEL_CHECK_TASK_PAIRS, _align_in_tasks

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        n = PIXEL_CHECK_TASK_PAIRS * 2 + 5  # three tasks
        xs, ys = [b"x" * i for i in range(n)], [b"y"] * n
        with caplog.at_level(logging.WARNING, logger="jobs.scan"):
            out = _align_in_tasks(_fails_in_workers, xs, ys, os.getpid())
    finally:
        if started:
            ray.shutdown()
    assert out == [i + 1 for i in range(n)]  # every pair, in order
    assert caplog.text.count("pixel check task failed") == 3
