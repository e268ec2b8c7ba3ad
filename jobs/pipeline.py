"""The Ray Data half of a scan: input files -> panel records -> vectors.

Thin on purpose (the design's "Ray layer is thin"): a stateless function
extracts one document per task (PyMuPDF is not thread-safe, and a Ray task runs
in its own worker process), and a class loads the model once per actor and
embeds batches of panels. Everything else (the store, the index, matching,
reports) runs on the driver (`jobs.ingest`, `jobs.match`, `jobs.report_rows`).

The rows flowing out of extraction are of three kinds (`row_kind`): `record`
(a panel or figure), `error` (one line of errors.csv) and `doc` (one per input
document, carrying its page count and timing) so that one Ray dataset carries
everything the summary and errors.csv need.
"""
from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa
import ray
import ray.data
from PIL import Image
from ray.data import ActorPoolStrategy
from ray.data.block import BlockAccessor

from index.store import PIXELS_COLUMN, POSE_COLUMN
from jobs.scoring import model_id_of
from scanner.discover import document_key
from scanner.extract import DocumentResult, ExtractLimits, extract_document
from scanner.records import FIGURES_SCHEMA, records_to_table

if TYPE_CHECKING:  # pragma: no cover
    from embedder.inference import Embedder

logger = logging.getLogger(__name__)

# torch and the embedder are imported inside `EmbedPanels` and `model_id_of`, not
# here: Ray's extraction workers import this module to run `extract_paths`, and
# they (recycled every 50 documents) must not pay for loading torch.

ROW_RECORD, ROW_ERROR, ROW_DOC = "record", "error", "doc"
# The one column of an output block that holds only a row count (`output_tables` does not read it)
NULL_ROWS = "null_rows"
EXTRACT_SCHEMA = FIGURES_SCHEMA.append(pa.field("row_kind", pa.string())).append(
    pa.field("stage", pa.string())).append(pa.field("error", pa.string())).append(
    pa.field("pages", pa.int32())).append(pa.field("seconds", pa.float32())).append(
    pa.field("records", pa.int32()))  # on `doc` rows: how many record rows the document has


@dataclass(frozen=True)
class PipelineOptions:
    """Resources and batch sizes of the Ray Data stages (defaults fit the local machine)."""

    model_path: str | None = None      # None: the checkpoint shipped in the package
    embed_batch_size: int = 32
    embed_actors: int | None = None    # None: one per GPU, else about half the CPUs (see resolve_resources)
    gpus_per_actor: float = 0.0        # set by `resolve_resources` when GPUs are present
    # Ray CPU slots of an embedding actor and of an extraction task. Half a slot each on a CPU: neither
    # keeps a core busy (an extraction task waits on Ray Data between documents and on the PDF, the
    # actor on extraction), so on 2 CPUs one actor and three extraction tasks share the cores. 106 real
    # PDFs: 88 s of extraction + embedding against 126 s with a whole slot each (docs/benchmarks.md).
    cpus_per_actor: float = 0.5        # with GPUs `resolve_resources` makes it 1 (the actor feeds a GPU)
    cpus_per_extract: float = 0.5
    max_pages: int = 2_000
    doc_timeout_s: float = 300.0
    crop_vectors: bool = False         # also embed sub-regions of large panels (`embedder.regions`), for crops


def _doc_rows(result: DocumentResult) -> pa.Table:
    """One document's extraction result as rows of `EXTRACT_SCHEMA`."""
    records = records_to_table(result.records)
    n = records.num_rows
    records = records.append_column("row_kind", pa.array([ROW_RECORD] * n, pa.string()))
    for name, typ in (("stage", pa.string()), ("error", pa.string()), ("pages", pa.int32()), ("seconds", pa.float32()),
                      ("records", pa.int32())):
        records = records.append_column(name, pa.nulls(n, typ))
    extra_rows: list[dict[str, Any]] = [
        {"doc": e.input, "doc_sha256": result.doc_sha256, "row_kind": ROW_ERROR, "stage": e.stage, "error": e.error}
        for e in result.errors
    ]
    extra_rows.append({"doc": result.doc, "doc_sha256": result.doc_sha256, "row_kind": ROW_DOC,
                       "pages": result.pages, "seconds": result.seconds, "records": n})
    filled = [{name: row.get(name) for name in EXTRACT_SCHEMA.names} for row in extra_rows]
    for row in filled:
        row["flags"] = []
    return pa.concat_tables([records.cast(EXTRACT_SCHEMA), pa.Table.from_pylist(filled, schema=EXTRACT_SCHEMA)])


def extract_paths(batch: dict[str, np.ndarray], *, root: str, max_pages: int, doc_timeout_s: float) -> pa.Table:
    """Ray Data task body: extract every document path in `batch` (normally one).

    Never raises for a bad document: `extract_document` turns every problem into
    error rows, and anything it did not foresee becomes one more error row here,
    so one document can never take the scan down.
    """
    limits = ExtractLimits(max_pages=max_pages, timeout_s=doc_timeout_s)
    tables = []
    for path in batch["path"]:
        try:
            tables.append(_doc_rows(extract_document(Path(str(path)), Path(root), limits)))
        except Exception as exc:  # pragma: no cover - extract_document already catches
            logger.exception("extraction crashed on %s", path)
            rel = document_key(Path(str(path)), Path(root))
            row: dict[str, Any] = {name: None for name in EXTRACT_SCHEMA.names}
            row.update(doc=rel, row_kind=ROW_ERROR, stage="extract", error=f"{type(exc).__name__}: {exc}", flags=[])
            tables.append(pa.Table.from_pylist([row], schema=EXTRACT_SCHEMA))
    return pa.concat_tables(tables) if tables else EXTRACT_SCHEMA.empty_table()


class EmbedPanels:
    """Ray Data actor: loads the model once, then embeds batches of panel rows.

    Adds a `vector` column (list<float32>, null for error and document rows),
    `model_id`, `pixels`: what the model's pixel check reads of the panel
    (`embedder.verify.pixel_features`), and `pose_grey`: the grey image the pose
    check compares it as (`embedder.pose.pose_grey_bytes`), both computed here once
    while the panel is decoded. Noise panels (tiny, uniform) are embedded too: they are few and
    cheap, and the store keeps one vector per record so `--include-noise` works.
    """

    def __init__(self, model_path: str | None, batch_size: int, crop_vectors: bool = False,
                 then: Callable[[pa.Table], pa.Table] | None = None) -> None:
        import torch  # worker-side, see the note at the top

        from embedder.fusion import PixelFusion
        from embedder.inference import Embedder

        # One actor per CPU slot: let it use the threads of the slot it holds.
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1)))
        self.embedder: Embedder = Embedder.load(model_path, batch_size=batch_size)
        self.model_id = model_id_of(model_path)
        self.crop_vectors = crop_vectors
        self.then = then  # what becomes of an embedded batch here (`run_extract_and_embed`)
        fusion = PixelFusion.from_meta(self.embedder.meta)
        self.align = fusion.align if fusion is not None else None  # the model's pixel check, if it has one

    def __call__(self, batch: pa.Table) -> pa.Table:
        from embedder.pose import pose_grey_bytes  # worker-side, see the note at the top

        kinds = batch.column("row_kind").to_pylist()
        images = batch.column("image").to_pylist()
        todo = [i for i, k in enumerate(kinds) if k == ROW_RECORD]
        vectors: list[list[float] | None] = [None] * batch.num_rows
        pil: list[Image.Image] = []
        pixels: list[bytes | None] = [None] * batch.num_rows
        pose_greys: list[bytes | None] = [None] * batch.num_rows
        if todo:
            pil = [Image.open(io.BytesIO(images[i])).convert("RGB") for i in todo]
            vecs = self.embedder.embed(pil)
            for i, v in zip(todo, vecs):
                vectors[i] = v.tolist()
            for i, p, g in zip(todo, self._pixel_features(pil), _each_or_none(pose_grey_bytes, pil)):
                pixels[i], pose_greys[i] = p, g
        batch = batch.append_column("vector", pa.array(vectors, pa.list_(pa.float32())))
        if self.crop_vectors:
            batch = batch.append_column(REGION_COLUMN, region_vector_column(self.embedder, pil, todo, batch.num_rows))
        batch = batch.append_column("model_id", pa.array([self.model_id] * batch.num_rows, pa.string()))
        batch = batch.append_column(PIXELS_COLUMN, pa.array(pixels, pa.binary()))
        batch = batch.append_column(POSE_COLUMN, pa.array(pose_greys, pa.binary()))
        return batch if self.then is None else self.then(batch)

    def _pixel_features(self, images: list[Image.Image]) -> list[bytes | None]:
        """What the model's pixel check reads of each panel (`embedder.verify.pixel_features`), computed once
        here while the panel is decoded; None without a pixel check or for an image it cannot use."""
        from embedder.verify import pixel_features

        align = self.align
        if align is None:
            return [None] * len(images)
        return _each_or_none(lambda image: pixel_features(image, align), images)


def _each_or_none(make: Callable[[Image.Image], bytes], images: list[Image.Image]) -> list[bytes | None]:
    """`make` of each image; None for one it cannot use (ValueError: an empty image)."""
    out: list[bytes | None] = []
    for image in images:
        try:
            out.append(make(image))
        except ValueError:
            out.append(None)
    return out


REGION_COLUMN = "region_vectors"  # with `crop_vectors`: the sub-region vectors of a record, flattened (null: none)


def region_vector_column(embedder: Embedder, pil: list[Image.Image], todo: list[int], n_rows: int) -> pa.Array:
    """`REGION_COLUMN` of a batch: each record's sub-region vectors (`embedder.regions`) as one flat
    list<float32> (regions x dim), null for rows without a record or panels too small for sub-regions."""
    from embedder.regions import embed_regions

    flat: list[list[float] | None] = [None] * n_rows
    owners, vecs = embed_regions(embedder, pil)
    for pos in np.unique(owners).tolist():
        flat[todo[pos]] = vecs[owners == pos].ravel().tolist()
    return pa.array(flat, pa.list_(pa.float32()))


def resolve_resources(options: PipelineOptions) -> PipelineOptions:
    """Fill in GPU use and actor counts from what the Ray cluster offers.

    With GPUs: one actor per GPU (or the number asked for, at most that), each
    holding a whole GPU (the encoder runs on CUDA in reduced precision there).
    Without: CPU actors, by default one per two CPUs, always leaving at least
    one CPU for extraction tasks so the two stages overlap instead of queueing.
    """
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 1))
    if gpus > 0:
        return replace(options, gpus_per_actor=1.0, cpus_per_actor=max(1.0, options.cpus_per_actor),
                       embed_actors=min(options.embed_actors or gpus, gpus))
    wanted = options.embed_actors or max(1, cpus // 2)
    actors = max(1, min(wanted, cpus - 1))
    return replace(options, gpus_per_actor=0.0, embed_actors=actors)


def run_extract_and_embed(paths: Sequence[Path], root: Path, options: PipelineOptions, *,
                          then: Callable[[pa.Table], pa.Table] | None = None) -> Iterator[pa.Table]:
    """Stream extraction + embedding over Ray Data; yields pyarrow batches of rows (or what `then` makes of them).

    `then`, when given, runs on each embedded batch in the embedding actor, and the driver gets
    what it returns instead of the batch (`jobs.staging.stage_batch` writes the batch there, so a
    scan's images never pass through the driver, and returns rows of nulls, which the driver counts
    without reading: `output_tables`). The caller must have called `ray.init` (see `jobs.ray_runtime`).
    """
    if not paths:
        return
    options = resolve_resources(options)
    ds: ray.data.Dataset = ray.data.from_items([{"path": str(p)} for p in paths], override_num_blocks=max(1, len(paths)))
    ds = ds.map_batches(
        cast(Callable[[dict[str, np.ndarray]], pa.Table], extract_paths),  # its keyword arguments: fn_kwargs
        batch_size=1,
        batch_format="numpy",
        fn_kwargs={"root": str(root), "max_pages": options.max_pages, "doc_timeout_s": options.doc_timeout_s},
        num_cpus=options.cpus_per_extract,
        # Recycle the worker process every 50 documents: MuPDF's caches and the
        # allocator's fragmentation are then returned to the OS on long runs. A
        # differing remote arg also keeps Ray from fusing extraction into the
        # embedding actor, so extraction runs in parallel tasks.
        max_calls=50,
    )
    ds = ds.map_batches(
        EmbedPanels,
        batch_size=options.embed_batch_size,
        batch_format="pyarrow",
        fn_constructor_kwargs={"model_path": options.model_path, "batch_size": options.embed_batch_size,
                               "crop_vectors": options.crop_vectors, "then": then},
        compute=ActorPoolStrategy(size=options.embed_actors),
        num_cpus=options.cpus_per_actor,
        num_gpus=options.gpus_per_actor or None,
    )
    # A document whose task still fails must not end the scan: its block is
    # dropped and `jobs.ingest.ingest` reports it as an error (no `doc` row came back).
    ray.data.DataContext.get_current().max_errored_blocks = len(paths)
    started = time.monotonic()
    yield from output_tables(ds)
    logger.info("extract+embed finished in %.1f s", time.monotonic() - started)


def output_tables(ds: ray.data.Dataset) -> Iterator[pa.Table]:
    """Run `ds` and yield its output blocks as tables; a block that holds no data is rebuilt from its metadata, not read.

    Such a block is rows of nulls under `NULL_ROWS` (`jobs.staging.stage_batch`'s count of the rows
    it wrote): Ray keeps its row count in this process. Reading a block from the object store maps
    pages of the store into this process for the rest of its life (the mapping is Ray's): reading
    the scan's one-row blocks, each on pages of its own, left 316 MB mapped at 5,000 papers and
    15 MB at 1,000 (`benchmarks/ray_data_shared_pages.py`).
    """
    for bundle in ds.iter_internal_ref_bundles():
        for block in bundle.blocks:
            rows, size = block.metadata.num_rows, block.metadata.size_bytes
            if size == 0 and rows is not None:  # null columns have no buffers; nor do tables of no rows
                yield pa.table({NULL_ROWS: pa.nulls(rows)})
            else:
                yield BlockAccessor.for_block(ray.get(block.ref)).to_arrow()
