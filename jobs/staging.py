"""Rows waiting for the store: the staging area of an ingest, and store files of whole documents."""
from __future__ import annotations

import itertools
import logging
import os
import shutil
import uuid
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from index.store import PAGE_ROWS, PIXELS_COLUMN, POSE_COLUMN, stream_rows
from jobs.pipeline import NULL_ROWS, REGION_COLUMN, ROW_DOC, ROW_RECORD
from scanner.noise import pixel_hash

logger = logging.getLogger(__name__)

STAGING_DIRNAME = "staging"
# Rows per store file (whole documents only, see document_aligned_slices). The driver gathers one file's
# rows with their images, pixel features and grey images from the staging area and writes them: its peak
# (+0.6 GB at 1,094 rows, the store stage of the 100-paper benchmark; 4.7 GB in all at 4,096-row files of
# the 1,000-paper one) grows with this, so it stays at about a thousand. It holds one file's rows once
# (`gather`), not also the file before's: +0.53 GB at 1,000 synthetic rows, +0.57 GB at 10,000
# (benchmarks/bench_store_stage.py; +0.87 and +1.34 GB before).
STORE_FILE_ROWS = 1024
# The large columns of a staged row: `complete_documents(light=True)` leaves them in the staged
# files (a run's images would not fit in memory at corpus scale) and `gather` reads them per store file.
HEAVY_COLUMNS = ("image", "vector", PIXELS_COLUMN, POSE_COLUMN, "thumbnail", REGION_COLUMN)
FILE_COLUMN, ROW_COLUMN, HASH_COLUMN = "_staged_file", "_staged_row", "pixel_hash"
# `gather` streams a staged file's heavy columns GATHER_READ_ROWS rows at a time (~2.5 MB of images, pixel
# features and grey images) through the store's read buffer (`index.store.STREAM_BUFFER`); staged files are written in
# pages of PAGE_ROWS rows (a page is decoded whole), so a read holds a few rows whatever a batch's size
# (files staged by older code, with larger pages, still read, a page at a time).
GATHER_READ_ROWS = 8
_WRITER, _WRITTEN = uuid.uuid4().hex, itertools.count()  # this process's staged files: `StagingArea.write`


def image_hashes(images: pa.ChunkedArray) -> pa.Array:
    """`scanner.noise.pixel_hash` of each encoded image (null for a null), one image in memory at a time."""
    return pa.array([pixel_hash(img.as_py()) if img.is_valid else None for chunk in images.chunks for img in chunk],
                    pa.string())


def document_aligned_slices(docs: Sequence[str], target_rows: int) -> list[tuple[int, int]]:
    """[start, stop) ranges of about `target_rows` rows that never split a document.

    `docs` must be grouped (sorted). A store file then holds whole documents, so a
    run interrupted between two files leaves every document either fully stored
    (skipped next time) or not at all (taken from the staging area again).
    """
    slices: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(docs) + 1):
        boundary = i == len(docs) or docs[i] != docs[i - 1]
        if boundary and (i - start >= target_rows or i == len(docs)):
            slices.append((start, i))
            start = i
    return slices


class StagingArea:
    """Extracted and embedded rows waiting for the store, one Parquet file per streamed batch.

    Each batch is written under a temporary name and renamed, so the folder only
    ever holds whole files. A document counts as finished when its `doc` row and
    all the record rows it announces are staged; a restarted run skips finished
    documents and re-extracts the others (their partial rows are ignored). The
    area is cleared once its rows are in the store.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, batch: pa.Table) -> None:
        """Stage one batch, with each image's pixel hash: the ingest's boilerplate flags need every image's
        hash, and the light rows then carry it without reading the run's images back (6.8 GB at 5,000
        generated papers)."""
        if "image" in batch.column_names and HASH_COLUMN not in batch.column_names:
            batch = batch.append_column(HASH_COLUMN, image_hashes(batch.column("image")))
        self.root.mkdir(parents=True, exist_ok=True)
        # named so that the files one process writes sort in the order it wrote them: a document's rows span
        # the batches one embedding actor made in turn, and the store keeps them in that order (row ids)
        final = self.root / f"batch-{_WRITER}-{next(_WRITTEN):09d}.parquet"
        tmp = final.with_name(f".{final.name}.tmp")
        try:
            pq.write_table(batch, tmp, write_batch_size=PAGE_ROWS)  # small pages: `gather` reads a few rows at a time
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk leaves no part-written file behind
            raise

    def row_count(self) -> int:
        """Rows staged now (from the files' footers: nothing else is read)."""
        return sum(pq.read_metadata(f).num_rows for f in self._files())

    def _files(self) -> list[Path]:
        return sorted(self.root.glob("batch-*.parquet")) if self.root.exists() else []

    def _read(self, light: bool = False) -> pa.Table | None:
        files = self._files()
        if not files:
            return None
        if not light:
            return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
        return pa.concat_tables([self._light(f, n) for n, f in enumerate(files)], promote_options="default")

    @staticmethod
    def _light(path: Path, n: int) -> pa.Table:
        """One staged file without its heavy columns, plus where each row is and its image's pixel hash."""
        names = pq.read_schema(path).names
        table = pq.read_table(path, columns=[c for c in names if c not in HEAVY_COLUMNS])
        if HASH_COLUMN not in names:  # staged by an older version (a staged file is one batch: its images fit)
            hashes = (image_hashes(pq.read_table(path, columns=["image"]).column("image")) if "image" in names
                      else pa.nulls(table.num_rows, pa.string()))
            table = table.append_column(HASH_COLUMN, hashes)
        return (table.append_column(FILE_COLUMN, pa.array([n] * table.num_rows, pa.int32()))
                .append_column(ROW_COLUMN, pa.array(range(table.num_rows), pa.int32())))

    def gather(self, light: pa.Table) -> pa.Table:
        """The full staged rows (heavy columns included) of rows of `complete_documents(light=True)`, in order.

        Reads only the staged files these rows are in, and of each only the rows asked for, a few at a
        time (`_read_rows`); a run of `light`'s rows that are consecutive in one staged file is a slice of
        what was read (no copy), other runs a `take` of it. Memory holds the rows asked for (about once)
        and one read batch, not whole staged files. `light`'s own columns replace the staged ones (so
        flags set on the light rows, such as boilerplate, carry over).
        """
        files = self._files()
        file_of = np.asarray(light.column(FILE_COLUMN).to_numpy(zero_copy_only=False), dtype=np.int64)
        row_of = np.asarray(light.column(ROW_COLUMN).to_numpy(zero_copy_only=False), dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, file_of[1:] != file_of[:-1]]) if len(file_of) else np.zeros(0, np.int64)
        stops = np.r_[starts[1:], len(file_of)].astype(np.int64)
        runs: list[pa.Table | None] = [None] * len(starts)
        for f in np.unique(file_of).tolist():
            mine = np.flatnonzero(file_of[starts] == f)
            wanted = np.unique(row_of[file_of == f])
            rows = self._read_rows(files[f], wanted)  # `wanted`'s rows, in that order
            for i in mine.tolist():
                at = np.searchsorted(wanted, row_of[starts[i]:stops[i]])
                contiguous = bool(np.all(np.diff(at) == 1))
                runs[i] = rows.slice(int(at[0]), len(at)) if contiguous else rows.take(pa.array(at, pa.int64()))
            del rows
        out = light.drop_columns([FILE_COLUMN, ROW_COLUMN, HASH_COLUMN])
        parts = [t for t in runs if t is not None]
        if not parts:
            return out
        heavy = pa.concat_tables(parts, promote_options="default")  # files of older runs may lack a column
        for name in [c for c in HEAVY_COLUMNS if c in heavy.column_names]:
            out = out.append_column(name, heavy.column(name))
        return out

    @staticmethod
    def _read_rows(path: Path, rows: np.ndarray) -> pa.Table:
        """The heavy columns of the staged file `path` at positions `rows` (sorted, unique), streamed
        `GATHER_READ_ROWS` rows at a time (`index.store.stream_rows`): a staged file (one streamed
        batch) is never held whole."""
        def pick(batch: pa.RecordBatch, first: int) -> np.ndarray | None:
            if first > rows[-1]:
                return None
            lo, hi = np.searchsorted(rows, [first, first + batch.num_rows])
            return rows[lo:hi] - first

        columns = [c for c in HEAVY_COLUMNS if c in pq.read_schema(path).names]
        table = stream_rows(path, columns, pick, batch_rows=GATHER_READ_ROWS)
        if table.num_rows != len(rows):
            raise IndexError(f"{path} has fewer rows than asked for (row {int(rows[-1])})")
        return table

    def complete_documents(self, light: bool = False) -> tuple[pa.Table, set[str]]:
        """The staged rows of finished documents, and those documents' names.

        `light`: without the heavy columns (images, vectors, pixel features), with the pixel hash of
        each image and where each row is staged instead (`gather` reads the rest).
        """
        return self._complete(self._read(light))

    def _complete(self, table: pa.Table | None) -> tuple[pa.Table, set[str]]:
        """`complete_documents` of the staged rows `table` (as `_read` gives them)."""
        if table is None:
            return pa.table({"row_kind": pa.array([], pa.string())}), set()
        # A document extracted again after an interrupted run may have rows staged
        # twice: keep one row per identity (records by figure_id, which derives from
        # the document's path and content, page, placement and panel).
        table = table.take(pa.array(self._first_of_each(table), pa.int64()))
        keys = [f"{d}\x00{s}" for d, s in zip(table.column("doc").to_pylist(), table.column("doc_sha256").to_pylist())]
        kinds = table.column("row_kind").to_pylist()
        announced = {k: n for k, kind, n in zip(keys, kinds, table.column("records").to_pylist()) if kind == ROW_DOC}
        have: dict[str, int] = defaultdict(int)
        for k, kind in zip(keys, kinds):
            if kind == ROW_RECORD:
                have[k] += 1
        done = {k for k, n in announced.items() if have.get(k, 0) == (n or 0)}
        table = table.filter(pa.array([k in done for k in keys]))
        return table, {k.split("\x00", 1)[0] for k in done}

    @staticmethod
    def _first_of_each(table: pa.Table) -> list[int]:
        """Row positions that keep the first staged copy of each record, error and doc row."""
        seen: set[tuple[object, ...]] = set()
        keep = []
        columns = [table.column(c).to_pylist() for c in ("row_kind", "figure_id", "doc", "doc_sha256", "stage", "error")]
        for i, (kind, fid, doc, sha, stage, error) in enumerate(zip(*columns)):
            identity = (kind, fid) if kind == ROW_RECORD else (kind, doc, sha, stage, error)
            if identity not in seen:
                seen.add(identity)
                keep.append(i)
        return keep

    def finished_documents(self, model_id: str) -> set[tuple[str, str]]:
        """(doc, sha256) of the finished documents staged for `model_id`.

        Rows of another model anywhere in the staging area, even of unfinished documents,
        discard it all: a document staged in part by each would mix their vectors.
        """
        staged = self._read(light=True)
        if staged is not None and "model_id" in staged.column_names:
            models = {m for m in staged.column("model_id").to_pylist() if m}
            if models and models != {model_id}:
                logger.warning("discarding rows staged by another model (%s)", ", ".join(sorted(models)))
                self.clear()
                return set()
        table, _ = self._complete(staged)
        if "doc" not in table.column_names:
            return set()
        rows = table.filter(pc.equal(table.column("row_kind"), ROW_DOC))
        return set(zip(rows.column("doc").to_pylist(), rows.column("doc_sha256").to_pylist()))

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


STAGE_ERROR_COLUMN = "error"  # `stage_batch`'s answer for a batch it could not write: one row, the error


def stage_batch(batch: pa.Table, *, root: str) -> pa.Table:
    """Write an embedded batch to the staging area at `root` where it was made (`run_extract_and_embed`'s `then`).

    What goes back to the driver is a table of as many rows as were written and no data (one null
    column, `NULL_ROWS`), which the driver counts from Ray's block metadata without reading the
    block (`jobs.pipeline.output_tables`); or, when the batch could not be written, one row with the
    error (`STAGE_ERROR_COLUMN`): the driver stops the scan on it, because a full disk must not look
    like a crashed document, which is what Ray, told to drop a failed block, would make of an
    exception here. The images, vectors and pixel features then never reach the driver, which mapped
    ~0.5 GB of them from Ray's object store at 1,000 papers and ~1 GB at 5,000.
    """
    try:
        StagingArea(Path(root)).write(batch)
    except Exception as exc:  # any failure: reported to the driver, which stops the scan with it
        return pa.table({STAGE_ERROR_COLUMN: pa.array([f"{type(exc).__name__}: {exc}"], pa.string())})
    return pa.table({NULL_ROWS: pa.nulls(batch.num_rows)})
