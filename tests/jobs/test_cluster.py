"""`scan` and `nightly` on a real two-node Ray cluster (`ray start --head` + `ray start --address`).

The driver runs as a subprocess from an unrelated working directory, the nodes are
started without this checkout on their PYTHONPATH: the code reaches the workers only
through the runtime env the driver ships (`jobs.ray_runtime.code_runtime_env`). Checks
that work ran on both nodes (the task and actor names Ray writes into each node's worker
logs) and that the cluster's reports equal a local run's.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jobs import raycluster
from tests.jobs.test_scan_nightly import make_corpus, read_csv, scan_args

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# what Ray writes into a worker's log when it starts a task or actor (log attribution)
EXTRACT_MARK, EMBED_MARK = ":task_name:MapBatches(extract_paths)", ":actor_name:MapWorker(MapBatches(EmbedPanels))"


@pytest.fixture(scope="module")
def cluster() -> Iterator[raycluster.LocalCluster]:
    c = raycluster.start()
    try:
        yield c
    finally:
        c.stop()


def reusescan(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run `python -m jobs ARGS` from `cwd` with this checkout importable; stdout + stderr (fails on exit != 0)."""
    proc = subprocess.run([sys.executable, "-m", "jobs", *args], cwd=cwd, capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(REPO)}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def worker_marks(node: Path) -> str:
    """Everything the node's worker processes logged (their task and actor names among it)."""
    return "".join(p.read_text(errors="replace") for p in node.glob("session_*/logs/worker-*.out"))


def contract_rows(path: Path) -> list[tuple[str, ...]]:
    keys = ["score", "doc_a", "page_a", "bbox_a", "doc_b", "page_b", "bbox_b", "kind", "transform", "head_score"]
    return [tuple(r[k] for k in keys) for r in read_csv(path)]


def test_scan_and_nightly_on_a_two_node_cluster(cluster: raycluster.LocalCluster, tiny_model_file: Path,
                                                 tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    elsewhere = tmp_path / "elsewhere"  # the driver's cwd: nothing of the project there
    elsewhere.mkdir()
    local_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}

    reusescan(scan_args(corpus, tmp_path / "local", tiny_model_file), elsewhere, local_env)
    out = reusescan(scan_args(corpus, tmp_path / "cluster", tiny_model_file) + ["--address", cluster.address],
                    elsewhere, cluster.env)
    assert "pairs 2" in out, out
    assert (tmp_path / "cluster" / "report.csv").read_bytes() == (tmp_path / "local" / "report.csv").read_bytes()

    store = tmp_path / "store"
    reusescan(["nightly", str(corpus), "--store", str(store), "--date", "2026-11-26", "--address", cluster.address,
               *scan_args(corpus, tmp_path, tiny_model_file)[4:]], elsewhere, cluster.env)
    nightly = store / "reports" / "2026-11-26" / "report.csv"
    assert contract_rows(nightly) == contract_rows(tmp_path / "local" / "report.csv")

    head, second = worker_marks(cluster.node_dir("head")), worker_marks(cluster.node_dir("second"))
    for name, log in (("head", head), ("second", second)):
        assert EXTRACT_MARK in log or EMBED_MARK in log, f"no reusescan work ran on the {name} node"
    assert EMBED_MARK in head + second and EXTRACT_MARK in head + second
    # the workers imported the driver's code, shipped as py_modules (not the nodes' installation)
    for node in ("head", "second"):
        shipped = list(cluster.node_dir(node).glob("session_*/runtime_resources/py_modules_files/*/jobs/ray_runtime.py"))
        assert shipped and shipped[0].read_bytes() == (REPO / "jobs" / "ray_runtime.py").read_bytes()
