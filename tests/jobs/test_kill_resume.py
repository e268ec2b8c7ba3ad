"""`reusescan scan` killed with SIGKILL in the middle of its ingest, then run again.

The rerun must write the report an uninterrupted scan writes, store every panel once,
and not extract again the documents the killed run had already finished (they wait in
the staging area). The scans run as subprocesses in their own process group and Ray
temp dir, so the kill takes the driver and its local Ray down together, as a crash would.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from index.store import FigureStore
from jobs.scoring import model_id_of
from jobs.staging import StagingArea
from tests.jobs.raycluster import kill_processes_naming
from tests.jobs.test_scan_nightly import read_csv, scan_args
from tests.scanner.pdf_factory import simple_pdf, texture

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DOCS = 12


def make_corpus(root: Path) -> None:
    """DOCS papers of two panels each; paper k's first panel is reused in paper k+1 (rotated)."""
    root.mkdir(parents=True)
    for k in range(DOCS):
        own = texture(150, 200, 100 + k)
        prev = np.rot90(texture(150, 200, 100 + k - 1)).copy() if k else texture(160, 180, 999)
        simple_pdf(root / f"paper{k:02d}.pdf", [own, prev])


def start_scan(args: list[str], ray_tmp: Path) -> subprocess.Popen[str]:
    """`python -m jobs -v ARGS` in its own session and Ray temp dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(PYTHONPATH=str(REPO), RAY_TMPDIR=str(ray_tmp))
    return subprocess.Popen([sys.executable, "-m", "jobs", "-v", *args], env=env, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen[str], ray_tmp: Path) -> str:
    try:
        out, _ = proc.communicate(timeout=900)
    finally:
        kill_processes_naming(ray_tmp, proc.pid)
    assert proc.returncode == 0, out[-4000:]
    return out


def test_a_killed_scan_resumes_to_the_same_report(tiny_model_file: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    ray_tmp = Path(tempfile.mkdtemp(prefix="rsk-", dir="/tmp"))  # short: Ray's socket paths
    try:
        finish(start_scan(scan_args(corpus, tmp_path / "ref", tiny_model_file) + ["--batch-size", "2"], ray_tmp), ray_tmp)
        # small embedding batches: documents reach the staging area one by one, most are still to do at the kill
        args = scan_args(corpus, tmp_path / "out", tiny_model_file) + ["--batch-size", "2"]
        model = model_id_of(str(tiny_model_file))
        staging = tmp_path / "out" / "store" / "staging"
        proc = start_scan(args, ray_tmp)
        try:
            deadline = time.monotonic() + 600
            while not (staging.exists() and StagingArea(staging).finished_documents(model)):  # some are staged
                assert proc.poll() is None, "the scan ended before it could be killed"
                assert time.monotonic() < deadline
                time.sleep(0.1)
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
            kill_processes_naming(ray_tmp, proc.pid)
        assert not (tmp_path / "out" / "store" / "manifest.json").exists(), "killed too late: the store was written"
        out = finish(start_scan(args, ray_tmp), ray_tmp)
    finally:
        kill_processes_naming(ray_tmp, None)
        subprocess.run(["rm", "-rf", str(ray_tmp)], check=False)

    staged, todo = map(int, re.search(r"(\d+) staged by an interrupted run, (\d+) to ingest", out).groups())  # type: ignore[union-attr]
    assert staged >= 1 and staged + todo == DOCS, out[-3000:]  # the finished ones are not extracted again
    assert read_csv(tmp_path / "out" / "report.csv") == read_csv(tmp_path / "ref" / "report.csv")
    assert len(read_csv(tmp_path / "ref" / "report.csv")) >= DOCS - 1  # the planted chain is reported
    stores = [FigureStore.open(tmp_path / d / "store").read_table(["doc", "figure_id"]) for d in ("out", "ref")]
    assert Counter(stores[0].column("figure_id").to_pylist()) == Counter(stores[1].column("figure_id").to_pylist())
    assert len(set(stores[0].column("figure_id").to_pylist())) == stores[0].num_rows  # nothing stored twice
    assert not (tmp_path / "out" / "store" / "staging").exists()
