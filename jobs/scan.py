"""A scan on the driver: ingest (via Ray Data), index, match, score, group, report.

`scan` (a folder of papers, one report) and `nightly` (new submissions against
everything seen before) share these steps; they differ only in which documents
are ingested and which pairs are reported.
"""
from __future__ import annotations

import io
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.pipeline import (
    EXTRACT_SCHEMA,
    ROW_DOC,
    ROW_ERROR,
    ROW_RECORD,
    PipelineOptions,
    model_id_of,
    run_extract_and_embed,
)
from scanner.discover import document_key
from scanner.records import FIGURES_SCHEMA, FLAG_BOILERPLATE

logger = logging.getLogger(__name__)

STORE_DIRNAME = "store"
# Thumbnails in the HTML report: big enough to judge a blot band or a cell by eye.
REPORT_THUMB_PX = 384
PAGE_THUMB_PX = 260


@dataclass(frozen=True)
class MatchOptions:
    """How candidates are found and accepted."""

    k: int = 10                  # nearest neighbours per panel
    min_sim: float = 0.3         # cosine floor for a candidate (recall first; the head decides)
    threshold: float | None = None  # score at which a pair is reported; None: the model's calibrated one
    include_noise: bool = False  # match tiny / uniform / boilerplate panels too
    pixel_check: bool = True     # refine the head score with the pixel check, when the model is calibrated for it
    # candidates whose head score is below this are not pixel-checked. 0: all of them, because the head
    # misses copies that line up pixel for pixel (a turned, stretched blot scored 0.005); raise it to
    # trade recall for speed on very large stores
    pixel_floor: float = 0.0


@dataclass
class StageClock:
    """Wall time per stage, in the order the stages ran."""

    seconds: dict[str, float] = field(default_factory=dict)
    announce: Callable[[str], None] | None = None   # told when a stage starts (a status line on stderr)

    def timed(self, name: str) -> _Timer:
        return _Timer(self, name)


class _Timer:
    def __init__(self, clock: StageClock, name: str) -> None:
        self.clock, self.name = clock, name

    def __enter__(self) -> None:
        if self.clock.announce is not None:
            self.clock.announce(self.name)
        self.start = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.clock.seconds[self.name] = self.clock.seconds.get(self.name, 0.0) + time.monotonic() - self.start


@dataclass
class IngestResult:
    """What one ingest added to the store."""

    documents: int = 0
    pages: int = 0
    panels: int = 0
    noise: int = 0
    skipped_documents: int = 0
    errors: list[tuple[str, str, str]] = field(default_factory=list)
    input_sha256: dict[str, str] = field(default_factory=dict)   # every readable input: doc -> content hash
    new_row_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


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
    records (`flag_boilerplate_rows`) and they are appended to the store.
    """
    from index.store import FigureStore
    from scanner.extract import file_sha256

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

    new_ids: list[np.ndarray] = []
    staging = StagingArea(store_dir / STAGING_DIRNAME)
    with clock.timed("extract + embed"):
        for batch in run_extract_and_embed(todo, root, pipeline):
            staging.write(batch)
    table, finished = staging.complete_documents()
    if table.num_rows:  # a crash between writing the store and clearing the staging area
        fresh = [not seen(d, h) for d, h in zip(table.column("doc").to_pylist(), table.column("doc_sha256").to_pylist())]
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
            records = flag_boilerplate_rows(records)
            records = records.sort_by([("doc", "ascending"), ("doc_sha256", "ascending")])
            model_id = records.column("model_id")[0].as_py()
            vectors = np.asarray(records.column("vector").to_pylist(), dtype=np.float32)
            store = FigureStore.open_or_create(store_dir, model_id=model_id, dim=vectors.shape[1])
            for start, stop in document_aligned_slices(records.column("doc").to_pylist(), STORE_FILE_ROWS):
                part = records.slice(start, stop - start)
                info = store.append(part.select(FIGURES_SCHEMA.names), vectors[start:stop],
                                    model_id=model_id, run_id=run_id)
                new_ids.append(np.arange(info.first_row_id, info.first_row_id + info.rows, dtype=np.int64))
            flags = records.column("flags").to_pylist()
            result.panels = records.num_rows
            result.noise = sum(1 for f in flags if f and set(f) & {"tiny", "uniform", FLAG_BOILERPLATE})
        staging.clear()
    if new_ids:
        result.new_row_ids = np.concatenate(new_ids)
    return result


# Boilerplate is small: a logo or icon (longest side at most LOGO_MAX_SIDE_PT) or a
# banner strip (shortest side at most BANNER_MAX_SIDE_PT). A large figure that
# recurs verbatim across papers is exactly what a reviewer must see, never noise.
LOGO_MAX_SIDE_PT = 150.0
BANNER_MAX_SIDE_PT = 60.0


STAGING_DIRNAME = "staging"
STORE_FILE_ROWS = 4096  # rows per store file (whole documents only, see document_aligned_slices)


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
        self._seq = 0

    def write(self, batch: pa.Table) -> None:
        import os
        import uuid

        import pyarrow.parquet as pq

        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"batch-{uuid.uuid4().hex}.parquet"
        tmp = final.with_name(f".{final.name}.tmp")
        pq.write_table(batch, tmp)
        os.replace(tmp, final)

    def _read(self) -> pa.Table | None:
        import pyarrow.parquet as pq

        files = sorted(self.root.glob("batch-*.parquet")) if self.root.exists() else []
        if not files:
            return None
        return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")

    def complete_documents(self) -> tuple[pa.Table, set[str]]:
        """The staged rows of finished documents, and those documents' names."""
        table = self._read()
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
        """(doc, sha256) of the finished documents staged for `model_id` (others are discarded)."""
        table, _ = self.complete_documents()
        if "model_id" in table.column_names and table.num_rows:
            models = {m for m in table.column("model_id").to_pylist() if m}
            if models and models != {model_id}:
                logger.warning("discarding rows staged by another model (%s)", ", ".join(sorted(models)))
                self.clear()
                return set()
        if "doc" not in table.column_names:
            return set()
        rows = table.filter(pc.equal(table.column("row_kind"), ROW_DOC))
        return set(zip(rows.column("doc").to_pylist(), rows.column("doc_sha256").to_pylist()))

    def clear(self) -> None:
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)


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


def check_store_model(store_dir: Path, model_path: str | None) -> None:
    """Raise `StoreMismatchError` when `store_dir` holds vectors of a model other than `model_path`'s.

    Checked before any extraction, so a resumed scan or a nightly run with another
    model fails at once instead of scoring old vectors with a new head.
    """
    from index.store import MANIFEST, FigureStore, StoreMismatchError
    from jobs.pipeline import model_id_of

    if not (store_dir / MANIFEST).exists():
        return
    stored, wanted = FigureStore.open(store_dir).model_id, model_id_of(model_path)
    if stored != wanted:
        raise StoreMismatchError(f"{store_dir} holds vectors of model {stored}, not of {wanted} "
                                 f"({model_path or 'the shipped model'})")


def flag_boilerplate_rows(table: pa.Table, *, min_docs: int = 3, min_pages: int = 4) -> pa.Table:
    """Add the `boilerplate` flag to small images that recur like a publisher's template.

    Two rules (`scanner.noise`): identical pixels in >= `min_docs` documents or on
    >= `min_pages` pages, for logo- or banner-sized placements; and a logo-sized
    image at the same spot of the first page in two or more documents (a journal
    template, even when only two papers of that journal are in the corpus).
    """
    from scanner.noise import add_flag, boilerplate_hashes, logo_hashes, pixel_hash

    hashes = [pixel_hash(img) for img in table.column("image").to_pylist()]
    docs = table.column("doc").to_pylist()
    pages = table.column("page").to_pylist()
    boxes = list(zip(*(table.column(c).to_pylist() for c in ("x0", "y0", "x1", "y1"))))
    small = [max(x1 - x0, y1 - y0) <= LOGO_MAX_SIDE_PT or min(x1 - x0, y1 - y0) <= BANNER_MAX_SIDE_PT
             for x0, y0, x1, y1 in boxes]
    recurring = boilerplate_hashes(((h, d, p) for h, d, p, s in zip(hashes, docs, pages, small) if s),
                                   min_docs=min_docs, min_pages=min_pages)
    logos = logo_hashes((h, d, b) for h, d, p, b in zip(hashes, docs, pages, boxes) if p == 1)
    flagged = recurring | logos
    if not flagged:
        return table
    flags = [list(add_flag(f or (), FLAG_BOILERPLATE)) if h in flagged else list(f or ())
             for h, f in zip(hashes, table.column("flags").to_pylist())]
    return table.set_column(table.schema.get_field_index("flags"), "flags", pa.array(flags, pa.list_(pa.string())))


@dataclass
class MatchResult:
    """Accepted pairs of store row ids with their scores, pixel-check results and groups.

    `score` is what the report shows: the fused score when the pixel check ran,
    else the head's. `head` is the head alone; `alignment` is None per pair when
    the pixel check did not run for it.
    """

    a: np.ndarray
    b: np.ndarray
    sim: np.ndarray
    score: np.ndarray
    group: np.ndarray
    candidates: int
    head: np.ndarray
    alignment: list[Any]


# Pairs read from the store at a time, and per Ray task, for the pixel check.
PIXEL_CHECK_READ_PAIRS = 8192
PIXEL_CHECK_TASK_PAIRS = 96


def pixel_check(store: Any, a: np.ndarray, b: np.ndarray, config: Any) -> list[Any]:
    """`embedder.verify.Alignment` for each pair of store rows (a[i], b[i]).

    Runs as Ray tasks (one CPU each) when Ray is up, else in this process; the
    stored panel images are read a bounded number of pairs at a time.
    """
    from embedder.verify import align_many

    out: list[Any] = []
    for start in range(0, len(a), PIXEL_CHECK_READ_PAIRS):
        ca, cb = a[start:start + PIXEL_CHECK_READ_PAIRS], b[start:start + PIXEL_CHECK_READ_PAIRS]
        table = store.read_table(["row_id", "image"], row_ids=np.union1d(ca, cb))
        images = dict(zip(table.column("row_id").to_pylist(), table.column("image").to_pylist()))
        xs, ys = [images[i] for i in ca.tolist()], [images[i] for i in cb.tolist()]
        out += _align_in_tasks(align_many, xs, ys, config)
    return out


def _align_in_tasks(fn: Callable[..., list[Any]], xs: list[bytes], ys: list[bytes], config: Any) -> list[Any]:
    """fn over chunks of the pairs in Ray tasks; a chunk whose task fails (a worker killed, out of
    memory) is redone here, so one lost worker costs time, not the scan."""
    import ray

    step = PIXEL_CHECK_TASK_PAIRS
    if not ray.is_initialized() or len(xs) <= step:
        return fn(xs, ys, config)
    remote = ray.remote(num_cpus=1)(fn)
    starts = range(0, len(xs), step)
    refs = [remote.remote(xs[i:i + step], ys[i:i + step], config) for i in starts]
    out: list[Any] = []
    for start, ref in zip(starts, refs):
        try:
            out += ray.get(ref)
        except ray.exceptions.RayError as exc:
            logger.warning("pixel check task failed (%s); redoing its %d pairs in this process",
                        type(exc).__name__, len(xs[start:start + step]))
            out += fn(xs[start:start + step], ys[start:start + step], config)
    return out


def match_store(store_dir: Path, *, query_row_ids: np.ndarray | None, model_path: str | None,
                options: MatchOptions, clock: StageClock) -> MatchResult:
    """Update the FAISS index, find k-NN candidates, score them (head, then pixel check), group them.

    `query_row_ids=None` matches the whole store against itself (scan); otherwise
    only those rows are queried against everything (nightly increments).
    """
    from embedder.fusion import PixelFusion
    from embedder.inference import Embedder
    from index.candidates import RecordKeys, score_candidates, self_join
    from index.faiss_index import sync_index
    from index.groups import connected_components
    from index.store import FigureStore

    check_store_model(store_dir, model_path)
    store = FigureStore.open(store_dir)
    with clock.timed("index"):
        index = sync_index(store, include_noise=options.include_noise)
    with clock.timed("candidates"):
        keys = RecordKeys.from_table(store.read_keys())
        vectors = store.dense_vectors()  # read once: the queries now, the head's inputs below
        ids = keys.row_id if options.include_noise else keys.row_id[~keys.noise]
        if query_row_ids is not None:
            ids = ids[np.isin(ids, query_row_ids)]
        pairs = self_join(index, ids, vectors[ids], keys, k=options.k, min_sim=options.min_sim,
                          exclude_noise=not options.include_noise)
    with clock.timed("score"):
        embedder = Embedder.load(model_path)
        head = score_candidates(pairs, vectors, embedder.score) if len(pairs) else np.zeros(0, np.float32)
    fusion = PixelFusion.from_meta(embedder.meta) if options.pixel_check else None
    alignments: list[Any] = [None] * len(pairs)
    scores = head
    if fusion is not None:
        with clock.timed("pixel check"):
            todo = np.flatnonzero(head >= options.pixel_floor)
            for i, found in zip(todo.tolist(), pixel_check(store, pairs.a[todo], pairs.b[todo], fusion.align)):
                alignments[i] = found
            scores = fusion.score(head, alignments)
    threshold = model_threshold(embedder, fused=fusion is not None) if options.threshold is None else options.threshold
    keep = scores >= threshold
    a, b = pairs.a[keep], pairs.b[keep]
    group = connected_components(a, b).group_of(a)
    return MatchResult(a=a, b=b, sim=pairs.sim[keep], score=scores[keep], group=group, candidates=len(pairs),
                       head=head[keep], alignment=[x for x, k in zip(alignments, keep.tolist()) if k])


DEFAULT_THRESHOLD = 0.5


def model_threshold(embedder: Any, *, fused: bool = False) -> float:
    """The acceptance threshold calibrated for this model, else 0.5.

    The head alone uses the checkpoint meta `threshold`; the fused score (head +
    pixel check) uses `pixel_check.threshold`. Calibration:
    `benchmarks/bench_scan.py` on a generated corpus whose seed is not used for
    evaluation reports the lowest score that keeps precision at 0.9; that number
    is written into the checkpoint's meta when it ships.
    """
    from embedder.fusion import META_KEY

    source = embedder.meta.get(META_KEY, {}) if fused else embedder.meta
    value = source.get("threshold") if isinstance(source, dict) else None
    return float(value) if isinstance(value, (int, float)) and 0.0 <= float(value) <= 1.0 else DEFAULT_THRESHOLD


def build_report_pairs(store_dir: Path, match: MatchResult, *, doc_roots: dict[str, Path],
                       pair_filter: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None) -> list[Any]:
    """ReportPairs for the accepted pairs: thumbnails, page drawings, suspected transform.

    `doc_roots` maps a document's relative path to the file it came from (for page
    drawings); a document missing there is shown without its page.
    """
    from PIL import Image

    from index.store import FigureStore, make_thumbnail
    from jobs.page_thumbs import render_pages
    from jobs.report import PanelRef, ReportPair, estimate_transform

    if not len(match.a):
        return []
    store = FigureStore.open(store_dir)
    wanted = set(match.a.tolist()) | set(match.b.tolist())
    table = store.read_table(["row_id", "figure_id", "doc", "doc_sha256", "page", "x0", "y0", "x1", "y1", "image"],
                             row_ids=sorted(wanted))
    rows = {r["row_id"]: r for r in table.to_pylist()}

    pages_needed: dict[str, set[int]] = defaultdict(set)
    for r in rows.values():
        pages_needed[r["doc"]].add(int(r["page"]))
    page_art: dict[tuple[str, int], tuple[bytes, tuple[float, float]]] = {}
    for doc, pages in pages_needed.items():
        src = doc_roots.get(doc)
        if src is None or not src.exists():
            continue
        try:
            for page, art in render_pages(src, pages, max_px=PAGE_THUMB_PX).items():
                page_art[(doc, page)] = art
        except Exception as exc:  # a page drawing is a nicety; never lose the report over it
            logger.warning("could not draw pages of %s: %s", doc, exc)

    refs: dict[int, PanelRef] = {}
    for rid, r in rows.items():
        art = page_art.get((r["doc"], int(r["page"])))
        refs[rid] = PanelRef(doc=r["doc"], page=int(r["page"]), bbox=(r["x0"], r["y0"], r["x1"], r["y1"]),
                             figure_id=r["figure_id"], thumbnail=make_thumbnail(r["image"], REPORT_THUMB_PX, fmt="PNG") or b"",
                             page_image=art[0] if art else None, page_size=art[1] if art else None)
    out = []
    for a, b, score, sim, group, head_score, alignment in zip(match.a.tolist(), match.b.tolist(), match.score.tolist(),
                                                              match.sim.tolist(), match.group.tolist(),
                                                              match.head.tolist(), match.alignment, strict=True):
        ra, rb = rows[a], rows[b]
        if pair_filter is not None and not pair_filter(ra, rb):
            continue
        extra = {"cosine": f"{sim:.3f}", "head score": f"{head_score:.3f}"}
        if alignment is not None:  # the pixel check placed one panel on the other
            transform = alignment.transform
            extra["pixel match"] = f"{alignment.correlation:.2f} (detail {alignment.detail:.2f})"
            extra["placement"] = describe_placement(alignment)
        else:
            transform, corr = estimate_transform(Image.open(io.BytesIO(ra["image"])), Image.open(io.BytesIO(rb["image"])))
            extra["alignment"] = f"{corr:.2f}"
        out.append(ReportPair(score=float(score), a=refs[a], b=refs[b], group_id=int(group), transform=transform,
                              head_score=head_score, pixel_match=None if alignment is None else alignment.correlation,
                              pixel_detail=None if alignment is None else alignment.detail,
                              extra=extra))
    return out


def describe_placement(alignment: Any) -> str:
    """Where the pixel check put one panel on the other, in words (crop share, extra turn)."""
    parts = []
    if alignment.scale < 0.97:
        inner, outer = ("b", "a") if alignment.b_inside_a else ("a", "b")
        parts.append(f"{inner} shows part of {outer} ({alignment.scale:.0%} of its width)")
    if abs(alignment.angle) > 0.5:  # alignment.angle turns b onto a: b itself is turned the other way
        sense = "clockwise" if alignment.angle > 0 else "counter-clockwise"
        parts.append(f"b turned a further {abs(alignment.angle):.0f}° {sense}")
    return ", ".join(parts) or "whole panel"


def write_outputs(out_dir: Path, pairs: list[Any], errors: Iterable[tuple[str, str, str]], *, title: str,
                  summary: dict[str, Any]) -> None:
    """report.csv, report.html and errors.csv into `out_dir` (each written atomically)."""
    from jobs.report import ReportError, write_errors_csv, write_report_csv, write_report_html

    out_dir.mkdir(parents=True, exist_ok=True)
    error_rows = [ReportError(*e) for e in errors]
    write_report_csv(pairs, out_dir / "report.csv")
    write_errors_csv(error_rows, out_dir / "errors.csv")
    write_report_html(pairs, out_dir / "report.html", title=title, summary=summary, errors=error_rows)


__all__ = ["EXTRACT_SCHEMA", "IngestResult", "MatchOptions", "MatchResult", "StageClock", "build_report_pairs",
           "flag_boilerplate_rows", "ingest", "match_store", "write_outputs"]
