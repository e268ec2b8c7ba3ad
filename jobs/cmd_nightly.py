"""`reusescan nightly INCOMING --store STORE`: new submissions against everything seen before.

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
from pathlib import Path
from typing import Any

import click

from jobs.cmd_scan import (
    fail,
    format_summary,
    html_summary,
    load_errors,
    pipeline_and_match,
    record_errors,
    run_options,
    settings_from,
    stage_announcer,
)

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


def _record_sources(store_dir: Path, run_id: str, sources: dict[str, Path], shas: dict[str, str]) -> None:
    """Remember where each ingested document came from, to draw its pages in later reports."""
    with open(store_dir / SOURCES_LOG, "a", encoding="utf-8") as fh:
        for doc, path in sources.items():
            if doc in shas:
                fh.write(json.dumps({"doc": doc, "sha256": shas[doc], "path": str(path), "run_id": run_id}) + "\n")


def _load_sources(store_dir: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    path = store_dir / SOURCES_LOG
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                out[entry["doc"]] = Path(entry["path"])
    return out


@click.command()
@click.argument("incoming", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--store", "store_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The store of everything seen before (created on the first night).")
@click.option("--date", "night", default=None, help="Night to file the report under (YYYY-MM-DD). Default: today (UTC).")
@run_options
def nightly(incoming: Path, store_dir: Path, night: str | None, **kwargs: Any) -> None:
    """Ingest the new documents of INCOMING into STORE and report their reuse against everything.

    Writes STORE/reports/<date>/report.csv, report.html and errors.csv. Safe to
    re-run: a second run of the same night adds nothing and reports the same.
    """
    settings = settings_from(kwargs)
    if night is None:
        night = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    try:
        dt.date.fromisoformat(night)
    except ValueError as exc:
        raise click.BadParameter(f"not a date (YYYY-MM-DD): {night!r}", param_hint="--date") from exc

    import pyarrow.compute as pc

    from index.store import FigureStore, StoreError
    from jobs.ray_runtime import ray_session
    from jobs.scan import StageClock, build_report_pairs, ingest, match_store, write_outputs
    from scanner.discover import document_key, find_inputs

    started = time.monotonic()
    root = incoming.resolve()
    store_dir = store_dir.resolve()
    out_dir = store_dir / "reports" / night
    run_id = f"nightly-{night}"
    paths = [p for p in find_inputs(root) if store_dir not in p.resolve().parents]
    rel = {document_key(p, root): p for p in paths}
    pipeline, match = pipeline_and_match(settings)
    clock = StageClock(announce=stage_announcer(settings.progress))
    try:
        with store_lock(store_dir):
            known: set[str] = set()
            if (store_dir / "manifest.json").exists():
                known = set(FigureStore.open(store_dir).read_table(["doc_sha256"]).column("doc_sha256").to_pylist())
            with ray_session(settings.address, progress=settings.progress):
                result = ingest(paths, root, store_dir, run_id=run_id, pipeline=pipeline,
                                seen=lambda doc, sha: sha in known, clock=clock)
            record_errors(store_dir, [(f"{night}/{d}", s, e) for d, s, e in result.errors])
            new_docs = {d: p for d, p in rel.items() if result.input_sha256.get(d) not in known}
            _record_sources(store_dir, run_id, new_docs, result.input_sha256)
            pairs: list[Any] = []
            candidates = 0
            if (store_dir / "manifest.json").exists():
                store = FigureStore.open(store_dir)
                runs = store.read_table(["row_id", "run_id"])
                tonight = runs.filter(pc.equal(runs.column("run_id"), run_id))
                query = tonight.column("row_id").to_numpy()
                if len(query):
                    matched = match_store(store_dir, query_row_ids=query, model_path=settings.model,
                                          options=match, clock=clock)
                    candidates = matched.candidates
                    with clock.timed("report"):
                        pairs = build_report_pairs(store_dir, matched, doc_roots=_load_sources(store_dir))
            errors = [(d.split("/", 1)[1], s, e) for d, s, e in load_errors(store_dir) if d.startswith(f"{night}/")]
            summary = {
                "documents": len(paths), "new_documents": result.documents,
                "skipped_documents": result.skipped_documents, "pages": result.pages, "panels": result.panels,
                "noise": result.noise, "candidates": candidates, "pairs": len(pairs),
                "groups": len({p.group_id for p in pairs}), "errors": len(errors),
                "seconds": {**clock.seconds, "total": time.monotonic() - started},
            }
            write_outputs(out_dir, pairs, errors, title=f"reusescan nightly {night}: {incoming}",
                          summary=html_summary(summary))
    except StoreLocked as exc:
        fail(str(exc))
    except StoreError as exc:
        fail(str(exc))
    click.echo(format_summary(summary), err=True)
    click.echo(f"report: {out_dir / 'report.html'}")
