"""Ingest: new documents -> extracted, embedded rows -> the store; and the store's input-error log."""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from index.store import MANIFEST, PIXELS_COLUMN, POSE_COLUMN, FigureStore, StoreError, StoreMismatchError
from jobs.clock import StageClock
from jobs.pipeline import (
    REGION_COLUMN,
    ROW_DOC,
    ROW_ERROR,
    ROW_RECORD,
    PipelineOptions,
    run_extract_and_embed,
)
from jobs.scoring import model_id_of
from jobs.staging import (
    STAGE_ERROR_COLUMN,
    STAGING_DIRNAME,
    STORE_FILE_ROWS,
    StagingArea,
    document_aligned_slices,
    stage_batch,
)
from scanner.discover import document_key
from scanner.extract import file_sha256
from scanner.noise import flag_boilerplate_table
from scanner.records import FIGURES_SCHEMA, NOISE_FLAGS

logger = logging.getLogger(__name__)

ERRORS_LOG = "errors.jsonl"

InputError = tuple[str, str, str]  # (doc, stage, error): one line of errors.csv


@dataclass
class IngestResult:
    """What one ingest added to the store."""

    documents: int = 0
    pages: int = 0
    panels: int = 0
    noise: int = 0
    skipped_documents: int = 0
    errors: list[InputError] = field(default_factory=list)
    input_sha256: dict[str, str] = field(default_factory=dict)   # every readable input: doc -> content hash


def ingest(
    paths: Sequence[Path],
    root: Path,
    store_dir: Path,
    *,
    run_id: str,
    pipeline: PipelineOptions,
    seen: Callable[[str, str], bool],
    clock: StageClock,
) -> IngestResult:
    """Extract and embed the documents of `paths` that `seen(doc, sha)` rejects, append them to the store.

    The store is created on first use with the model's id and dimension. Rows are
    staged batch by batch as they stream out of Ray (`StagingArea`), so an
    interrupted ingest keeps every finished document and the next run resumes;
    once extraction is complete, boilerplate is flagged over all of the run's
    records (`scanner.noise.flag_boilerplate_table`) and they are appended to the store.
    """
    check_store_model(store_dir, pipeline.model_path)
    staged = StagingArea(store_dir / STAGING_DIRNAME).finished_documents(model_id_of(pipeline.model_path))
    result = IngestResult()
    todo: list[Path] = []
    with clock.timed("hash inputs"):
        for p in paths:
            try:
                sha = file_sha256(p)
            except OSError as exc:
                result.errors.append((document_key(p, root), "read", f"{type(exc).__name__}: {exc}"))
                continue
            result.input_sha256[document_key(p, root)] = sha
            if seen(document_key(p, root), sha):
                result.skipped_documents += 1
            elif (document_key(p, root), sha) not in staged:  # staged: finished by an interrupted run
                todo.append(p)
    logger.info("%d input(s), %d already in the store, %d staged by an interrupted run, %d to ingest",
                len(paths), result.skipped_documents, len(staged), len(todo))
    if not todo and not staged:
        return result

    staging = StagingArea(store_dir / STAGING_DIRNAME)
    with clock.timed("extract + embed"):
        # the embedding actors write the batches (`stage_batch`): only their row counts come here
        write_where_embedded = partial(stage_batch, root=str(staging.root.absolute()))
        rows_before, rows_written = staging.row_count(), 0
        for summary in run_extract_and_embed(todo, root, pipeline, then=write_where_embedded):
            if STAGE_ERROR_COLUMN in summary.column_names:
                error = summary.column(STAGE_ERROR_COLUMN)[0].as_py()
                raise StoreError(f"cannot write to the staging area {staging.root}: {error} "
                                 "(the batches written so far are kept; run the scan again to go on)")
            rows_written += summary.num_rows
    rows_found = staging.row_count() - rows_before
    if rows_found < rows_written:  # an actor on a node that does not share the store's path
        raise StoreError(f"the embedding actors wrote {rows_written} rows to {staging.root}, but this process finds "
                         f"{rows_found} of them: on a cluster the store must be on storage every node mounts, "
                         "under the same path")
    table, finished = staging.complete_documents(light=True)  # images, vectors and pixels stay on disk
    if table.num_rows:  # a crash between writing the store and clearing the staging area
        # Documents stored before the crash are not stored twice; their error rows are kept,
        # because the errors log is written only after the store.
        fresh = [kind == ROW_ERROR or not seen(d, h) for kind, d, h in
                 zip(table.column("row_kind").to_pylist(), table.column("doc").to_pylist(),
                     table.column("doc_sha256").to_pylist())]
        table = table.filter(pa.array(fresh))
    _count_rows(table, result)
    for p in todo:
        if document_key(p, root) not in finished:
            result.errors.append((document_key(p, root), "extract", "the extraction process crashed on this document; "
                                  "nothing of it was kept"))
    # Boilerplate needs every record of the run (a logo is boilerplate because it
    # recurs), so the store is written once extraction is complete; until then the
    # finished documents wait in the staging area, which a restarted run picks up.
    with clock.timed("store"):
        records = table.filter(pc.equal(table.column("row_kind"), ROW_RECORD))
        if records.num_rows:
            records = flag_boilerplate_table(records)
            _store_records(store_dir, records, run_id, staging)
            result.panels = records.num_rows
            result.noise = sum(1 for f in records.column("flags").to_pylist() if f and NOISE_FLAGS.intersection(f))
        staging.clear()
    return result


def _store_records(store_dir: Path, records: pa.Table, run_id: str, staging: StagingArea) -> None:
    """Append `records` (light staged rows of one model, `StagingArea.complete_documents(light=True)`) to
    the store, whole documents per file.

    One store file's rows (`STORE_FILE_ROWS`) are read back from the staging area at a time, and let go
    of before the next file's are (`_store_file`), so the driver never holds more than that many images,
    vectors and pixel features.
    """
    records = records.sort_by([("doc", "ascending"), ("doc_sha256", "ascending")])
    model_id = records.column("model_id")[0].as_py()
    store: FigureStore | None = None
    for start, stop in document_aligned_slices(records.column("doc").to_pylist(), STORE_FILE_ROWS):
        store = _store_file(store_dir, store, staging.gather(records.slice(start, stop - start)), model_id, run_id)


def _store_file(store_dir: Path, store: FigureStore | None, part: pa.Table, model_id: str, run_id: str) -> FigureStore:
    """Append `part` (gathered staged rows, `StagingArea.gather`) to the store as one file; the store (opened or
    created at `store_dir` on first use). Its locals are the file's heavy rows: they go when it returns."""
    vectors = _vectors(part.column("vector"))
    if store is None:
        store = FigureStore.open_or_create(store_dir, model_id=model_id, dim=vectors.shape[1])
    pixels = part.column(PIXELS_COLUMN) if PIXELS_COLUMN in part.column_names else None
    pose_greys = part.column(POSE_COLUMN) if POSE_COLUMN in part.column_names else None
    regions = (split_region_vectors(part.column(REGION_COLUMN).to_pylist(), vectors.shape[1])
               if REGION_COLUMN in part.column_names else None)
    # regions go in with the batch, before its manifest commit: a crash cannot keep a panel without them
    store.append(part.select(FIGURES_SCHEMA.names), vectors, model_id=model_id, run_id=run_id,
                 pixels=pixels, pose_greys=pose_greys, regions=regions)
    return store


def split_region_vectors(flat: list[list[float] | None], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """`REGION_COLUMN` values -> (owner position per region vector, (M, dim) vectors)."""
    owners: list[int] = []
    parts: list[np.ndarray] = [np.zeros((0, dim), np.float32)]
    for i, values in enumerate(flat):
        if values:
            v = np.asarray(values, dtype=np.float32).reshape(-1, dim)
            owners += [i] * len(v)
            parts.append(v)
    return np.asarray(owners, dtype=np.int64), np.concatenate(parts)


def _vectors(column: pa.ChunkedArray) -> np.ndarray:
    """(n, dim) float32 from a list<float32> column of equal-length, non-null lists (no Python lists)."""
    flat = pa.chunked_array([c.flatten() for c in column.chunks], pa.float32()).to_numpy()
    return np.asarray(flat, dtype=np.float32).reshape(len(column), -1)


def _count_rows(table: pa.Table, result: IngestResult) -> None:
    """Documents, pages and input errors of the staged rows, into `result`."""
    if "row_kind" not in table.column_names or not table.num_rows:
        return
    for row in table.select(["row_kind", "doc", "stage", "error", "pages"]).to_pylist():
        if row["row_kind"] == ROW_ERROR:
            result.errors.append((row["doc"], row["stage"], row["error"]))
        elif row["row_kind"] == ROW_DOC:
            result.documents += 1
            result.pages += int(row["pages"] or 0)


def has_store(store_dir: Path) -> bool:
    """Whether `store_dir` holds a store (its manifest is written with the first rows)."""
    return (store_dir / MANIFEST).exists()


def check_store_model(store_dir: Path, model_path: str | None) -> None:
    """Raise `StoreMismatchError` when `store_dir` holds vectors of a model other than `model_path`'s.

    Checked before any extraction, so a resumed scan or a nightly run with another
    model fails at once instead of scoring old vectors with a new head.
    """
    if not has_store(store_dir):
        return
    stored, wanted = FigureStore.open(store_dir).model_id, model_id_of(model_path)
    if stored != wanted:
        raise StoreMismatchError(f"{store_dir} holds vectors of model {stored}, not of {wanted} "
                                 f"({model_path or 'the shipped model'})")


def stored_documents(store_dir: Path) -> set[tuple[str, str]]:
    """(doc, sha256) of every document the store already holds."""
    if not has_store(store_dir):
        return set()
    table = FigureStore.open(store_dir).read_table(["doc", "doc_sha256"])
    return set(zip(table.column("doc").to_pylist(), table.column("doc_sha256").to_pylist()))


def record_errors(store_dir: Path, errors: list[InputError]) -> None:
    """Append this run's input errors to the store's log, so a resumed run still reports them."""
    if not errors:
        return
    store_dir.mkdir(parents=True, exist_ok=True)
    with open(store_dir / ERRORS_LOG, "a", encoding="utf-8") as fh:
        for err in errors:
            fh.write(json.dumps(list(err)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def load_errors(store_dir: Path) -> list[InputError]:
    """Every logged input error, once each, in the order first seen."""
    path = store_dir / ERRORS_LOG
    if not path.exists():
        return []
    seen: dict[InputError, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            doc, stage, error = json.loads(line)
        except (ValueError, TypeError):
            continue  # a torn last line after a crash
        seen[(doc, stage, error)] = None
    return list(seen)
