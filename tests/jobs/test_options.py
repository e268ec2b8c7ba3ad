"""What a run is asked (`RunOptions`, from the shared CLI options) and what it reports (`RunSummary`)."""
from __future__ import annotations

from pathlib import Path

import click
import pytest
import ray
from click.testing import CliRunner

from jobs.cli_options import options_from, run_options
from jobs.match import MatchOptions
from jobs.options import RunOptions, RunSummary, format_summary
from jobs.pipeline import PipelineOptions, resolve_resources

SUMMARY = RunSummary(documents=12, new_documents=10, skipped_documents=2, pages=39, panels=120, noise=12,
                     candidates=601, pairs=6, groups=5, errors=1,
                     seconds={"extract + embed": 29.74, "report": 8.81, "total": 40.0}, report=Path("/o/report.html"))


def test_the_summary_prints_counts_and_stage_times() -> None:
    assert format_summary(SUMMARY) == (
        "documents 12 (new 10, already stored 2); extracted now: pages 39, panels 120 (noise 12); "
        "candidates 601, pairs 6 in 5 group(s), errors 1\n"
        "time: extract + embed 29.7s, report 8.8s, total 40.0s")


def test_the_html_summary_has_counts_and_timings_without_the_total() -> None:
    assert SUMMARY.html_summary() == {
        "documents": 12, "new_documents": 10, "skipped_documents": 2, "pages": 39, "panels": 120, "noise": 12,
        "candidates": 601, "pairs": 6, "groups": 5, "errors": 1,
        "timings": {"extract + embed": 29.74, "report": 8.81}}


def _parse(args: list[str]) -> RunOptions:
    got: list[RunOptions] = []

    @click.command()
    @run_options
    def cmd(**kwargs: object) -> None:
        got.append(options_from(kwargs))

    result = CliRunner().invoke(cmd, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return got[0]


def test_cli_defaults_are_the_library_defaults() -> None:
    assert _parse([]) == RunOptions()
    assert RunOptions().match == MatchOptions() and RunOptions().pipeline == PipelineOptions()


def test_every_shared_option_reaches_its_place() -> None:
    model = Path(__file__)  # any existing file passes the option's check
    options = _parse(["--model", str(model), "--address", "auto", "--batch-size", "8", "--actors", "3",
                      "--threshold", "0.7", "--k", "5", "--min-sim", "0.5", "--include-noise", "--no-pixel-check",
                      "--max-pages", "9", "--no-progress"])
    assert options == RunOptions(
        pipeline=PipelineOptions(model_path=str(model), embed_batch_size=8, embed_actors=3, max_pages=9),
        match=MatchOptions(k=5, min_sim=0.5, threshold=0.7, include_noise=True, pixel_check=False),
        address="auto", progress=False)
    assert options.model_path == str(model)


def test_resources_half_slots_on_cpus_and_a_gpu_per_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    cpu = resolve_resources(PipelineOptions())
    assert (cpu.embed_actors, cpu.cpus_per_actor, cpu.cpus_per_extract, cpu.gpus_per_actor) == (1, 0.5, 0.5, 0.0)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0, "GPU": 2.0})
    gpu = resolve_resources(PipelineOptions(embed_actors=4))
    assert (gpu.embed_actors, gpu.cpus_per_actor, gpu.gpus_per_actor) == (2, 1.0, 1.0)
