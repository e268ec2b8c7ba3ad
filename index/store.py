"""The figure store: every panel record with its vector, as an append-only Parquet dataset.

Layout of a store folder (the same on local disk or shared storage)::

    STORE/manifest.json                 model id, dimension, dtype, counts, runs, files
    STORE/figures/part-000000.parquet   one immutable file per ingested batch
    STORE/index/...                     the FAISS index (see `index.faiss_index`)

Each Parquet file holds the scanner's `FIGURES_SCHEMA` columns plus `row_id`
(a dense int64 assigned by the store: 0, 1, 2, ... in ingest order; FAISS uses it
as the vector id), `vector` (a fixed_size_list of float16 or float32, L2-normalised
so inner product is cosine), `model_id`, `run_id` (the ingest run) and `thumbnail`
(null since nothing reads it; stores written before hold small JPEGs there, and both
kinds of file read alike).

Why this shape: files are written once under a temporary name and renamed, so a
crashed ingest leaves either a whole file or nothing; the manifest is rewritten the
same way after each file and is the list of what counts. DuckDB and pandas read the
folder directly (``SELECT ... FROM 'STORE/figures/*.parquet'``). Vectors from two
different models (or dimensions) can never be compared, so the store refuses to mix
them (`StoreMismatchError`). One writer at a time; any number of readers.
"""
from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scanner.decode import encode_png
from scanner.records import FIGURES_SCHEMA, NOISE_FLAGS, PanelRecord, records_to_table

logger = logging.getLogger(__name__)

FORMAT = "reusescan-store/1"
MANIFEST = "manifest.json"
FIGURES_DIR = "figures"
INDEX_DIR = "index"
REGIONS_DIR = "regions"  # sub-region vectors (`embedder.regions`, scan --crop-vectors): extra queries for crops
VECTOR_DTYPES = {"float32": pa.float32(), "float16": pa.float16()}
# The pixel check's precomputed luminances of a panel (`embedder.verify.pixel_features`), null when
# not computed; files written before the column existed read as null there (`FigureStore.read_table`).
PIXELS_COLUMN = "pixels"
# The grey image the pose check compares a panel as (`embedder.pose.pose_grey_bytes`), null when not
# computed; like `pixels`, files written before the column existed read as null.
POSE_COLUMN = "pose_grey"
# Reading rows by id streams each file: about STREAM_BYTES of the wanted columns decoded at a time,
# through a buffer of STREAM_BUFFER bytes; files are written in pages of at most PAGE_ROWS rows, so
# that a page (decoded whole) of images stays about a MB.
STREAM_BYTES = 4 << 20
STREAM_BUFFER = 1 << 20
PAGE_ROWS = 4
# Columns needed to decide which pairs are trivial (no pixels, no vectors).
KEY_COLUMNS = ["row_id", "figure_id", "doc", "doc_sha256", "page", "x0", "y0", "x1", "y1", "parent_id", "flags"]


class StoreError(Exception):
    """Base class of the store's errors."""


class StoreMismatchError(StoreError):
    """Vectors of another model, dimension or dtype were offered to a store (or index)."""


class StoreCorruptError(StoreError):
    """A file the manifest lists is missing, of another size than written, or unreadable."""


def store_schema(dim: int, dtype: str = "float32") -> pa.Schema:
    """The Parquet schema of a store holding `dim`-dimensional vectors of `dtype`."""
    if dtype not in VECTOR_DTYPES:
        raise ValueError(f"vector dtype must be one of {sorted(VECTOR_DTYPES)}, not {dtype!r}")
    if dim <= 0:
        raise ValueError(f"dimension must be positive, not {dim}")
    return pa.schema(
        [pa.field("row_id", pa.int64(), nullable=False)]
        + list(FIGURES_SCHEMA)
        + [
            pa.field("vector", pa.list_(VECTOR_DTYPES[dtype], dim)),
            pa.field("model_id", pa.string()),
            pa.field("run_id", pa.string()),
            pa.field("thumbnail", pa.binary()),
            pa.field(PIXELS_COLUMN, pa.binary()),
            pa.field(POSE_COLUMN, pa.binary()),
        ]
    )


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write `data` as JSON to a temporary sibling of `path`, fsync it, then rename over `path`."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Float32 copy of `vectors` (n, d) with unit rows; zero or non-finite rows are an error."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array (n, d), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("vectors contain NaN or infinity")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms <= 1e-12).any():
        raise ValueError(f"{int((norms <= 1e-12).sum())} zero vector(s) cannot be normalised")
    return x / norms


def make_thumbnail(image: bytes | None, max_side: int = 128, quality: int = 80, fmt: str = "JPEG") -> bytes | None:
    """Small copy (JPEG by default, or PNG) of an encoded image (the record's PNG); None for no image.

    The PNG is a working copy (the report decodes it again to draw it): extraction's fast encoder writes it.
    """
    if not image:
        return None
    from PIL import Image

    with Image.open(io.BytesIO(image)) as src:
        im = src.convert("RGB")
    im.thumbnail((max_side, max_side))
    if fmt == "PNG":
        return encode_png(np.asarray(im))
    out = io.BytesIO()
    im.save(out, format=fmt, quality=quality)
    return out.getvalue()


def vectors_from_arrow(column: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """(n, dim) float32 array from a fixed_size_list column (any chunking or slicing)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [np.asarray(c.flatten().to_numpy(zero_copy_only=False)).reshape(-1, dim) for c in chunks if len(c)]
    if not parts:
        return np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def _figures_table(figures: pa.Table | Sequence[PanelRecord]) -> pa.Table:
    """`figures` as a table with exactly the `FIGURES_SCHEMA` columns and types."""
    table = figures if isinstance(figures, pa.Table) else records_to_table(list(figures))
    return table.select(FIGURES_SCHEMA.names).cast(FIGURES_SCHEMA)


def _write_parquet_atomic(table: pa.Table, final: Path) -> int:
    """Write `table` to a temporary sibling of `final`, fsync it, rename it into place; its size in bytes.

    Page checksums are written so that a flipped byte is an error on reading (`_read_parquet`),
    not a wrong vector; the fsync keeps a power cut from committing a manifest whose file is empty.
    """
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    # pages of at most PAGE_ROWS rows: a page is decoded whole, and with the default (1,024 rows a
    # page) one page held every image of a 775-panel file, 205 MB, to read one panel
    pq.write_table(table, tmp, compression="zstd", row_group_size=65536, write_page_checksum=True,
                   write_batch_size=PAGE_ROWS)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final.stat().st_size


def _unreadable(path: Path | str, exc: Exception) -> StoreCorruptError:
    return StoreCorruptError(f"store file {path} cannot be read ({type(exc).__name__}: {exc}); restore it "
                             "from a backup, or re-scan into a new store")


def _read_parquet(path: Path | str, columns: Sequence[str] | None = None, expect_bytes: int | None = None) -> pa.Table:
    """`pq.read_table` of a store file, any damage raised as `StoreCorruptError` naming the file.

    `expect_bytes` (the size the manifest recorded when the file was committed) catches a
    truncated or overwritten file before its footer is even read.
    """
    _check_size(Path(path), expect_bytes)
    try:
        return pq.read_table(path, columns=None if columns is None else list(columns), page_checksum_verification=True)
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from exc


#: `pick(batch, first)` of `stream_rows`: the positions in `batch` (whose first row is row `first` of the
#: file) to keep, ascending; None once no later row is wanted.
RowPicker = Callable[[pa.RecordBatch, int], np.ndarray | None]


def stream_rows(path: Path, columns: Sequence[str], pick: RowPicker, *, batch_rows: int | None = None,
                verify_pages: bool = False) -> pa.Table:
    """The rows of Parquet file `path` that `pick` keeps (`columns` of them), read `batch_rows` rows at a
    time (None: about `STREAM_BYTES` of those columns, from the file's own metadata).

    Memory holds the rows kept and one batch, not the file's columns: `pq.read_table` with a
    filter decodes a whole column before filtering it (205 MB of images for one panel).
    """
    kept = []
    first = 0
    with pq.ParquetFile(path, buffer_size=STREAM_BUFFER, pre_buffer=False,
                        page_checksum_verification=verify_pages) as parquet:
        size = batch_rows or _rows_of_bytes(parquet.metadata, columns, STREAM_BYTES)
        for batch in parquet.iter_batches(batch_size=size, columns=list(columns), use_threads=False):
            rows = pick(batch, first)
            if rows is None:
                break
            if len(rows):
                kept.append(batch.take(pa.array(rows, pa.int64())))
            first += batch.num_rows
        schema = pa.schema([parquet.schema_arrow.field(c) for c in columns])
    return pa.Table.from_batches(kept, schema=schema)


def _rows_of_bytes(meta: pq.FileMetaData, columns: Sequence[str], budget: int) -> int:
    """How many rows of `columns` hold about `budget` bytes uncompressed (1 to 65,536)."""
    names = set(columns)
    row_bytes = sum(meta.row_group(g).column(c).total_uncompressed_size for g in range(meta.num_row_groups)
                    for c in range(meta.num_columns)
                    if meta.row_group(g).column(c).path_in_schema.split(".")[0] in names) / max(1, meta.num_rows)
    return int(np.clip(budget // max(row_bytes, 1.0), 1, 65536))


def _read_parquet_rows(path: Path, columns: Sequence[str], row_ids: np.ndarray,
                       expect_bytes: int | None = None) -> pa.Table:
    """The rows of store file `path` whose row id is in `row_ids`, read about `STREAM_BYTES` at a time
    (`stream_rows`). Damage is raised as `StoreCorruptError`, as by `_read_parquet`."""
    _check_size(path, expect_bytes)
    names = list(dict.fromkeys(["row_id", *columns]))
    try:
        return stream_rows(path, names, lambda batch, _: np.flatnonzero(np.isin(batch.column("row_id").to_numpy(), row_ids)),
                           verify_pages=True).select(list(columns))
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from exc


def _check_size(path: Path, expect_bytes: int | None) -> None:
    """Raise `StoreCorruptError` when store file `path` is missing or not of the size committed."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise StoreCorruptError(f"store file {path} is missing ({exc}); restore it from a backup, "
                                "or re-scan into a new store") from exc
    if expect_bytes is not None and size != expect_bytes:
        raise StoreCorruptError(f"store file {path} has {size} bytes, {expect_bytes} were written: it was "
                                "truncated or replaced; restore it from a backup, or re-scan into a new store")


def _read_schema(path: Path | str) -> pa.Schema:
    """The Parquet schema of a store file, damage raised as `StoreCorruptError`."""
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from exc


@dataclass(frozen=True)
class BatchInfo:
    """What one `append` wrote."""

    file: str            # path relative to the store root
    run_id: str
    rows: int
    first_row_id: int    # row ids first_row_id .. first_row_id + rows - 1


class FigureStore:
    """An append-only Parquet dataset of panel records and their vectors (see module doc)."""

    def __init__(self, root: str | os.PathLike[str], manifest: dict[str, Any]) -> None:
        self.root = Path(root)
        self._manifest = manifest
        self._sizes: dict[str, int | None] = {}  # file -> committed size, filled by `_expected_bytes`

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls, root: str | os.PathLike[str], *, model_id: str, dim: int, dtype: str = "float32"
    ) -> FigureStore:
        """Make a new, empty store; an existing store at `root` is an error."""
        root = Path(root)
        if (root / MANIFEST).exists():
            raise StoreError(f"a store already exists at {root}")
        store_schema(dim, dtype)  # validates dim and dtype
        if not model_id:
            raise ValueError("model_id must be a non-empty string")
        (root / FIGURES_DIR).mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "model_id": model_id,
            "dim": int(dim),
            "dtype": dtype,
            "num_rows": 0,
            "num_noise": 0,
            "files": [],
            "runs": {},
            "index": None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_json_atomic(root / MANIFEST, manifest)
        return cls(root, manifest)

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> FigureStore:
        """Open an existing store (reads only the manifest)."""
        root = Path(root)
        path = root / MANIFEST
        if not path.exists():
            raise StoreError(f"no store at {root} (missing {MANIFEST})")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:  # written atomically, so only outside damage gets here
            raise StoreCorruptError(f"{path} is not valid JSON ({exc}); restore it from a backup") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise StoreError(f"{path} is not a {FORMAT} manifest")
        store = cls(root, manifest)
        orphans = store.orphan_files()
        if orphans:
            logger.warning("%s: %d Parquet file(s) not in the manifest (an interrupted ingest); "
                           "they are ignored and will be overwritten: %s", root, len(orphans), orphans)
        return store

    @classmethod
    def open_or_create(
        cls, root: str | os.PathLike[str], *, model_id: str, dim: int, dtype: str = "float32"
    ) -> FigureStore:
        """Open the store at `root` if there is one (it must match), else create it."""
        if (Path(root) / MANIFEST).exists():
            store = cls.open(root)
            store.check_compatible(model_id=model_id, dim=dim)
            return store
        return cls.create(root, model_id=model_id, dim=dim, dtype=dtype)

    # --------------------------------------------------------------- properties
    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the manifest."""
        return json.loads(json.dumps(self._manifest))

    @property
    def model_id(self) -> str:
        return str(self._manifest["model_id"])

    @property
    def dim(self) -> int:
        return int(self._manifest["dim"])

    @property
    def dtype(self) -> str:
        return str(self._manifest["dtype"])

    @property
    def num_rows(self) -> int:
        return int(self._manifest["num_rows"])

    @property
    def files(self) -> list[str]:
        """Store files (relative to the root) in ingest order."""
        return [f["file"] for f in self._manifest["files"]]

    @property
    def index_dir(self) -> Path:
        return self.root / INDEX_DIR

    @property
    def schema(self) -> pa.Schema:
        return store_schema(self.dim, self.dtype)

    def has_column(self, name: str) -> bool:
        """Whether every store file has column `name` (a file written before it existed reads it as nulls)."""
        return all(name in _read_schema(path).names for path in self.paths(self.files))

    def orphan_files(self) -> list[str]:
        """Parquet files in figures/ that the manifest does not list."""
        listed = set(self.files)
        found = sorted(f"{FIGURES_DIR}/{p.name}" for p in (self.root / FIGURES_DIR).glob("*.parquet"))
        return [f for f in found if f not in listed]

    def check_compatible(self, *, model_id: str, dim: int) -> None:
        """Raise `StoreMismatchError` unless vectors of (`model_id`, `dim`) belong in this store."""
        if model_id != self.model_id:
            raise StoreMismatchError(
                f"store {self.root} holds vectors of model {self.model_id!r}; refusing vectors of "
                f"model {model_id!r} (vectors of different models are not comparable: re-embed, or "
                f"use a new store)")
        if int(dim) != self.dim:
            raise StoreMismatchError(
                f"store {self.root} holds {self.dim}-d vectors; refusing {dim}-d vectors")

    # ------------------------------------------------------------------ writing
    def append(
        self,
        figures: pa.Table | Sequence[PanelRecord],
        vectors: np.ndarray,
        *,
        model_id: str,
        run_id: str,
        keep_images: bool = True,
        pixels: pa.Array | pa.ChunkedArray | Sequence[bytes | None] | None = None,
        pose_greys: pa.Array | pa.ChunkedArray | Sequence[bytes | None] | None = None,
        regions: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> BatchInfo:
        """Write one batch of records and their vectors as a new immutable Parquet file.

        `figures` is a table with the `FIGURES_SCHEMA` columns (or PanelRecords),
        `vectors` an (n, dim) array aligned with it (normalised here to unit length).
        With `keep_images=False` the lossless `image` column is stored empty (null):
        at corpus scale the PDFs stay the source of the pixels and the store keeps
        provenance and vector only. `pixels` (aligned with `figures`, or None for all null)
        fills the `pixels` column (see `PIXELS_COLUMN`), `pose_greys` likewise `POSE_COLUMN`.
        `regions` (owner positions in this batch, their vectors) are the batch's sub-region vectors
        (`write_region_vectors`), written before the manifest commits the batch so a crash cannot
        keep the panels and lose their regions.
        Raises `StoreMismatchError` for another model or dimension. Returns what was
        written; the manifest is updated only after the file is in place.
        """
        table = _figures_table(figures)
        unit = self._checked_vectors(table, vectors, model_id=model_id, run_id=run_id)
        if not keep_images:
            table = table.set_column(table.schema.get_field_index("image"), "image", pa.nulls(table.num_rows, pa.binary()))
        first = self.num_rows
        rel = f"{FIGURES_DIR}/part-{len(self._manifest['files']):06d}.parquet"
        batch = self._arrow_batch(table, unit, first, model_id, run_id)
        for name, values in ((PIXELS_COLUMN, pixels), (POSE_COLUMN, pose_greys)):
            if values is None:
                continue
            if len(values) != table.num_rows:
                raise ValueError(f"{table.num_rows} records but {len(values)} values of {name}")
            column = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values), pa.binary())
            batch = batch.set_column(batch.schema.get_field_index(name), name, column.cast(pa.binary()))
        info = BatchInfo(file=rel, run_id=run_id, rows=table.num_rows, first_row_id=first)
        # The side file first: an interrupted run may have left one of this name for other rows.
        owners, region_vectors = regions if regions is not None else (np.zeros(0, np.int64), np.zeros((0, self.dim)))
        self._write_regions(info, owners, region_vectors, remove_stale=True)
        size = _write_parquet_atomic(batch, self.root / rel)
        self._record_file(rel, run_id, table, first, size)
        logger.info("store %s: wrote %s (%d rows, run %s)", self.root, rel, table.num_rows, run_id)
        return info

    def _checked_vectors(self, table: pa.Table, vectors: np.ndarray, *, model_id: str, run_id: str) -> np.ndarray:
        """Unit-length float32 `vectors` after checking they fit this store and `table`."""
        vecs = np.asarray(vectors)
        if vecs.ndim != 2:
            raise ValueError(f"vectors must be 2-D (n, d), got shape {vecs.shape}")
        self.check_compatible(model_id=model_id, dim=vecs.shape[1])
        if len(vecs) != table.num_rows:
            raise ValueError(f"{table.num_rows} records but {len(vecs)} vectors")
        if not run_id:
            raise ValueError("run_id must be a non-empty string")
        if table.num_rows == 0:
            raise ValueError("refusing to write an empty batch")
        return l2_normalize(vecs)

    def _arrow_batch(self, table: pa.Table, unit: np.ndarray, first: int, model_id: str, run_id: str) -> pa.Table:
        """The stored form of a batch: row ids from `first`, the record columns, vector, model and run.

        The `thumbnail` column stays in the schema (older stores hold JPEGs there) but is
        written null: nothing reads it, the report makes its own thumbnails.
        """
        n = table.num_rows
        np_dtype = np.float16 if self.dtype == "float16" else np.float32
        flat = pa.array(unit.astype(np_dtype).ravel(), type=VECTOR_DTYPES[self.dtype])
        return pa.Table.from_arrays(
            [pa.array(np.arange(first, first + n, dtype=np.int64))]
            + [table.column(name) for name in FIGURES_SCHEMA.names]
            + [
                pa.FixedSizeListArray.from_arrays(flat, self.dim),
                pa.array([model_id] * n, type=pa.string()),
                pa.array([run_id] * n, type=pa.string()),
                pa.nulls(n, pa.binary()),
                pa.nulls(n, pa.binary()),
                pa.nulls(n, pa.binary()),
            ],
            schema=self.schema,
        )

    def _record_file(self, rel: str, run_id: str, table: pa.Table, first: int, size: int) -> None:
        """Add a written file to the manifest (counts, run, size in bytes) and rewrite the manifest atomically."""
        n = table.num_rows
        noise = int(noise_mask(table.column("flags").to_pylist()).sum())
        entry = {"file": rel, "run_id": run_id, "rows": n, "first_row_id": first, "noise": noise, "bytes": size,
                 "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self._manifest["files"].append(entry)
        self._manifest["num_rows"] = first + n
        self._manifest["num_noise"] = int(self._manifest.get("num_noise", 0)) + noise
        run = self._manifest["runs"].setdefault(run_id, {"rows": 0, "files": []})
        run["rows"] += n
        run["files"].append(rel)
        write_json_atomic(self.root / MANIFEST, self._manifest)

    def write_region_vectors(self, info: BatchInfo, owners: np.ndarray, vectors: np.ndarray) -> None:
        """Store sub-region vectors of the records `append` just wrote (`info`), in a side file.

        `owners` (M,) are positions in that batch (0 .. info.rows - 1), `vectors` (M, dim)
        their sub-region vectors. They live in REGIONS/<name of the figures file> with
        columns row_id (the panel's, repeated) and vector, so the figures schema and
        everything reading it are untouched; a store without them simply has none.
        `append(..., regions=...)` writes them before its commit instead (crash-safe).
        """
        self._write_regions(info, owners, vectors, remove_stale=False)

    def _write_regions(self, info: BatchInfo, owners: np.ndarray, vectors: np.ndarray, *, remove_stale: bool) -> None:
        """Write the side file of `info`'s batch; with no regions, remove a stale one if `remove_stale`."""
        owners = np.asarray(owners, dtype=np.int64)
        if len(owners) != len(vectors):
            raise ValueError(f"{len(owners)} owners but {len(vectors)} region vectors")
        if len(owners) and (owners.min() < 0 or owners.max() >= info.rows):
            raise ValueError("region owners must be positions in the batch")
        if not len(owners):
            if remove_stale:  # left by an interrupted run for the rows this batch now takes
                (self.root / REGIONS_DIR / Path(info.file).name).unlink(missing_ok=True)
            return
        unit = l2_normalize(np.asarray(vectors).reshape(len(owners), -1))
        self.check_compatible(model_id=self.model_id, dim=unit.shape[1])
        flat = pa.array(unit.astype(np.float32).ravel(), type=pa.float32())
        table = pa.table({"row_id": pa.array(owners + info.first_row_id),
                          "vector": pa.FixedSizeListArray.from_arrays(flat, self.dim)})
        (self.root / REGIONS_DIR).mkdir(exist_ok=True)
        _write_parquet_atomic(table, self.root / REGIONS_DIR / Path(info.file).name)

    def read_region_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(row_ids, vectors) of all stored sub-region vectors (ids repeat: several per panel), float32."""
        ids, vecs = [np.zeros(0, np.int64)], [np.zeros((0, self.dim), np.float32)]
        for entry in self._manifest["files"]:
            path = self.root / REGIONS_DIR / Path(entry["file"]).name
            if not path.exists():
                continue
            t = _read_parquet(path)
            rid = t.column("row_id").to_numpy().astype(np.int64)
            ok = (rid >= entry["first_row_id"]) & (rid < entry["first_row_id"] + entry["rows"])  # a stale file: skip
            if not ok.all():
                logger.warning("%s: region vectors do not belong to %s; ignored", path, entry["file"])
                continue
            ids.append(rid)
            vecs.append(vectors_from_arrow(t.column("vector"), self.dim))
        return np.concatenate(ids), np.concatenate(vecs)

    def set_index_info(self, info: dict[str, Any] | None) -> None:
        """Record the current FAISS index parameters in the manifest (written atomically)."""
        self._manifest["index"] = info
        write_json_atomic(self.root / MANIFEST, self._manifest)

    # ------------------------------------------------------------------ reading
    def paths(self, files: Sequence[str] | None = None) -> list[str]:
        """Absolute paths of `files` (default: every file in the manifest)."""
        return [str(self.root / f) for f in (self.files if files is None else files)]

    def read_table(
        self, columns: Sequence[str] | None = None, *, files: Sequence[str] | None = None,
        row_ids: Sequence[int] | None = None,
    ) -> pa.Table:
        """The records of `files` (default all) as one Arrow table, in row-id order.

        With `row_ids`, only those rows, reading only the files whose row-id range
        holds some of them (so a report touching a few panels does not read every
        stored image), streamed through them (`_read_parquet_rows`: memory holds those rows).
        """
        wanted = None
        if row_ids is not None:
            wanted = np.unique(np.asarray(row_ids, dtype=np.int64))
            files = [e["file"] for e in self._manifest["files"]
                     if (files is None or e["file"] in files)
                     and np.any((wanted >= e["first_row_id"]) & (wanted < e["first_row_id"] + e["rows"]))]
        chosen_files = self.files if files is None else list(files)
        paths = self.paths(chosen_files)
        if not paths:
            schema = self.schema
            if columns is not None:
                schema = pa.schema([schema.field(c) for c in columns])
            return schema.empty_table()
        return pa.concat_tables(self._read_file(rel, columns, wanted) for rel in chosen_files)

    def _expected_bytes(self, rel: str) -> int | None:
        """The size the manifest recorded for store file `rel` (None: written before sizes were kept)."""
        if len(self._sizes) != len(self._manifest["files"]):  # the manifest only grows
            self._sizes = {e["file"]: e.get("bytes") for e in self._manifest["files"]}
        size = self._sizes.get(rel)
        return int(size) if size is not None else None

    def _read_file(self, rel: str, columns: Sequence[str] | None, row_ids: np.ndarray | None) -> pa.Table:
        """One store file's `columns` (default: the store schema's), only rows `row_ids` if given; a column
        the file predates (such as `pixels`) reads as nulls. Damage raises `StoreCorruptError`."""
        schema = self.schema
        wanted = list(columns) if columns else schema.names
        path, expect = self.root / rel, self._expected_bytes(rel)
        _check_size(path, expect)  # before the footer is read: a truncated file says so plainly
        present = set(_read_schema(path).names)
        readable = [c for c in wanted if c in present]
        table = (_read_parquet(path, readable, expect_bytes=expect) if row_ids is None
                 else _read_parquet_rows(path, readable, row_ids, expect_bytes=expect))
        if all(c in present for c in wanted):
            return table
        return pa.Table.from_arrays(
            [table.column(c) if c in present else pa.nulls(table.num_rows, schema.field(c).type) for c in wanted],
            schema=pa.schema([schema.field(c) for c in wanted]))

    def read_keys(self, files: Sequence[str] | None = None) -> pa.Table:
        """The columns that decide trivial pairs (no pixels, no vectors)."""
        return self.read_table(KEY_COLUMNS, files=files)

    def iter_vectors(
        self, files: Sequence[str] | None = None, *, include_noise: bool = True
    ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield (file, row_ids int64, vectors float32 (n, dim)) one store file at a time."""
        for rel in self.files if files is None else files:
            t = _read_parquet(self.root / rel, ["row_id", "flags", "vector"], expect_bytes=self._expected_bytes(rel))
            ids = t.column("row_id").to_numpy().astype(np.int64)
            vecs = vectors_from_arrow(t.column("vector"), self.dim)
            if not include_noise:
                keep = ~noise_mask(t.column("flags").to_pylist())
                ids, vecs = ids[keep], vecs[keep]
            yield rel, ids, vecs

    def read_vectors(
        self, files: Sequence[str] | None = None, *, include_noise: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(row_ids, vectors) of `files` (default all) in row-id order, float32."""
        ids, vecs = [], []
        for _, i, v in self.iter_vectors(files, include_noise=include_noise):
            ids.append(i)
            vecs.append(v)
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        return np.concatenate(ids), np.concatenate(vecs)

    def dense_vectors(self) -> np.ndarray:
        """All vectors as one (num_rows, dim) float32 array indexed by row id."""
        out = np.zeros((self.num_rows, self.dim), dtype=np.float32)
        for _, ids, vecs in self.iter_vectors():
            out[ids] = vecs
        return out

    def sample_vectors(self, n: int, *, include_noise: bool = False, seed: int = 0) -> np.ndarray:
        """About `n` vectors drawn uniformly from the store, reading one file at a time."""
        total = self.num_rows - (0 if include_noise else int(self._manifest.get("num_noise", 0)))
        rng = np.random.default_rng(seed)
        frac = min(1.0, n / max(total, 1))
        parts = []
        for _, _, vecs in self.iter_vectors(include_noise=include_noise):
            take = vecs if frac >= 1.0 else vecs[rng.random(len(vecs)) < frac]
            parts.append(take)
        if not parts:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(parts)


def noise_mask(flags: Sequence[Sequence[str] | None]) -> np.ndarray:
    """True where a record's flags include one of the noise flags (tiny, uniform, boilerplate)."""
    return np.fromiter((bool(NOISE_FLAGS.intersection(f or ())) for f in flags), dtype=bool, count=len(flags))
