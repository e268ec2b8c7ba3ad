"""The pixel check's Ray tasks: a failed task is redone in the driver."""
from __future__ import annotations

import logging
import os

import pytest
import ray

from jobs.pixel_check import PIXEL_CHECK_TASK_PAIRS, _align_in_tasks


def _fails_in_workers(xs: list[bytes], ys: list[bytes], driver_pid: int) -> list[int]:
    """Stands in for `align_many`: dies in any Ray worker, works in the driver."""
    if os.getpid() != driver_pid:
        raise RuntimeError("worker lost")
    return [len(x) + len(y) for x, y in zip(xs, ys)]


def test_without_ray_the_pairs_are_checked_in_this_process() -> None:
    if ray.is_initialized():
        pytest.skip("Ray is up in this process")
    n = PIXEL_CHECK_TASK_PAIRS * 2 + 5
    assert _align_in_tasks(_fails_in_workers, [b"x" * i for i in range(n)], [b"y"] * n, os.getpid()) == [
        i + 1 for i in range(n)]


@pytest.mark.ray
def test_a_failed_pixel_check_task_is_redone_in_the_driver(caplog: pytest.LogCaptureFixture) -> None:
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        n = PIXEL_CHECK_TASK_PAIRS * 2 + 5  # three tasks
        xs, ys = [b"x" * i for i in range(n)], [b"y"] * n
        with caplog.at_level(logging.WARNING, logger="jobs.pixel_check"):
            out = _align_in_tasks(_fails_in_workers, xs, ys, os.getpid())
    finally:
        if started:
            ray.shutdown()
    assert out == [i + 1 for i in range(n)]  # every pair, in order
    assert caplog.text.count("pixel check task failed") == 3
