"""A scan: one folder of papers in, one report out (`run_scan`).

Steps: find the inputs, ingest the new ones into OUT/store (`jobs.ingest`, via Ray
Data), match the whole store against itself (`jobs.match`), and write
report.csv, report.html and errors.csv (`jobs.report_rows`). Re-running into the
same OUT resumes: documents already stored are not extracted again, and a
document no longer in the folder leaves the report.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

from jobs.clock import StageClock, stage_announcer
from jobs.ingest import has_store, ingest, load_errors, record_errors, stored_documents
from jobs.match import match_store
from jobs.nightly import record_sources
from jobs.options import RunOptions, RunSummary
from jobs.ray_runtime import ray_session
from jobs.report import ReportPair
from jobs.report_rows import PairFilter, build_report_pairs, write_outputs
from jobs.verdicts import DISMISSED
from scanner.discover import document_key, find_inputs

logger = logging.getLogger(__name__)

STORE_DIRNAME = "store"


def run_scan(path: Path, out_dir: Path, options: RunOptions) -> RunSummary:
    """Scan `path` (a folder of PDFs and/or images, or one file) into `out_dir`; what the run did.

    Raises `index.store.StoreError` when OUT/store cannot be used (another model's
    vectors, a damaged store); input problems are reported in errors.csv instead.
    """
    clock = StageClock(announce=stage_announcer(options.progress))
    root = path.resolve()
    out_dir = out_dir.resolve()
    store_dir = out_dir / STORE_DIRNAME
    paths = [p for p in find_inputs(root) if out_dir not in p.resolve().parents]
    rel = {document_key(p, root): p for p in paths}
    stored = stored_documents(store_dir)
    run_id = time.strftime("scan-%Y%m%dT%H%M%SZ", time.gmtime())
    pairs: list[ReportPair] = []
    candidates = 0
    # Ray stops in the background once the report's pairs are built: writing the outputs needs none of it
    with ray_session(options.address, progress=options.progress, stop_in_background=True):
        result = ingest(paths, root, store_dir, run_id=run_id, pipeline=options.pipeline,
                        seen=lambda doc, sha: (doc, sha) in stored, clock=clock)
        record_errors(store_dir, result.errors)
        if has_store(store_dir):
            # where each new document came from: `case export` draws its pages
            record_sources(store_dir, run_id, {d: p for d, p in rel.items()
                                               if (d, result.input_sha256.get(d)) not in stored}, result.input_sha256)
            # inside the Ray session: the pixel check runs as Ray tasks
            matched = match_store(store_dir, query_row_ids=None, model_path=options.model_path,
                                  options=options.match, clock=clock, progress=options.progress)
            with clock.timed("report"):  # inside it too: a Ray task draws the cards' pages (jobs.report_rows)
                # Only documents in the folder now: a resumed scan's store (or staging area) may hold
                # documents removed from it since.
                current = set(result.input_sha256.items())
                keep: PairFilter = lambda a, b: (a["doc"], a["doc_sha256"]) in current and (b["doc"], b["doc_sha256"]) in current  # noqa: E731
                pairs = build_report_pairs(store_dir, matched, doc_roots=rel, pair_filter=keep, cards=options.cards)
            candidates = matched.candidates
    errors = [e for e in load_errors(store_dir) if e[0] in rel]
    summary = RunSummary(
        documents=len(paths), new_documents=result.documents, skipped_documents=result.skipped_documents,
        pages=result.pages, panels=result.panels, noise=result.noise, candidates=candidates, pairs=sum(p.verdict != DISMISSED for p in pairs),
        groups=len({p.group_id for p in pairs}), errors=len(errors),
        seconds=clock.with_total(), report=out_dir / "report.html",
    )
    with clock.timed("report"):
        write_outputs(out_dir, pairs, errors, title=f"reusescan report: {path}", summary=summary.html_summary(),
                      cards=options.cards)
    # report.html cannot count its own writing; the times returned (and printed) do
    return replace(summary, seconds=clock.with_total())
