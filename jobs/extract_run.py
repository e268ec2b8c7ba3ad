"""Extraction of a corpus into one Parquet file (`run_extract`, behind `reusescan extract`).

Documents are read in a process pool (PyMuPDF is not thread-safe; one document
per process at a time, and workers are recycled so MuPDF's memory is returned).
Results are written in input order as they arrive; after the last document the
corpus-level boilerplate pass (`scanner.noise.boilerplate_mask`) adds the
`boilerplate` flag and the final `figures.parquet` replaces any previous one atomically.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from jobs.extract_workers import extract_guarded
from jobs.report import write_errors_csv
from scanner.discover import document_key, find_inputs
from scanner.extract import DocumentResult, ExtractError, ExtractLimits, extract_document
from scanner.noise import Box, add_flag, boilerplate_mask, pixel_hash
from scanner.records import FIGURES_SCHEMA, FLAG_BOILERPLATE, FLAG_COMPOUND, records_to_table

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractSummary:
    """What a run did: counts and wall-clock seconds."""

    documents: int
    pages: int
    records: int
    panels: int      # records that go to matching: no noise flag, not a compound figure's whole raster
    errors: int
    seconds: float


def _died(doc: str) -> DocumentResult:
    res = DocumentResult(doc=doc, doc_sha256="")
    res.errors.append(ExtractError(
        res.doc, "extract", "the worker process died while reading this document (crash, or CPU limit exceeded)"
    ))
    return res


def _run_pool(
    inputs: list[Path], root: Path, limits: ExtractLimits, workers: int, hard_cpu_s: float | None = None
) -> Iterator[tuple[int, DocumentResult]]:
    """(input index, result) for every input, in completion order.

    At most `workers + 1` documents are in flight. A worker that dies (a crash
    inside MuPDF, or the CPU limit) breaks the pool: the documents in flight are
    then retried one at a time in fresh processes, so the culprit is isolated and
    reported, and a new pool takes the rest.
    """
    ctx = multiprocessing.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
    todo = deque(range(len(inputs)))
    while todo:
        suspects: list[int] = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=50) as pool:
            pending: dict[Future[DocumentResult], int] = {}
            while todo or pending:
                while todo and not suspects and len(pending) <= workers:
                    i = todo.popleft()
                    pending[pool.submit(extract_guarded, inputs[i], root, limits, hard_cpu_s)] = i
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        suspects.append(i)
                        continue
                    except Exception as exc:  # pickling or an unexpected worker error
                        result = DocumentResult(doc=document_key(inputs[i], root), doc_sha256="")
                        result.errors.append(ExtractError(result.doc, "extract", f"{type(exc).__name__}: {exc}"))
                    yield i, result
        for i in sorted(suspects):
            try:
                with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as solo:
                    result = solo.submit(extract_guarded, inputs[i], root, limits, hard_cpu_s).result()
            except BrokenProcessPool:
                result = _died(document_key(inputs[i], root))
            yield i, result


def _run_inline(inputs: list[Path], root: Path, limits: ExtractLimits) -> Iterator[tuple[int, DocumentResult]]:
    for i, path in enumerate(inputs):
        yield i, extract_document(path, root, limits)


def _safe_name(doc: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in doc)[-80:]


def run_extract(
    path: Path, out: Path, *, workers: int, limits: ExtractLimits, dump_png: Path | None = None,
    min_docs: int = 3, min_pages: int = 4, progress: bool = True, hard_cpu_s: float | None = -1.0,
) -> ExtractSummary:
    """Extract `path` into `out` (figures.parquet, errors.csv, optional PNGs). Raises on run failures.

    `hard_cpu_s` is the CPU-seconds budget per document in pool workers (None: no
    limit; the default -1 means 2 x the timeout + 30 s, none without a timeout).
    """
    if hard_cpu_s is not None and hard_cpu_s < 0:
        hard_cpu_s = 2 * limits.timeout_s + 30 if limits.timeout_s else None
    out.mkdir(parents=True, exist_ok=True)
    inputs = find_inputs(path)
    partial = out / "figures.parquet.partial"
    errors: list[ExtractError] = []
    # per record, in file order: pixel hash, document, page, bbox, and whether it would go to matching
    hashes: list[str] = []
    docs: list[str] = []
    contents: list[str] = []
    pages_of: list[int] = []
    boxes: list[Box] = []
    candidate: list[bool] = []
    started = time.monotonic()
    pages = 0

    writer = pq.ParquetWriter(partial, FIGURES_SCHEMA)
    try:
        results = _run_inline(inputs, path, limits) if workers <= 0 else _run_pool(inputs, path, limits, workers, hard_cpu_s)
        waiting: dict[int, DocumentResult] = {}
        next_i = 0
        bar = tqdm(total=len(inputs), unit="doc", file=sys.stderr, disable=not progress, desc="extract")
        for i, res in results:
            bar.update(1)
            waiting[i] = res
            while next_i in waiting:  # write in input order: deterministic output
                r = waiting.pop(next_i)
                next_i += 1
                pages += r.pages
                errors.extend(r.errors)
                if r.records:
                    writer.write_table(records_to_table(r.records))
                    for x in r.records:
                        hashes.append(pixel_hash(x.image))
                        docs.append(x.doc)
                        contents.append(x.doc_sha256)
                        pages_of.append(x.page)
                        boxes.append(x.bbox)
                        candidate.append(not x.is_noise and FLAG_COMPOUND not in x.flags)
        bar.close()
    finally:
        writer.close()

    # Corpus-level pass: boilerplate flags, final file, optional PNG dump.
    flagged = boilerplate_mask(hashes, docs, pages_of, boxes, min_docs=min_docs, min_pages=min_pages, contents=contents)
    _finish(out, partial, flagged, dump_png)
    write_errors_csv([(e.input, e.stage, e.error) for e in errors], out / "errors.csv")
    elapsed = time.monotonic() - started
    logger.info("%d documents, %d pages, %d records, %d error lines in %.1f s", len(inputs), pages, len(hashes),
                len(errors), elapsed)
    n_panels = sum(1 for c, f in zip(candidate, flagged) if c and not f)
    return ExtractSummary(len(inputs), pages, len(hashes), n_panels, len(errors), elapsed)


def _finish(out: Path, partial: Path, flagged: list[bool], dump_png: Path | None) -> None:
    """Rewrite `partial` as out/figures.parquet with the boilerplate flags; dump PNGs on the way."""
    tmp = out / "figures.parquet.tmp"
    k = 0
    if dump_png is not None:
        dump_png.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(tmp, FIGURES_SCHEMA) as final:
        for batch in pq.ParquetFile(partial).iter_batches(batch_size=512):
            rows = batch.to_pylist()
            for row in rows:
                if flagged[k]:
                    row["flags"] = list(add_flag(row["flags"] or [], FLAG_BOILERPLATE))
                k += 1
                if dump_png is not None:
                    name = f"{_safe_name(row['doc'])}_p{row['page']}_{row['figure_id']}.png"
                    (dump_png / name).write_bytes(row["image"])
            final.write_table(pa.Table.from_pylist(rows, schema=FIGURES_SCHEMA))
    os.replace(tmp, out / "figures.parquet")
    partial.unlink(missing_ok=True)
