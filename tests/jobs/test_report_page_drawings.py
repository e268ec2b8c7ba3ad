"""The report's page drawings: drawn by a Ray task while the driver reads the panels, else by the driver;
and a Ray session stopped in the background."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import ray
from PIL import Image

from jobs import ray_runtime, report_rows
from jobs.ray_runtime import ray_session
from tests.jobs.report_samples import make_pdf

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture()
def needed(tmp_path: Path) -> dict[str, tuple[Path, list[int]]]:
    path = tmp_path / "paper.pdf"
    make_pdf(path, [(1, (0.0, 0.0, 297.5, 421.0), Image.new("RGB", (50, 50), (255, 0, 0))),
                    (2, (297.5, 421.0, 595.0, 842.0), Image.new("RGB", (50, 50), (0, 0, 255)))])
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 nothing else")
    return {"paper.pdf": (path, [1, 2]), "broken.pdf": (tmp_path / "broken.pdf", [1])}


def _not_here(needed: object) -> tuple[dict, dict]:
    raise AssertionError("the driver drew the pages")


def test_with_ray_up_a_task_draws_the_pages_and_the_driver_says_what_failed(needed, monkeypatch, caplog) -> None:
    here, failed = report_rows._draw_pages(needed)
    assert sorted(here) == [("paper.pdf", 1), ("paper.pdf", 2)] and list(failed) == ["broken.pdf"]
    monkeypatch.setattr(report_rows, "_draw_pages", _not_here)  # the driver's; the task has its own
    with ray_session(num_cpus=2, progress=False), caplog.at_level(logging.WARNING, logger="jobs.report_rows"):
        drawn = report_rows._pages_drawn_aside(needed)()
    assert drawn == here
    assert "could not draw pages of broken.pdf" in caplog.text


def test_a_failed_drawing_task_is_drawn_by_the_driver(needed, monkeypatch, caplog) -> None:
    @ray.remote(max_retries=0)
    def broken(needed: object) -> dict:
        raise RuntimeError("worker lost")

    monkeypatch.setattr(report_rows, "_draw_pages_task", broken)
    with ray_session(num_cpus=2, progress=False), caplog.at_level(logging.WARNING, logger="jobs.report_rows"):
        drawn = report_rows._pages_drawn_aside(needed)()
    assert sorted(drawn) == [("paper.pdf", 1), ("paper.pdf", 2)]
    assert "drawing them here" in caplog.text and "could not draw pages of broken.pdf" in caplog.text


def test_without_ray_the_driver_draws_them(needed) -> None:
    if ray.is_initialized():
        pytest.skip("Ray is up in this process")
    assert report_rows._pages_drawn_aside(needed)() == report_rows._draw_pages(needed)[0]


def test_a_session_stopped_in_the_background_is_waited_for_by_the_next() -> None:
    if ray.is_initialized():
        pytest.skip("Ray is up in this process")
    with ray_session(num_cpus=1, progress=False, stop_in_background=True):
        assert ray.get(ray.put(7)) == 7
    stopping = ray_runtime._stopping
    assert stopping is not None  # the block was left with Ray still stopping
    with ray_session(num_cpus=1, progress=False):  # starts once the first has stopped
        assert not stopping.is_alive() and ray_runtime._stopping is None
        assert ray.get(ray.put(8)) == 8
    assert not ray.is_initialized()
