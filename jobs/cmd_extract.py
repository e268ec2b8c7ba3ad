"""`reusescan extract PATH --out DIR`: every figure and panel of a corpus into a Parquet store.

Documents are read in a process pool (PyMuPDF is not thread-safe; one document
per process at a time, and workers are recycled so MuPDF's memory is returned).
Results are written in input order as they arrive; after the last document the
corpus-level boilerplate pass adds the `boilerplate` flag and the final
`figures.parquet` replaces any previous one atomically.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from scanner.discover import document_key

if TYPE_CHECKING:  # pragma: no cover
    from scanner.extract import DocumentResult, ExtractError, ExtractLimits

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


def _worker_init() -> None:
    """Pool worker start-up: skip PyMuPDF's optional layout add-on (an ONNX model, ~1 s per
    process import) which extraction never uses."""
    if "pymupdf" not in sys.modules:
        sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]


def extract_guarded(path: Path, root: Path, limits: ExtractLimits, hard_cpu_s: float | None) -> DocumentResult:
    """`extract_document` in a pool worker, with a hard CPU-time limit as a last resort.

    The per-document timeout (SIGALRM) only fires when control is back in Python; a
    MuPDF call that spins in C is stopped by RLIMIT_CPU instead: the kernel kills the
    worker, the pool notices, and the document is reported as a crashed worker.
    """
    from scanner.extract import extract_document

    if hard_cpu_s is None:
        return extract_document(path, root, limits)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    budget = int(usage.ru_utime + usage.ru_stime + max(1.0, hard_cpu_s)) + 1
    if hard != resource.RLIM_INFINITY:
        budget = min(budget, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (budget, hard))
    try:
        return extract_document(path, root, limits)
    finally:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _run_pool(
    inputs: list[Path], root: Path, limits: ExtractLimits, workers: int, hard_cpu_s: float | None = None
) -> Iterator[tuple[int, DocumentResult]]:
    """(input index, result) for every input, in completion order.

    At most `workers + 1` documents are in flight. A worker that dies (a crash
    inside MuPDF, or the CPU limit) breaks the pool: the documents in flight are
    then retried one at a time in fresh processes, so the culprit is isolated and
    reported, and a new pool takes the rest.
    """
    import multiprocessing
    from collections import deque
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from scanner.extract import DocumentResult, ExtractError

    def died(i: int) -> DocumentResult:
        res = DocumentResult(doc=document_key(inputs[i], root), doc_sha256="")
        res.errors.append(ExtractError(
            res.doc, "extract", "the worker process died while reading this document (crash, or CPU limit exceeded)"
        ))
        return res

    ctx = multiprocessing.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
    todo = deque(range(len(inputs)))
    while todo:
        suspects: list[int] = []
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, max_tasks_per_child=50, initializer=_worker_init
        ) as pool:
            pending: dict = {}
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
                with ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_worker_init) as solo:
                    result = solo.submit(extract_guarded, inputs[i], root, limits, hard_cpu_s).result()
            except BrokenProcessPool:
                result = died(i)
            yield i, result


def _run_inline(inputs: list[Path], root: Path, limits: ExtractLimits) -> Iterator[tuple[int, DocumentResult]]:
    from scanner.extract import extract_document

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
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from jobs.report import write_errors_csv
    from scanner.discover import find_inputs
    from scanner.noise import add_flag, boilerplate_hashes, logo_hashes, pixel_hash
    from scanner.records import FIGURES_SCHEMA, FLAG_BOILERPLATE, FLAG_COMPOUND, records_to_table

    out.mkdir(parents=True, exist_ok=True)
    root = path
    inputs = find_inputs(path)
    partial = out / "figures.parquet.partial"
    errors: list[ExtractError] = []
    occurrences: list[tuple[str, str, int]] = []
    spots: list[tuple[float, float, float, float]] = []  # bbox per record, same order
    n_records = 0
    candidate: list[bool] = []  # per record, in file order: would go to matching unless boilerplate
    started = time.monotonic()
    pages = 0

    writer = pq.ParquetWriter(partial, FIGURES_SCHEMA)
    try:
        results = _run_inline(inputs, root, limits) if workers <= 0 else _run_pool(inputs, root, limits, workers, hard_cpu_s)
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
                    occurrences.extend((pixel_hash(x.image), x.doc, x.page) for x in r.records)
                    spots.extend(x.bbox for x in r.records)
                    n_records += len(r.records)
                    candidate.extend(not x.is_noise and FLAG_COMPOUND not in x.flags for x in r.records)
        bar.close()
    finally:
        writer.close()

    # Corpus-level pass: boilerplate flags, final file, optional PNG dump.
    flagged = boilerplate_hashes(occurrences, min_docs=min_docs, min_pages=min_pages) | logo_hashes(
        (h, doc, bbox) for (h, doc, _), bbox in zip(occurrences, spots)
    )
    tmp = out / "figures.parquet.tmp"
    k = 0
    if dump_png is not None:
        dump_png.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(tmp, FIGURES_SCHEMA) as final:
        for batch in pq.ParquetFile(partial).iter_batches(batch_size=512):
            rows = batch.to_pylist()
            for row in rows:
                h = occurrences[k][0]
                k += 1
                if h in flagged:
                    row["flags"] = list(add_flag(row["flags"] or [], FLAG_BOILERPLATE))
                if dump_png is not None:
                    name = f"{_safe_name(row['doc'])}_p{row['page']}_{row['figure_id']}.png"
                    (dump_png / name).write_bytes(row["image"])
            final.write_table(pa.Table.from_pylist(rows, schema=FIGURES_SCHEMA))
    os.replace(tmp, out / "figures.parquet")
    partial.unlink(missing_ok=True)

    write_errors_csv([(e.input, e.stage, e.error) for e in errors], out / "errors.csv")
    elapsed = time.monotonic() - started
    logger.info("%d documents, %d pages, %d records, %d error lines in %.1f s", len(inputs), pages, n_records, len(errors), elapsed)
    n_panels = sum(1 for (h, _, _), c in zip(occurrences, candidate) if c and h not in flagged)
    return ExtractSummary(len(inputs), pages, n_records, n_panels, len(errors), elapsed)


@click.command("extract")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder (figures.parquet, errors.csv).")
@click.option("--dump-png", type=click.Path(file_okay=False, path_type=Path), default=None, help="Also write every record's pixels as PNG files here.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Worker processes (default: CPU count; 0 = in this process).")
@click.option("--max-pages", type=click.IntRange(min=1), default=2000, show_default=True, help="Pages read per document.")
@click.option("--max-image-pixels", type=click.IntRange(min=1), default=100_000_000, show_default=True, help="Pixel cap per image (decompression bombs).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0), default=300.0, show_default=True, help="Seconds per document (0 = none).")
@click.option("--no-split", is_flag=True, help="Do not split compound figures into panels.")
@click.option("--boilerplate-docs", type=click.IntRange(min=2), default=3, show_default=True, help="Same pixels in this many documents = boilerplate.")
@click.option("--boilerplate-pages", type=click.IntRange(min=2), default=4, show_default=True, help="Same pixels on this many pages = boilerplate.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def extract(
    path: Path, out: Path, dump_png: Path | None, workers: int | None, max_pages: int, max_image_pixels: int,
    timeout_s: float, no_split: bool, boilerplate_docs: int, boilerplate_pages: int, no_progress: bool,
) -> None:
    """Extract every figure and panel of PATH (PDFs and images, recursive) into OUT/figures.parquet.

    Unreadable inputs get one line each in OUT/errors.csv; the run goes on and
    exits 0. Exit 1 means the run itself failed.
    """
    from scanner.extract import ExtractLimits

    limits = ExtractLimits(
        max_image_pixels=max_image_pixels, max_pages=max_pages, timeout_s=timeout_s or None, split=not no_split,
    )
    n_workers = (os.cpu_count() or 1) if workers is None else workers
    try:
        summary = run_extract(
            path, out, workers=n_workers, limits=limits, dump_png=dump_png,
            min_docs=boilerplate_docs, min_pages=boilerplate_pages, progress=not no_progress,
        )
    except Exception as exc:
        logger.exception("extraction failed")
        click.echo(f"error: extraction failed: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"{summary.documents} inputs, {summary.pages} pages, {summary.records} records "
        f"({summary.panels} panels for matching), {summary.errors} error lines, {summary.seconds:.1f} s "
        f"-> {out / 'figures.parquet'}",
        err=True,
    )
