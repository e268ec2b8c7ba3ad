"""`reusescan scan PATH --out DIR`: the whole pipeline on one folder of papers.

Re-running into the same DIR resumes: documents already in `DIR/store`
(same relative path and content hash) are not extracted or embedded again.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """The options shared by `scan` and `nightly`."""

    model: str | None
    address: str | None
    batch_size: int
    actors: int | None
    threshold: float | None
    k: int
    min_sim: float
    include_noise: bool
    pixel_check: bool
    max_pages: int
    progress: bool


def run_options(func: Any) -> Any:
    """The click options common to `scan` and `nightly`."""
    from jobs.scan import MatchOptions

    defaults = MatchOptions()
    options = [
        click.option("--model", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Model checkpoint (.pt). Default: the model shipped with reusescan."),
        click.option("--address", default=None,
                     help="Ray cluster to join ('auto' or 'ray://HOST:10001'). Default: start a local Ray."),
        click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True,
                     help="Panels per embedding batch."),
        click.option("--actors", type=click.IntRange(1, 1024), default=None,
                     help="Embedding actors. Default: one per GPU when GPUs are present, else one per two CPUs "
                          "(at least one CPU stays free for extraction)."),
        click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
                     help="Score at which a pair is reported. Default: the threshold calibrated for the model "
                          "and scoring mode (0.5 when it has none)."),
        click.option("--k", "k", type=click.IntRange(1, 1000), default=defaults.k, show_default=True,
                     help="Nearest neighbours per panel."),
        click.option("--min-sim", type=click.FloatRange(-1.0, 1.0), default=defaults.min_sim, show_default=True,
                     help="Cosine floor for a candidate pair."),
        click.option("--include-noise", is_flag=True, help="Also match tiny, uniform and boilerplate images."),
        click.option("--pixel-check/--no-pixel-check", default=defaults.pixel_check, show_default=True,
                     help="Refine the head score by placing one panel on the other (turn, crop, rescale) and "
                          "correlating pixels; needs a calibrated model (the shipped one is)."),
        click.option("--max-pages", type=click.IntRange(1), default=2000, show_default=True,
                     help="Pages read per document (the rest is reported in errors.csv)."),
        click.option("--progress/--no-progress", default=True, help="Progress bars on stderr."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def settings_from(kwargs: dict[str, Any]) -> RunSettings:
    return RunSettings(**{name: kwargs.pop(name) for name in RunSettings.__dataclass_fields__})


def pipeline_and_match(settings: RunSettings) -> tuple[Any, Any]:
    from jobs.pipeline import PipelineOptions
    from jobs.scan import MatchOptions

    pipeline = PipelineOptions(model_path=settings.model, embed_batch_size=settings.batch_size,
                               embed_actors=settings.actors, max_pages=settings.max_pages)
    match = MatchOptions(k=settings.k, min_sim=settings.min_sim, threshold=settings.threshold,
                         include_noise=settings.include_noise, pixel_check=settings.pixel_check)
    return pipeline, match


def format_summary(summary: dict[str, Any]) -> str:
    """The closing lines printed after a run."""
    lines = [
        f"documents {summary['documents']} (new {summary['new_documents']}, already stored {summary['skipped_documents']}); "
        f"extracted now: pages {summary['pages']}, panels {summary['panels']} (noise {summary['noise']}); "
        f"candidates {summary['candidates']}, pairs {summary['pairs']} in {summary['groups']} group(s), "
        f"errors {summary['errors']}",
        "time: " + ", ".join(f"{k} {v:.1f}s" for k, v in summary["seconds"].items()),
    ]
    return "\n".join(lines)


def stage_announcer(enabled: bool) -> Any:
    """A callback printing `reusescan: <stage> ...` to stderr as each stage starts (None when quiet)."""
    if not enabled:
        return None
    return lambda stage: click.echo(f"reusescan: {stage} ...", err=True)


def fail(message: str) -> None:
    """Exit 1: the run itself failed (not an input)."""
    click.echo(f"reusescan: error: {message}", err=True)
    sys.exit(1)


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: report.csv, report.html, errors.csv and the store.")
@run_options
def scan(path: Path, out_dir: Path, **kwargs: Any) -> None:
    """Scan PATH (a folder of PDFs and/or images, or one file) for reused images.

    Writes OUT/report.csv (pairs, highest score first), OUT/report.html (open it in
    a browser), OUT/errors.csv (inputs that could not be read) and OUT/store/ (the
    Parquet figure store and FAISS index). Exit 0 when the scan completed, even if
    some inputs were unreadable.
    """
    settings = settings_from(kwargs)
    from index.store import StoreError
    from jobs.ray_runtime import ray_session
    from jobs.scan import StageClock, build_report_pairs, ingest, match_store, write_outputs
    from scanner.discover import document_key, find_inputs

    started = time.monotonic()
    root = path.resolve()
    out_dir = out_dir.resolve()
    store_dir = out_dir / "store"
    paths = [p for p in find_inputs(root) if out_dir not in p.resolve().parents]
    if not paths:
        click.echo(f"reusescan: no PDF or image files under {path}", err=True)
    pipeline, match = pipeline_and_match(settings)
    clock = StageClock(announce=stage_announcer(settings.progress))
    rel = {document_key(p, root): p for p in paths}
    stored = _stored_documents(store_dir)
    run_id = time.strftime("scan-%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        with ray_session(settings.address, progress=settings.progress):
            result = ingest(paths, root, store_dir, run_id=run_id, pipeline=pipeline,
                            seen=lambda doc, sha: (doc, sha) in stored, clock=clock)
            record_errors(store_dir, result.errors)
            matched = None
            if (store_dir / "manifest.json").exists():  # the pixel check runs as Ray tasks
                matched = match_store(store_dir, query_row_ids=None, model_path=settings.model, options=match,
                                      clock=clock)
        current = set(result.input_sha256.items()) if stored else None
        if matched is None:
            pairs, candidates, groups = [], 0, 0
        else:
            with clock.timed("report"):
                keep = None
                if current is not None:  # a resumed scan: report only documents present now
                    keep = lambda a, b: (a["doc"], a["doc_sha256"]) in current and (b["doc"], b["doc_sha256"]) in current  # noqa: E731
                pairs = build_report_pairs(store_dir, matched, doc_roots=rel, pair_filter=keep)
            candidates, groups = matched.candidates, len({p.group_id for p in pairs})
        errors = [e for e in load_errors(store_dir) if e[0] in rel]
        summary = {
            "documents": len(paths), "new_documents": result.documents, "skipped_documents": result.skipped_documents,
            "pages": result.pages, "panels": result.panels, "noise": result.noise, "candidates": candidates,
            "pairs": len(pairs), "groups": groups, "errors": len(errors),
            "seconds": {**clock.seconds, "total": time.monotonic() - started},
        }
        with clock.timed("report"):
            write_outputs(out_dir, pairs, errors, title=f"reusescan report: {path}", summary=html_summary(summary))
    except StoreError as exc:
        fail(f"{exc}. Use a new --out folder for another model.")
    except KeyboardInterrupt:
        fail("interrupted; finished documents are kept in the store and the next run resumes")
    click.echo(format_summary(summary), err=True)
    click.echo(f"report: {out_dir / 'report.html'}")


def html_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary as the HTML writer wants it: counts as tiles, stage times under `timings`."""
    flat = {k: v for k, v in summary.items() if k != "seconds"}
    flat["timings"] = {k: v for k, v in summary["seconds"].items() if k != "total"}
    return flat


def _stored_documents(store_dir: Path) -> set[tuple[str, str]]:
    """(doc, sha256) of every document the store already holds."""
    if not (store_dir / "manifest.json").exists():
        return set()
    from index.store import FigureStore

    table = FigureStore.open(store_dir).read_table(["doc", "doc_sha256"])
    return set(zip(table.column("doc").to_pylist(), table.column("doc_sha256").to_pylist()))


ERRORS_LOG = "errors.jsonl"


def record_errors(store_dir: Path, errors: list[tuple[str, str, str]]) -> None:
    """Append this run's input errors to the store's log, so a resumed run still reports them."""
    if not errors:
        return
    store_dir.mkdir(parents=True, exist_ok=True)
    with open(store_dir / ERRORS_LOG, "a", encoding="utf-8") as fh:
        for err in errors:
            fh.write(json.dumps(list(err)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def load_errors(store_dir: Path) -> list[tuple[str, str, str]]:
    """Every logged input error, once each, in the order first seen."""
    path = store_dir / ERRORS_LOG
    if not path.exists():
        return []
    seen: dict[tuple[str, str, str], None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            doc, stage, error = json.loads(line)
        except (ValueError, TypeError):
            continue  # a torn last line after a crash
        seen[(doc, stage, error)] = None
    return list(seen)
