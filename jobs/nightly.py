"""A nightly run: new submissions against everything seen before (`run_nightly`).

Only documents whose content hash the store has never seen are ingested (a
re-submitted file under a new name is not new). Every pair with at least one
document of tonight's run is reported into `STORE/reports/<date>/`. Re-running
the same night ingests nothing and writes the same report, because the report
is computed from the rows of tonight's run id, not from what this process added.
A lock file keeps two runs from writing the store at once.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from index.store import FigureStore
from jobs.clock import StageClock, stage_announcer
from jobs.ingest import has_store, ingest, load_errors, record_errors
from jobs.match import match_store
from jobs.options import RunOptions, RunSummary
from jobs.ray_runtime import ray_session
from jobs.report import ReportPair
from jobs.report_rows import build_report_pairs, write_outputs
from jobs.verdicts import DISMISSED
from scanner.discover import document_key, find_inputs

LOCK_FILE = ".lock"
SOURCES_LOG = "sources.jsonl"


class StoreLocked(Exception):
    """Another run holds the store's lock."""


@contextlib.contextmanager
def store_lock(store_dir: Path) -> Iterator[None]:
    """Exclusive, non-blocking lock on `STORE/.lock` for the duration of a run.

    An advisory `flock`: released by the kernel when the process dies, so a
    crashed run never leaves a stale lock behind.
    """
    store_dir.mkdir(parents=True, exist_ok=True)
    fh = open(store_dir / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise StoreLocked(f"another run is writing {store_dir} (lock {store_dir / LOCK_FILE} is held)") from exc
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        fh.flush()
        yield
    finally:
        fh.close()


def record_sources(store_dir: Path, run_id: str, sources: dict[str, Path], shas: dict[str, str]) -> None:
    """Remember where each ingested document came from, to draw its pages in later reports."""
    with open(store_dir / SOURCES_LOG, "a", encoding="utf-8") as fh:
        for doc, path in sources.items():
            if doc in shas:
                fh.write(json.dumps({"doc": doc, "sha256": shas[doc], "path": str(path), "run_id": run_id}) + "\n")


def load_sources(store_dir: Path) -> dict[str, Path]:
    """doc -> the file it was last ingested from (unreadable lines are skipped)."""
    out: dict[str, Path] = {}
    path = store_dir / SOURCES_LOG
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                out[entry["doc"]] = Path(entry["path"])
    return out


def stored_documents_by_run(store_dir: Path, run_id: str) -> tuple[set[str], set[str]]:
    """Content hashes of every stored document, and of those stored by `run_id` (a killed run of tonight)."""
    if not has_store(store_dir):
        return set(), set()
    table = FigureStore.open(store_dir).read_table(["doc_sha256", "run_id"])
    tonight = table.filter(pc.equal(table.column("run_id"), run_id)).column("doc_sha256").to_pylist()
    return set(table.column("doc_sha256").to_pylist()), set(tonight)


def _rows_of_run(store_dir: Path, run_id: str) -> np.ndarray:
    """Store row ids ingested by `run_id` (none when there is no store yet)."""
    if not has_store(store_dir):
        return np.zeros(0, np.int64)
    runs = FigureStore.open(store_dir).read_table(["row_id", "run_id"])
    return runs.filter(pc.equal(runs.column("run_id"), run_id)).column("row_id").to_numpy()


def run_nightly(incoming: Path, store_dir: Path, night: str, options: RunOptions) -> RunSummary:
    """Ingest the new documents of `incoming` into `store_dir` and report their reuse against everything.

    `night` (YYYY-MM-DD, else ValueError) names tonight's run and its report folder
    `store_dir/reports/<night>/`. Raises `StoreLocked` when another run holds the
    store, `index.store.StoreError` when the store cannot be used.
    """
    dt.date.fromisoformat(night)
    clock = StageClock(announce=stage_announcer(options.progress))
    root = incoming.resolve()
    store_dir = store_dir.resolve()
    out_dir = store_dir / "reports" / night
    run_id = f"nightly-{night}"
    paths = [p for p in find_inputs(root) if store_dir not in p.resolve().parents]
    rel = {document_key(p, root): p for p in paths}
    with store_lock(store_dir):
        known, tonight = stored_documents_by_run(store_dir, run_id)
        pairs: list[ReportPair] = []
        candidates = 0
        # Ray stops in the background once the report's pairs are built: writing the outputs needs none of it
        with ray_session(options.address, progress=options.progress, stop_in_background=True):
            result = ingest(paths, root, store_dir, run_id=run_id, pipeline=options.pipeline,
                            seen=lambda doc, sha: sha in known, clock=clock)
            record_errors(store_dir, [(f"{night}/{d}", s, e) for d, s, e in result.errors])
            # tonight's documents, those a killed run of tonight already stored included: their sources are recorded
            new_docs = {d: p for d, p in rel.items() if result.input_sha256.get(d) not in known - tonight}
            record_sources(store_dir, run_id, new_docs, result.input_sha256)
            query = _rows_of_run(store_dir, run_id)
            if len(query):  # inside the Ray session: the pixel check runs as Ray tasks on the cluster
                matched = match_store(store_dir, query_row_ids=query, model_path=options.model_path,
                                      options=options.match, clock=clock, progress=options.progress)
                candidates = matched.candidates
                with clock.timed("report"):  # inside it too: a Ray task draws the cards' pages (jobs.report_rows)
                    pairs = build_report_pairs(store_dir, matched, doc_roots=load_sources(store_dir),
                                               cards=options.cards)
        errors = [(d.split("/", 1)[1], s, e) for d, s, e in load_errors(store_dir) if d.startswith(f"{night}/")]
        summary = RunSummary(
            documents=len(paths), new_documents=result.documents, skipped_documents=result.skipped_documents,
            pages=result.pages, panels=result.panels, noise=result.noise, candidates=candidates, pairs=sum(p.verdict != DISMISSED for p in pairs),
            groups=len({p.group_id for p in pairs}), errors=len(errors),
            seconds=clock.with_total(), report=out_dir / "report.html",
        )
        with clock.timed("report"):
            write_outputs(out_dir, pairs, errors, title=f"reusescan nightly {night}: {incoming}",
                          summary=summary.html_summary(), cards=options.cards)
    # report.html cannot count its own writing; the times returned (and printed) do
    return replace(summary, seconds=clock.with_total())
