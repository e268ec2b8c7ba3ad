"""Ask the archive about one image: `run_query(FILE, STORE)` -> the stored panels it matches.

An editor holding one suspicious figure (an image, a PDF or one page of it) wants
to know whether it appears anywhere in a store (a scan's OUT/store or a nightly
store), in seconds and without a rescan. The steps are the scan's, in this
process and without Ray (one file does not need a cluster, and importing Ray
alone costs seconds):

1. extract the file's panels with the scanner (`scanner.extract.extract_document`,
   boilerplate flagged as a scan flags it), noise panels left out as a scan leaves them out;
2. embed them with the store's model (the model id must match the store's) and
   compute what the pixel check reads of them (`embedder.verify.pixel_features`);
3. search the store's FAISS index (read-only: files the saved index has not seen yet
   are added in memory; without a saved index an exact in-memory one is built; an IVF
   index is searched more widely than a scan's self-join, `query_nprobe`);
4. score the candidates as a scan does: the head on (query, stored) vectors, the
   pixel check, the calibrated fusion, the model's threshold (`jobs.scoring`).

The query never writes into the store. `write_query_outputs` writes query.csv
(report.csv's columns: side a is the query file, side b the stored panel) and
query.html (the report's cards).
"""
from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.store import PIXELS_COLUMN, FigureStore, StoreError, StoreMismatchError, l2_normalize, make_thumbnail
from jobs.report import PanelRef, ReportError, ReportPair, within, write_report_csv, write_report_html
from jobs.report_html import PAGE_MAX_PX, THUMB_MAX_PX
from jobs.scoring import describe_placement, model_id_of, model_threshold
from scanner.document import ExtractLimits
from scanner.noise import flag_boilerplate_table
from scanner.records import PanelRecord, records_to_table, table_to_records

if TYPE_CHECKING:  # pragma: no cover
    from embedder.fusion import PixelFusion
    from embedder.inference import Embedder
    from embedder.pose import Overlap
    from embedder.verify import Alignment, PanelPixels
    from index.faiss_index import VectorIndex

logger = logging.getLogger(__name__)

QUERY_CSV = "query.csv"
QUERY_HTML = "query.html"
EXHAUSTIVE_MAX = 5_000_000  # stored vectors up to which a query visits every IVF list (`query_nprobe`)
_ROW_COLUMNS = ["row_id", "figure_id", "doc", "doc_sha256", "page", "x0", "y0", "x1", "y1", "flags", "vector"]


class QueryError(Exception):
    """A query that cannot run (its message says why, in the user's words)."""


class UnreadableQueryError(QueryError):
    """The query file could not be read, or yielded no panel to search with."""


class NoStoreError(QueryError):
    """The store folder holds no store (or a damaged one)."""


@dataclass(frozen=True)
class QueryOptions:
    """How one file is matched against a store (the scan's defaults)."""

    model_path: str | None = None     # None: the shipped model; it must be the store's model
    page: int | None = None           # only this 1-based page of a PDF (or frame of a TIFF)
    top: int = 20                     # matches kept, best first
    k: int = 10                       # nearest neighbours per query panel (the scan's --k)
    min_sim: float = 0.3              # cosine floor for a candidate (the scan's --min-sim)
    threshold: float | None = None    # None: the model's calibrated one, as a scan
    include_noise: bool = False       # also query with tiny/uniform/chart/text panels
    pixel_check: bool = True          # refine the head score with the pixel check (the scan's default)
    poses: bool = True                # the pose check on candidates under the threshold (the scan's default)


@dataclass(frozen=True)
class QueryMatch:
    """One scored (query panel, stored panel) candidate."""

    panel: int                        # index into QueryResult.panels
    row_id: int                       # the stored panel's row id
    sim: float                        # cosine of the two vectors
    head: float                       # the head's probability
    score: float                      # what a scan would report (fused when the pixel check ran)
    alignment: Alignment | None       # the pixel check's placement (maps the stored panel onto the query's)
    row: dict[str, Any] = field(repr=False, compare=False)  # the stored record's provenance
    overlap: Overlap | None = None    # the region the two share, when the pose check found a crop or partial copy


@dataclass
class QueryResult:
    """What a query found: every scored candidate (best first) and the threshold they are judged by."""

    file: Path
    doc: str                          # the query file's document key (its name)
    panels: list[PanelRecord]         # the query panels searched with
    skipped_noise: int                # query panels left out as noise
    candidates: list[QueryMatch]      # scored, best first, at most `top`
    threshold: float
    store_rows: int
    errors: list[ReportError]
    seconds: dict[str, float]

    @property
    def matches(self) -> list[QueryMatch]:
        """The candidates a scan would report (score at or above the threshold)."""
        return [m for m in self.candidates if m.score >= self.threshold]


def open_store(store_dir: Path) -> FigureStore:
    """The store at `store_dir`; `NoStoreError` when there is none (a scan's OUT folder is accepted too)."""
    for candidate in (store_dir, store_dir / "store"):
        if (candidate / "manifest.json").exists():
            try:
                return FigureStore.open(candidate)
            except (StoreError, ValueError) as exc:
                raise NoStoreError(f"{candidate}: {exc}") from exc
    raise NoStoreError(f"no store at {store_dir} (no manifest.json there or in {store_dir / 'store'})")


def extract_query_panels(path: Path, *, page: int | None = None) -> tuple[list[PanelRecord], list[ReportError]]:
    """The panels of one file as a scan extracts them (boilerplate flagged); `UnreadableQueryError` if none."""
    from scanner.extract import extract_document  # PyMuPDF loads on the first PDF only

    if not path.is_file():
        raise UnreadableQueryError(f"{path}: no such file")
    # Pages after the one asked for are never read; the cap's own error line is not the user's problem.
    limits = ExtractLimits(max_pages=page) if page is not None else ExtractLimits()
    result = extract_document(path, path.parent, limits)
    errors = [ReportError(e.input, e.stage, e.error) for e in result.errors if not (page and e.stage == "pages")]
    records = result.records
    if page is not None:
        if result.pages and page > result.pages:
            raise UnreadableQueryError(f"{path}: page {page} asked for, the file has {result.pages}")
        records = [r for r in records if r.page == page]
    if not records:
        why = "; ".join(f"{e.stage}: {e.error}" for e in errors) or "no image found"
        raise UnreadableQueryError(f"{path}: nothing to search with ({why})")
    return table_to_records(flag_boilerplate_table(records_to_table(records))), errors


def load_index(store: FigureStore, *, include_noise: bool) -> VectorIndex:
    """The store's saved FAISS index, brought up to date in memory (never saved: a query writes nothing).

    Store files the saved index has not seen are added; without a usable saved index an exact
    (`Flat`) index over the store is built in memory.
    """
    from index.faiss_index import META_FILE, IndexSpec, VectorIndex, apply_search_params

    current: VectorIndex | None = None
    if (store.index_dir / META_FILE).exists():
        try:
            current = VectorIndex.load(store.index_dir)
        except (OSError, ValueError, RuntimeError) as exc:
            logger.warning("saved index unreadable (%s); searching an exact in-memory index", exc)
    if current is not None and (current.model_id != store.model_id or current.dim != store.dim
                                or bool(current.info.get("include_noise", False)) != include_noise
                                or not set(current.files) <= set(store.files)):
        current = None
    if current is None:
        logger.info("no usable saved index in %s: building an exact one in memory", store.index_dir)
        current = VectorIndex.empty(IndexSpec(factory="Flat", dim=store.dim), None, model_id=store.model_id)
    new_files = [f for f in store.files if f not in set(current.files)]
    for rel, ids, vecs in store.iter_vectors(new_files, include_noise=include_noise):
        current.add(ids, vecs, file=rel)
    if current.spec.is_ivf:
        current.spec = replace(current.spec, nprobe=query_nprobe(current.spec.nlist, current.spec.nprobe, current.ntotal))
        apply_search_params(current.index, current.spec)
    return current


def query_nprobe(nlist: int, tuned: int, ntotal: int) -> int:
    """IVF lists a query visits: all of them up to `EXHAUSTIVE_MAX` vectors, else 16x the tuned nprobe.

    The build tunes nprobe for a self-join of millions of stored vectors against their own
    clusters; a query is a handful of vectors, possibly from a region the clusters were not
    trained on (a planted crop missed at the tuned nprobe 8 on 200,000 panels, docs/benchmarks.md),
    and visiting every list costs it milliseconds.
    """
    return nlist if ntotal <= EXHAUSTIVE_MAX else min(nlist, max(tuned, 1) * 16)


def run_query(path: Path, store_dir: Path, options: QueryOptions = QueryOptions(), *,
              embedder: Embedder | None = None, index_cache: Callable[[FigureStore], VectorIndex] | None = None
              ) -> QueryResult:
    """Match the panels of `path` against the store at `store_dir` exactly as a scan scores pairs.

    `embedder`: an already loaded model (the review app keeps one); it must be the store's.
    `index_cache`: how to get the store's index (the review app keeps it loaded); default `load_index`.
    Raises `NoStoreError`, `UnreadableQueryError`, `index.store.StoreMismatchError` (another model).
    """
    from embedder.fusion import PixelFusion
    from embedder.inference import Embedder

    started = time.monotonic()
    seconds: dict[str, float] = {}

    def lap(name: str, t0: float) -> float:
        now = time.monotonic()
        seconds[name] = seconds.get(name, 0.0) + now - t0
        return now

    t = time.monotonic()
    store = open_store(store_dir)
    records, errors = extract_query_panels(Path(path), page=options.page)  # before the model: a bad file fails fast
    wanted = model_id_of(options.model_path)
    if store.model_id != wanted:
        raise StoreMismatchError(f"{store.root} holds vectors of model {store.model_id}, not of {wanted} "
                                 f"({options.model_path or 'the shipped model'}): query with the store's --model")
    searched = [r for r in records if options.include_noise or not r.is_noise]
    t = lap("extract", t)
    result = QueryResult(file=Path(path), doc=records[0].doc, panels=searched,
                         skipped_noise=len(records) - len(searched), candidates=[], threshold=0.0,
                         store_rows=store.num_rows, errors=errors, seconds=seconds)
    if embedder is None:
        embedder = Embedder.load(options.model_path)
    fusion = PixelFusion.from_meta(embedder.meta) if options.pixel_check else None
    result.threshold = (model_threshold(embedder, fused=fusion is not None) if options.threshold is None
                        else options.threshold)
    t = lap("model", t)
    if not searched:
        seconds["total"] = time.monotonic() - started
        return result
    images = [_rgb(r.image) for r in searched]
    vectors = _as_stored(embedder.embed(images), store.dtype)
    t = lap("embed", t)
    index = index_cache(store) if index_cache is not None else load_index(store, include_noise=options.include_noise)
    t = lap("index", t)
    D, I = index.search(vectors, options.k)
    ok = (I >= 0) & (D >= options.min_sim)
    panel_of, row_ids, sims = np.nonzero(ok)[0], I[ok], D[ok]
    rows = _stored_rows(store, np.unique(row_ids))
    keep = [i for i, r in enumerate(row_ids.tolist()) if r in rows and (options.include_noise or not rows[r]["noise"])]
    panel_of, row_ids, sims = panel_of[keep], row_ids[keep], sims[keep]
    t = lap("search", t)
    if not len(row_ids):
        seconds["total"] = time.monotonic() - started
        return result
    stored_vecs = np.stack([rows[r]["vector"] for r in row_ids.tolist()])
    head = np.asarray(embedder.score(vectors[panel_of], stored_vecs), dtype=np.float32).reshape(-1)
    t = lap("score", t)
    alignments: list[Alignment | None] = [None] * len(row_ids)
    scores = head
    if fusion is not None:
        alignments = list(_pixel_check(store, images, panel_of, row_ids, fusion))
        # background margins (embedder.fusion) as in a scan: each query panel's other candidates are its
        # background; a stored panel's own neighbours are not searched, so it has none (margin against 0)
        query_panels = panel_of.astype(np.int64)
        stored_panels = row_ids.astype(np.int64) + int(query_panels.max()) + 1
        scores = fusion.score(head, alignments, (query_panels, stored_panels))
        t = lap("pixel check", t)
    overlaps: list[Overlap | None] = [None] * len(row_ids)
    if fusion is not None and options.poses:
        overlaps = _pose_check(store, images, panel_of, row_ids, scores < result.threshold)
        scores = np.array([max(float(s), o.correlation) if o is not None else float(s)
                           for s, o in zip(scores, overlaps)], dtype=np.float32)
        t = lap("pose check", t)
    order = sorted(range(len(row_ids)), key=lambda i: (-float(scores[i]), int(row_ids[i]), int(panel_of[i])))
    result.candidates = [QueryMatch(panel=int(panel_of[i]), row_id=int(row_ids[i]), sim=float(sims[i]),
                                    head=float(head[i]), score=float(scores[i]), alignment=alignments[i],
                                    row=rows[int(row_ids[i])], overlap=overlaps[i]) for i in order[:options.top]]
    seconds["total"] = time.monotonic() - started
    return result


def _rgb(image: bytes) -> Any:
    """A stored panel's PNG bytes as an RGB PIL image."""
    from PIL import Image

    with Image.open(io.BytesIO(image)) as im:
        return im.convert("RGB")


def _as_stored(vectors: np.ndarray, dtype: str) -> np.ndarray:
    """Query vectors as the store keeps its own (unit length, rounded to its dtype), so the head sees what a scan's does."""
    unit = l2_normalize(vectors)
    return unit.astype(np.float16).astype(np.float32) if dtype == "float16" else unit


def _stored_rows(store: FigureStore, row_ids: np.ndarray) -> dict[int, dict[str, Any]]:
    """row id -> provenance, vector and noise flag of the candidate rows (only their files are read)."""
    from index.store import noise_mask, vectors_from_arrow

    if not len(row_ids):
        return {}
    table = store.read_table(_ROW_COLUMNS, row_ids=row_ids.tolist())
    vecs = vectors_from_arrow(table.column("vector"), store.dim)
    noise = noise_mask(table.column("flags").to_pylist())
    out = {}
    for n, r in enumerate(table.drop_columns(["vector"]).to_pylist()):
        out[int(r["row_id"])] = {**r, "vector": vecs[n], "noise": bool(noise[n])}
    return out


def _pixel_check(store: FigureStore, images: Sequence[Any], panel_of: np.ndarray, row_ids: np.ndarray,
                 fusion: PixelFusion) -> list[Alignment]:
    """The scan's pixel check (`embedder.verify.align_pair`, stored panel b onto query panel a), in this process."""
    from embedder.verify import Alignment, PanelPixels, align_pair, pixel_features, single_thread

    config = fusion.align
    query = [PanelPixels.from_bytes(pixel_features(im, config)) for im in images]
    stored = _stored_pixels(store, np.unique(row_ids), config)
    out: list[Alignment] = []
    with single_thread():  # tiny tensors: torch's thread pool costs more than it gains (embedder.verify)
        for p, r in zip(panel_of.tolist(), row_ids.tolist(), strict=True):
            b = stored.get(r)
            if b is None:
                out.append(Alignment(0.0))
                continue
            try:
                out.append(align_pair(query[p], b, config))
            except (ValueError, RuntimeError) as exc:
                logger.warning("pixel check failed for stored row %d: %s", r, exc)
                out.append(Alignment(0.0))
    return out


def _pose_check(store: FigureStore, images: Sequence[Any], panel_of: np.ndarray, row_ids: np.ndarray,
                todo: np.ndarray) -> list[Overlap | None]:
    """The scan's pose check (`embedder.pose`, stored panel b on query panel a) for the pairs `todo`, in this process."""
    from embedder.pose import PoseOptions, PoseRule, encoded_panel_pose, panel_pose, verify_pose
    from embedder.verify import grey_image, single_thread

    options, rule = PoseOptions(), PoseRule()  # jobs.match.MatchOptions' defaults (importing it loads Ray)
    out: list[Overlap | None] = [None] * len(row_ids)
    wanted = np.flatnonzero(todo)
    if not len(wanted):
        return out
    table = store.read_table(["row_id", "image"], row_ids=np.unique(row_ids[wanted]).tolist())
    stored: dict[int, Any] = {}
    with single_thread():
        for r, image in zip(table.column("row_id").to_pylist(), table.column("image").to_pylist()):
            try:
                stored[int(r)] = encoded_panel_pose(image, options) if image else None
            except (OSError, ValueError) as exc:
                logger.warning("pose check skipped for unreadable stored row %d: %s", r, exc)
        query = {int(p): panel_pose(grey_image(images[p], options.side), options) for p in np.unique(panel_of[wanted])}
        for i in wanted.tolist():
            b = stored.get(int(row_ids[i]))
            pose = verify_pose(query[int(panel_of[i])], b, options, rule) if b is not None else None
            out[i] = pose.as_overlap() if pose is not None and rule.accepts(pose) else None
    return out


def _stored_pixels(store: FigureStore, row_ids: np.ndarray, config: Any) -> dict[int, PanelPixels | None]:
    """What the pixel check reads of stored rows: their stored features, else their decoded image (as a scan)."""
    from embedder.verify import PanelPixels, panel_pixels, pixel_features

    table = store.read_table(["row_id", PIXELS_COLUMN], row_ids=row_ids.tolist())
    found = {int(r): panel_pixels(p, config) for r, p in zip(table.column("row_id").to_pylist(),
                                                             table.column(PIXELS_COLUMN).to_pylist())}
    missing = [r for r, p in found.items() if p is None]
    if missing:
        table = store.read_table(["row_id", "image"], row_ids=missing)
        for r, image in zip(table.column("row_id").to_pylist(), table.column("image").to_pylist()):
            try:
                found[int(r)] = PanelPixels.from_bytes(pixel_features(_rgb(image), config)) if image else None
            except (OSError, ValueError) as exc:
                logger.warning("pixel check skipped for unreadable stored row %d: %s", r, exc)
    return found


def query_pairs(result: QueryResult, store_dir: Path, *, only_matches: bool = True, keys: bool = True) -> list[ReportPair]:
    """The matches as ReportPairs for the report writers: a = the query panel, b = the stored one.

    Pairs sharing a query panel share a group (numbered by query panel). Thumbnails come
    from the stored images, the query's page drawn small from the file itself. `keys=False`
    leaves the query panel's content hash out (no `pair_key`: no verdict controls on its card).
    """
    from jobs.verdicts import panel_hash

    chosen = result.matches if only_matches else result.candidates
    if not chosen:
        return []
    store = open_store(store_dir)
    table = store.read_table(["row_id", "image"], row_ids=sorted({m.row_id for m in chosen}))
    images = dict(zip(table.column("row_id").to_pylist(), table.column("image").to_pylist()))
    pages = _query_pages(result, {result.panels[m.panel].page for m in chosen})
    refs: dict[int, PanelRef] = {}
    for p in {m.panel for m in chosen}:
        rec = result.panels[p]
        art = pages.get(rec.page)
        refs[p] = PanelRef(doc=rec.doc, page=rec.page, bbox=rec.bbox, figure_id=rec.figure_id,
                           thumbnail=make_thumbnail(rec.image, THUMB_MAX_PX, fmt="PNG") or b"",
                           page_image=art[0] if art else None, page_size=art[1] if art else None,
                           image_sha256=panel_hash(rec.image) if keys else "")
    out = []
    for m in chosen:
        r, image = m.row, images.get(m.row_id)
        b = PanelRef(doc=r["doc"], page=int(r["page"]), bbox=(r["x0"], r["y0"], r["x1"], r["y1"]),
                     figure_id=r["figure_id"], thumbnail=make_thumbnail(image, THUMB_MAX_PX, fmt="PNG") or b"",
                     image_sha256=panel_hash(image) if image else "")
        extra = {"cosine": f"{m.sim:.3f}", "head score": f"{m.head:.3f}"}
        if m.alignment is not None:
            extra["pixel match"] = f"{m.alignment.correlation:.2f} (detail {m.alignment.detail:.2f})"
            extra["placement"] = describe_placement(m.alignment)
        transform = m.alignment.transform if m.alignment is not None else None
        region_a = region_b = None
        if m.overlap is not None:  # outline the region the two share, as a scan's report does
            transform = m.overlap.transform
            region_a, region_b = within(refs[m.panel].bbox, m.overlap.box_a), within(b.bbox, m.overlap.box_b)
            extra["shared region"] = (f"{m.overlap.correlation:.3f} over {m.overlap.share_a:.0%} of a and "
                                      f"{m.overlap.share_b:.0%} of b")
        out.append(ReportPair(score=m.score, a=refs[m.panel], b=b, group_id=m.panel + 1, transform=transform,
                              head_score=m.head, pixel_match=m.alignment.correlation if m.alignment else None,
                              pixel_detail=m.alignment.detail if m.alignment else None, extra=extra,
                              overlap_score=m.overlap.correlation if m.overlap else None,
                              overlap_a=region_a, overlap_b=region_b))
    return out


def _query_pages(result: QueryResult, pages: set[int]) -> dict[int, tuple[bytes, tuple[float, float]]]:
    """The query file's pages drawn small (a nicety: nothing on failure)."""
    try:
        from jobs.page_thumbs import render_pages

        return render_pages(result.file, pages, max_px=PAGE_MAX_PX)
    except Exception as exc:  # noqa: BLE001 - a page drawing must never lose the answer
        logger.warning("could not draw pages of %s: %s", result.file, exc)
        return {}


def query_summary(result: QueryResult, store_dir: Path) -> dict[str, Any]:
    """The page header of query.html: what was asked, of what, and how long it took."""
    return {"query": str(result.file), "store": str(store_dir), "store panels": result.store_rows,
            "panels": len(result.panels), "noise panels left out": result.skipped_noise,
            "candidates": len(result.candidates), "pairs": len(result.matches),
            "threshold": round(result.threshold, 4),
            "timings": {k: v for k, v in result.seconds.items() if k != "total"}}


def write_query_outputs(result: QueryResult, store_dir: Path, out_dir: Path) -> list[ReportPair]:
    """query.csv (report.csv's columns) and query.html (the report's cards) into `out_dir`; the pairs written."""
    pairs = query_pairs(result, store_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_report_csv(pairs, out_dir / QUERY_CSV)
    write_report_html(pairs, out_dir / QUERY_HTML, title=f"reusescan query: {result.doc}",
                      summary=query_summary(result, store_dir), errors=result.errors)
    return pairs


def format_table(result: QueryResult, *, limit: int | None = None) -> str:
    """The ranked candidates as a plain-text table (matches above the threshold marked)."""
    lines = [f"{'rank':>4}  {'score':>6}  {'head':>6}  {'pixel':>5}  {'transform':<10}  query panel -> stored panel"]
    for n, m in enumerate(result.candidates[:limit], start=1):
        q, r = result.panels[m.panel], m.row
        mark = "*" if m.score >= result.threshold else " "
        pixel = f"{m.alignment.correlation:.2f}" if m.alignment is not None else "-"
        transform = m.alignment.transform if m.alignment is not None else "-"
        lines.append(f"{n:>4}{mark} {m.score:6.4f}  {m.head:6.4f}  {pixel:>5}  {transform:<10}  "
                     f"p{q.page} [{q.x0:.0f} {q.y0:.0f} {q.x1:.0f} {q.y1:.0f}] -> {r['doc']} p{r['page']} "
                     f"[{r['x0']:.0f} {r['y0']:.0f} {r['x1']:.0f} {r['y1']:.0f}]")
    found = len(result.matches)
    lines.append(f"{found} match(es) at or above the threshold {result.threshold:.4f} (marked *) among "
                 f"{len(result.candidates)} candidate(s); {len(result.panels)} query panel(s) "
                 f"({result.skipped_noise} noise left out) against {result.store_rows:,} stored panels")
    return "\n".join(lines)


__all__ = ["NoStoreError", "QueryError", "QueryMatch", "QueryOptions", "QueryResult", "UnreadableQueryError",
           "extract_query_panels", "format_table", "load_index", "open_store", "query_pairs",
           "run_query", "write_query_outputs"]
