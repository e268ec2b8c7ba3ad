"""The pixel-check benchmark runs, restores the module setting it varies, and compares against a git revision."""
from __future__ import annotations

import subprocess

import pytest

import embedder.verify as verify
from tests.benchmarks import load_benchmark


def test_bench_times_every_variant_and_restores_the_fft_threshold() -> None:
    bench = load_benchmark("bench_pixel_check")
    before = verify.FFT_MIN_BATCHED_PIXELS
    out = bench.time_configs(bench.calibration_panels(3), runs=1)
    times = out["ms_per_pair_median"]
    assert set(times) == {"shipped", "without screen", "without stretch pass", "direct conv only"}
    assert all(t > 0 for t in times.values())
    assert verify.FFT_MIN_BATCHED_PIXELS == before
    rows = bench.time_kernels(repeats=1)
    assert len(rows) == 5 and all(r["conv2d_ms"] > 0 and r["fft_ms"] > 0 for r in rows)


@pytest.mark.slow  # 24 s on the loaded 2-core machine it was written on
def test_bench_against_a_revision_reports_speedup_and_agreement() -> None:
    bench = load_benchmark("bench_pixel_check")
    try:  # the search as it was before the cascade (a shallow clone may not hold it)
        bench.load_revision("11c4050")
    except subprocess.CalledProcessError:
        pytest.skip("revision 11c4050 not in this clone")
    out = bench.time_configs(bench.calibration_panels(2), runs=1, baseline="11c4050")
    assert out["speedup_over_baseline"]["baseline 11c4050"] == 1.0
    # without the screen the batched search gives the old numbers up to float rounding
    assert out["agreement_with_baseline"]["without screen"]["max_abs_correlation"] < 1e-4


def test_bench_features_times_both_ways_and_finds_them_identical() -> None:
    bench = load_benchmark("bench_pixel_check")
    out = bench.time_features(n_pairs=3, runs=1)
    assert out["identical"] is True
    assert out["encoded images"] > 0 and out["stored features"] > 0
