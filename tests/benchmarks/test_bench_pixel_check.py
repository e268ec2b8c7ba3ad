"""The pixel-check benchmark runs and restores the module setting it varies."""
from __future__ import annotations

import embedder.verify as verify
from tests.benchmarks import load_benchmark


def test_bench_times_every_variant_and_restores_the_fft_threshold() -> None:
    bench = load_benchmark("bench_pixel_check")
    before = verify.FFT_MIN_PIXELS
    times = bench.time_configs(n_pairs=3, runs=1)
    assert set(times) == {"shipped", "without stretch pass", "direct conv only"}
    assert all(t > 0 for t in times.values())
    assert verify.FFT_MIN_PIXELS == before
    rows = bench.time_kernels(repeats=1)
    assert len(rows) == 5 and all(r["conv2d_ms"] > 0 and r["fft_ms"] > 0 for r in rows)


def test_bench_features_times_both_ways_and_finds_them_identical() -> None:
    bench = load_benchmark("bench_pixel_check")
    out = bench.time_features(n_pairs=3, runs=1)
    assert out["identical"] is True
    assert out["encoded images"] > 0 and out["stored features"] > 0
