"""The scale benchmark runs end to end at a small size and meets its own targets."""
from __future__ import annotations

import numpy as np

from tests.benchmarks import load_benchmark


def _load():
    return load_benchmark("bench_index")


def test_synthetic_vectors_are_unit_and_planted_copies_are_close() -> None:
    bench = _load()
    x, planted = bench.synthetic_vectors(5000, 32, dup_frac=0.02)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert planted.shape == (100, 2) and (planted[:, 0] < planted[:, 1]).all()
    cos = np.sum(x[planted[:, 0]] * x[planted[:, 1]], axis=1)
    assert cos.min() > 0.85
    assert np.median(x[:200] @ x[200:400].T) < 0.5  # unrelated rows are not near-duplicates


def test_small_run_meets_targets(tmp_path) -> None:
    bench = _load()
    args = bench.parse_args(["--n", "20000", "--dim", "32", "--flat-max", "5000", "--batch", "5000",
                             "--recall-queries", "300", "--out", str(tmp_path), "--threads", "2"])
    result = bench.run(args)
    assert result["index"]["factory"].startswith("IVF")
    assert result["recall_at_10"] >= 0.95
    assert result["planted_found"] >= 0.95
    assert result["peak_rss_gb"] > 0 and result["ok"]
    assert len(list((tmp_path / "store" / "figures").glob("*.parquet"))) == 4
