"""`reusescan scan` and `reusescan nightly` killed with SIGKILL at each stage, then run again.

Each run of a chain is killed at a later stage than the one before (mid-ingest, while the
store is written, in the pixel check, while the report is written); the last run finishes.
It must write the report an uninterrupted run writes, store every panel once, and not
extract again the documents a killed run had already finished (they wait in the staging
area). The runs are subprocesses in their own process group and Ray temp dir, so a kill
takes the driver and its local Ray down together, as a crash would.
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
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from embedder.inference import DEFAULT_CHECKPOINT
from index.store import FigureStore
from jobs.nightly import load_sources
from jobs.scoring import model_id_of
from jobs.staging import StagingArea
from tests.jobs.raycluster import kill_processes_naming
from tests.jobs.test_scan_nightly import read_csv, scan_args
from tests.scanner.pdf_factory import simple_pdf, texture

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DOCS = 12
NIGHT = "2026-11-20"
# where the later runs of a chain are killed: as soon as the run logs the line (`-v`)
LATER_STAGES = {"store writes": r"jobs\.clock: stage store$", "pixel check": r"jobs\.clock: stage pixel check$",
                "report": r"jobs\.report: wrote \d+ pairs to .*report\.csv$"}


def make_corpus(root: Path) -> None:
    """DOCS papers of two panels each; paper k's first panel is reused in paper k+1 (rotated)."""
    root.mkdir(parents=True)
    for k in range(DOCS):
        own = texture(150, 200, 100 + k)
        prev = np.rot90(texture(150, 200, 100 + k - 1)).copy() if k else texture(160, 180, 999)
        simple_pdf(root / f"paper{k:02d}.pdf", [own, prev])


@pytest.fixture(scope="module")
def checked_model(tiny_model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with the shipped model's fusion, so that scans run the pixel check."""
    out = tmp_path_factory.mktemp("fused") / "tiny-fused.pt"
    subprocess.run([sys.executable, "-m", "jobs", "calibrate", "--model", str(tiny_model_file), "--out", str(out),
                    "--fusion-from", str(DEFAULT_CHECKPOINT)], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                   capture_output=True)
    return out


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="rsk-", dir="/tmp"))  # short: Ray's socket paths
    try:
        yield path
    finally:
        kill_processes_naming(path, None)
        subprocess.run(["rm", "-rf", str(path)], check=False)


def start(args: list[str], ray_tmp: Path) -> subprocess.Popen[str]:
    """`python -m jobs -v ARGS` in its own session and Ray temp dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(PYTHONPATH=str(REPO), RAY_TMPDIR=str(ray_tmp))
    return subprocess.Popen([sys.executable, "-m", "jobs", "-v", *args], env=env, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(args: list[str], ray_tmp: Path) -> str:
    """Run to the end; its output."""
    proc = start(args, ray_tmp)
    try:
        out, _ = proc.communicate(timeout=900)
    finally:
        kill_processes_naming(ray_tmp, proc.pid)
    assert proc.returncode == 0, out[-4000:]
    return out


def kill(proc: subprocess.Popen[str], ray_tmp: Path) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        kill_processes_naming(ray_tmp, proc.pid)


def killed_at_line(args: list[str], ray_tmp: Path, pattern: str) -> str:
    """Start a run and SIGKILL it as soon as it logs a line matching `pattern`; its output up to then."""
    proc = start(args, ray_tmp)
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if re.search(pattern, line.rstrip("\n")):
                break
        else:
            raise AssertionError(f"the run ended before logging {pattern!r}:\n" + "".join(seen)[-3000:])
    finally:
        kill(proc, ray_tmp)
    return "".join(seen)


def killed_mid_ingest(args: list[str], ray_tmp: Path, staging: Path, model: Path) -> None:
    """Start a run and SIGKILL it once some documents are staged, before the store is written."""
    proc = start(args, ray_tmp)
    try:
        deadline = time.monotonic() + 600
        while not (staging.exists() and StagingArea(staging).finished_documents(model_id_of(str(model)))):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        kill(proc, ray_tmp)


def assert_store_like(store: Path, reference: Path) -> None:
    """Every panel of the reference store stored once, none more."""
    ids = [FigureStore.open(s).read_table(["figure_id"]).column("figure_id").to_pylist() for s in (store, reference)]
    assert Counter(ids[0]) == Counter(ids[1])
    assert len(set(ids[0])) == len(ids[0])  # nothing stored twice


def test_a_scan_killed_at_every_stage_resumes_to_the_same_report(checked_model: Path, ray_tmp: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    # small embedding batches: documents reach the staging area one by one, most are still to do at the kill
    args = scan_args(corpus, tmp_path / "out", checked_model) + ["--batch-size", "2"]
    ref_out = finish(scan_args(corpus, tmp_path / "ref", checked_model) + ["--batch-size", "2"], ray_tmp)
    assert "jobs.clock: stage pixel check" in ref_out  # the chain below does kill a pixel check

    killed_mid_ingest(args, ray_tmp, tmp_path / "out" / "store" / "staging", checked_model)
    assert not (tmp_path / "out" / "store" / "manifest.json").exists(), "killed too late: the store was written"
    resumed = killed_at_line(args, ray_tmp, LATER_STAGES["store writes"])
    staged, todo = map(int, re.search(r"(\d+) staged by an interrupted run, (\d+) to ingest", resumed).groups())  # type: ignore[union-attr]
    assert staged >= 1 and staged + todo == DOCS, resumed[-3000:]  # the finished ones are not extracted again
    for stage in ("pixel check", "report"):
        killed_at_line(args, ray_tmp, LATER_STAGES[stage])
    finish(args, ray_tmp)

    assert read_csv(tmp_path / "out" / "report.csv") == read_csv(tmp_path / "ref" / "report.csv")
    assert len(read_csv(tmp_path / "ref" / "report.csv")) >= DOCS - 1  # the planted chain is reported
    assert_store_like(tmp_path / "out" / "store", tmp_path / "ref" / "store")
    assert not (tmp_path / "out" / "store" / "staging").exists()


def test_a_nightly_killed_at_every_stage_resumes_to_the_same_report(checked_model: Path, ray_tmp: Path,
                                                                    tmp_path: Path) -> None:
    corpus = tmp_path / "incoming"
    make_corpus(corpus)

    def nightly(store: Path) -> list[str]:
        return ["nightly", str(corpus), "--store", str(store), "--date", NIGHT, "--model", str(checked_model),
                "--threshold", "0", "--min-sim", "0.999", "--no-progress", "--batch-size", "2"]

    finish(nightly(tmp_path / "ref"), ray_tmp)
    for stage in ("store writes", "pixel check", "report"):
        killed_at_line(nightly(tmp_path / "store"), ray_tmp, LATER_STAGES[stage])
    finish(nightly(tmp_path / "store"), ray_tmp)

    got, want = (read_csv(tmp_path / s / "reports" / NIGHT / "report.csv") for s in ("store", "ref"))
    assert got == want and len(want) >= DOCS - 1
    assert_store_like(tmp_path / "store", tmp_path / "ref")
    # the killed runs' documents keep where they came from: later reports draw their pages
    assert load_sources(tmp_path / "store") == load_sources(tmp_path / "ref")
