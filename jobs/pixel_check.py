"""The pixel check over pairs of store rows, as Ray tasks (one CPU each) when Ray is up.

What the check reads of a panel is small: its luminance at three sides, computed
once when the panel was embedded and stored in the `pixels` column
(`embedder.verify.pixel_features`). The pairs are taken `PIXEL_CHECK_READ_PAIRS`
at a time: the features of that chunk's panels are read once (each panel
once per chunk, however many pairs it is in) in a Ray task of its own, whose result
stays in Ray's object store: every task of `PIXEL_CHECK_TASK_PAIRS` pairs gets a
reference to it and its row-id pairs, nothing else, and the driver reads only chunks
of at most one task's pairs, which it checks itself (`check_pairs`). A panel without usable features (a store
written before the column existed, a model whose search reads other sides) has its
encoded image in the chunk instead and is decoded in the task, as before. The pairs are
taken in panel-local order (`panel_local_order`), so a chunk and a task meet few distinct
panels; the results come back in the pairs' own order.
"""
from __future__ import annotations

import functools
import io
import logging
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import ray
from PIL import Image
from scipy import sparse
from scipy.sparse.csgraph import reverse_cuthill_mckee
from tqdm import tqdm

from embedder.verify import (
    AlignConfig,
    Alignment,
    PanelPixels,
    align_pair,
    grey_image,
    pack_alignments,
    panel_pixels,
    pixel_features,
    single_thread,
)
from index.memory import release_freed_memory
from index.store import PIXELS_COLUMN, FigureStore

logger = logging.getLogger(__name__)

# Pairs whose panels are read from the store (into Ray's object store) at a time, and pairs per
# Ray task. A chunk's features are about 21 kB a panel at the shipped sides, so 8,192 pairs (at
# most 16,384 panels, usually far fewer) stay under ~350 MB; a worker reads them (~2x that while reading).
PIXEL_CHECK_READ_PAIRS = 8192
PIXEL_CHECK_TASK_PAIRS = 96
PROGRESS_LOG_SECONDS = 30.0  # a log line about the pixel check's progress at most this often

C = TypeVar("C")
D = TypeVar("D")


@dataclass(frozen=True)
class ChunkPixels:
    """The pixels of one chunk's panels, packed into a few arrays (Ray shares them between tasks, zero-copy).

    Per panel (`row_ids`, ascending): its stored features, or where it has none its
    encoded image (`is_image`), as `blob[offsets[i]:offsets[i + 1]]`; empty: nothing usable.
    """

    row_ids: np.ndarray   # int64, ascending
    offsets: np.ndarray   # int64, len(row_ids) + 1
    blob: np.ndarray      # uint8
    is_image: np.ndarray  # bool

    def entry(self, row_id: int) -> tuple[memoryview, bool]:
        i = int(np.searchsorted(self.row_ids, row_id))
        if i >= len(self.row_ids) or self.row_ids[i] != row_id:
            raise KeyError(row_id)
        return memoryview(self.blob[self.offsets[i]:self.offsets[i + 1]].data), bool(self.is_image[i])

    @property
    def nbytes(self) -> int:
        return int(self.blob.nbytes + self.offsets.nbytes + self.row_ids.nbytes + self.is_image.nbytes)


def _offsets(sizes: Sequence[int] | np.ndarray) -> np.ndarray:
    """Start of each entry in the blob, and its end (int64, one longer than `sizes`)."""
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return offsets


def _pack(ids: np.ndarray, parts: list[bytes], is_image: np.ndarray) -> ChunkPixels:
    blob = np.frombuffer(b"".join(parts), dtype=np.uint8) if parts else np.zeros(0, np.uint8)
    return ChunkPixels(ids, _offsets([len(p) for p in parts]), blob, is_image)


def read_chunk_column(store: FigureStore, row_ids: Sequence[int], column: str) -> ChunkPixels:
    """`ChunkPixels` holding each of `row_ids`' stored `column` (encoded images for `"image"`, which the tasks
    decode); a row the store lacks, or a null, is an empty entry.

    The bytes go from Arrow's buffers into the blob in one copy: as Python bytes they were held
    three times over (+1.5 GB of RSS for a 414 MB chunk of images of the 1,000-paper benchmark; now
    +0.4 GB once read, ~1.1 GB while reading).
    """
    ids = np.unique(np.asarray(row_ids, dtype=np.int64))
    table = store.read_table(["row_id", column], row_ids=ids.tolist())
    found = np.searchsorted(ids, table.column("row_id").to_numpy())  # the table is in row-id order
    sizes = np.zeros(len(ids), dtype=np.int64)
    parts: list[np.ndarray] = []
    start = 0
    for chunk in table.column(column).chunks:
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)[chunk.offset:chunk.offset + len(chunk) + 1]
        data = chunk.buffers()[2]
        if data is not None and len(chunk):
            parts.append(np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]])
        sizes[found[start:start + len(chunk)]] = np.diff(offsets)  # a null has no bytes: an empty entry
        start += len(chunk)
    blob = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    del table, parts
    release_freed_memory()  # Arrow's allocator keeps freed pages otherwise (+430 MB RSS)
    return ChunkPixels(ids, _offsets(sizes), blob, np.full(len(ids), column == "image"))


def read_chunk_stored(store: FigureStore, row_ids: Sequence[int], column: str,
                      usable: Callable[[memoryview], bool]) -> ChunkPixels:
    """`ChunkPixels` of `row_ids`: each panel's stored `column` where `usable`, else its encoded image
    (`is_image`: decoded in the task, as for a store written before the column existed; `check_pairs` says how many)."""
    chunk = read_chunk_column(store, row_ids, column)
    ids = chunk.row_ids.tolist()
    missing = {i for i in ids if not usable(chunk.entry(i)[0])}
    if not missing:
        return chunk
    images = read_chunk_column(store, sorted(missing), "image")
    parts = [bytes((images if i in missing else chunk).entry(i)[0]) for i in ids]
    return _pack(chunk.row_ids, parts, np.array([i in missing for i in ids], dtype=bool))


def read_chunk_pixels(store: FigureStore, row_ids: Sequence[int], config: AlignConfig) -> ChunkPixels:
    """`ChunkPixels` of `row_ids`: the stored pixel features where they fit `config`, else the encoded image."""
    return read_chunk_stored(store, row_ids, PIXELS_COLUMN, lambda data: panel_pixels(data, config) is not None)


GREY_SIDE = 128  # the grey image keypoints are taken on: the pixel check's detail side, stored per panel
GREY_READ_PANELS = 4096  # panels read from the store at a time by `read_greys`


def read_greys(store: FigureStore, row_ids: np.ndarray, side: int = GREY_SIDE) -> list[np.ndarray]:
    """Each panel's grey uint8 image at `side` (as `embedder.verify.grey_image`): stored, else decoded.

    A panel whose image cannot be read gets an empty (0, 0) array (it then has no keypoints).
    """
    out: list[np.ndarray] = []
    for s in range(0, len(row_ids), GREY_READ_PANELS):
        ids = [int(i) for i in row_ids[s:s + GREY_READ_PANELS]]
        table = store.read_table(["row_id", PIXELS_COLUMN], row_ids=ids)
        stored = dict(zip(table.column("row_id").to_pylist(), table.column(PIXELS_COLUMN).to_pylist()))
        greys: dict[int, np.ndarray] = {}
        for i, data in stored.items():
            try:
                pixels = PanelPixels.from_bytes(data) if data is not None else None
            except (ValueError, struct.error):
                pixels = None
            if pixels is not None and side in pixels.greys:
                greys[i] = pixels.greys[side]
        missing = [i for i in ids if i not in greys]
        if missing:
            table = store.read_table(["row_id", "image"], row_ids=missing)
            for i, data in zip(table.column("row_id").to_pylist(), table.column("image").to_pylist()):
                try:
                    greys[i] = grey_image(Image.open(io.BytesIO(data or b"")), side)
                except (OSError, ValueError) as exc:  # bad input never takes the scan down
                    logger.warning("keypoints: panel %d unreadable (%s)", i, exc)
        out += [greys.get(i, np.zeros((0, 0), np.uint8)) for i in ids]
        del table, stored
        release_freed_memory()  # Arrow's allocator kept the read's pages otherwise (~140 MB a read of 2,048 panels)
    return out


def _panel(chunk: ChunkPixels, row_id: int, config: AlignConfig) -> PanelPixels | None:
    """One panel's `PanelPixels` (decoding its image when it has no stored features); None if unusable."""
    data, is_image = chunk.entry(row_id)
    if not is_image:
        return PanelPixels.from_bytes(data)
    try:
        with Image.open(io.BytesIO(bytes(data))) as im:
            rgb = im.convert("RGB")
        return PanelPixels.from_bytes(pixel_features(rgb, config))
    except (OSError, ValueError, RuntimeError) as exc:
        logger.warning("pixel check skipped for an unreadable panel: %s", exc)
        return None


def align_chunk(chunk: ChunkPixels, a: np.ndarray, b: np.ndarray, config: AlignConfig) -> list[Alignment]:
    """`align_pair` of each pair of row ids (a[i], b[i]) on one thread; each panel is unpacked once.

    Never raises for bad pixels (correlation 0 instead): one broken panel must not take down a scan.
    """
    panels: dict[int, PanelPixels | None] = {}
    xs, ys = a.tolist(), b.tolist()
    last_pair = {row_id: i for i, pair in enumerate(zip(xs, ys)) for row_id in pair}

    def panel(row_id: int) -> PanelPixels | None:
        if row_id not in panels:
            panels[row_id] = _panel(chunk, row_id, config)
        return panels[row_id]

    out: list[Alignment] = []
    with single_thread():
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            pa_, pb = panel(x), panel(y)
            for row_id in (x, y):  # a panel (and what the search keeps of it) lives until its last pair here
                if last_pair[row_id] == i:
                    panels.pop(row_id, None)
            if pa_ is None or pb is None:
                out.append(Alignment(0.0))
                continue
            try:
                out.append(align_pair(pa_, pb, config))
            except (ValueError, RuntimeError) as exc:
                logger.warning("pixel check failed for rows %d, %d: %s", x, y, exc)
                out.append(Alignment(0.0))
    return out


def align_chunk_rows(chunk: ChunkPixels, a: np.ndarray, b: np.ndarray, config: AlignConfig) -> np.ndarray:
    """`align_chunk` as rows of `embedder.verify.ALIGNMENT_DTYPE`: what a task sends back (no objects a pair)."""
    return pack_alignments(align_chunk(chunk, a, b, config))


class StageProgress:
    """done/total, rate and ETA of a long stage (pixel check, pose check, keypoint candidates): a tqdm bar
    on stderr (when `show`) and a log line every `PROGRESS_LOG_SECONDS`."""

    def __init__(self, total: int, *, show: bool, desc: str = "pixel check", unit: str = "pair") -> None:
        self.total, self.done, self.desc, self.unit = total, 0, desc, unit
        self.started = self.logged = time.monotonic()
        self.bar = tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=not show,
                        dynamic_ncols=True, smoothing=0.1)

    def __call__(self, n: int) -> None:
        self.done += n
        self.bar.update(n)
        now = time.monotonic()
        if now - self.logged >= PROGRESS_LOG_SECONDS:
            self.logged = now
            logger.info("%s: %s", self.desc, self.line())

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        eta = f"ETA {(self.total - self.done) / rate:.0f} s" if rate > 0 else "ETA unknown"
        return f"{self.done}/{self.total} {self.unit}s, {rate:.1f} {self.unit}s/s, {eta}"

    def close(self) -> None:
        self.bar.close()
        if self.total:
            logger.info("%s done: %s", self.desc, self.line())


def pixel_check(store: FigureStore, a: np.ndarray, b: np.ndarray, config: AlignConfig, *,
                progress: bool = False) -> np.ndarray:
    """The `embedder.verify.Alignment` of each pair of store rows (a[i], b[i]), as a row of
    `embedder.verify.ALIGNMENT_DTYPE` (`unpack_alignments` makes them objects).

    Runs as Ray tasks (one CPU each) when Ray is up, else in this process; see the
    module docstring for what is read and what travels. `progress`: a bar on stderr.
    """
    return check_pairs(a, b, panel_local_order(a, b), read=lambda ids: read_chunk_pixels(store, ids, config),
                       task=align_chunk_rows, setup=config, read_pairs=PIXEL_CHECK_READ_PAIRS,
                       task_pairs=PIXEL_CHECK_TASK_PAIRS, empty=pack_alignments([]),
                       bar=StageProgress(len(a), show=progress))


def check_pairs(a: np.ndarray, b: np.ndarray, order: np.ndarray, *, read: Callable[[list[int]], ChunkPixels],
                task: Callable[[ChunkPixels, np.ndarray, np.ndarray, C], np.ndarray], setup: C, read_pairs: int,
                task_pairs: int, empty: np.ndarray, bar: StageProgress) -> np.ndarray:
    """`task`'s row for each pair of store rows (a[i], b[i]), in the pairs' own order: the pairs taken in
    `order`, `read_pairs` at a time (their panels read by `read`, each once), in Ray tasks of `task_pairs`
    pairs sharing that read (`run_in_tasks`); `empty` when there are no pairs. Closes `bar`.

    With Ray up, a chunk of more than one task's pairs is read in a Ray task of its own and stays in
    the object store (`read` is pickled to it: it must open the store by an absolute path). The driver
    used to read each chunk and put it there itself: its private memory then held the chunk while
    reading (~2x its size), and its shared memory kept every page of the object store it had written,
    growing with the chunks a scan has (139 MB at 1,000 generated papers, 520 MB at 5,000).
    """
    a, b = np.asarray(a)[order], np.asarray(b)[order]
    out: list[np.ndarray] = []
    try:
        for start in range(0, len(a), read_pairs):
            ca, cb = a[start:start + read_pairs], b[start:start + read_pairs]
            panels = np.union1d(ca, cb).tolist()
            chunk: ChunkPixels | ray.ObjectRef[ChunkPixels]
            decoded: int | ray.ObjectRef[int]
            if in_tasks(len(ca), task_pairs):
                # two references (`num_returns=2`), which Ray's type hints do not know
                chunk, decoded = cast(list[Any], _read_chunk_task.remote(read, panels))
            else:
                chunk = read(panels)
                decoded = _decoded_panels(chunk)
            out.append(run_in_tasks(task, chunk, ca, cb, setup, bar, step=task_pairs, stage=bar.desc,
                                    reread=functools.partial(read, panels)))
            _say_decoded(decoded, len(panels), bar.desc)
            del chunk, decoded  # before the next chunk is read: one chunk at a time
    finally:
        bar.close()
    return in_original_order(np.concatenate(out) if out else empty, order)


def in_tasks(pairs: int, step: int) -> bool:
    """Are `pairs` pairs checked in Ray tasks of `step` pairs? When Ray is up and they make more than one."""
    return ray.is_initialized() and pairs > step


def _read_chunk(read: Callable[[list[int]], ChunkPixels], panels: list[int]) -> tuple[ChunkPixels, int]:
    chunk = read(panels)
    return chunk, _decoded_panels(chunk)


# two returns: the chunk stays in the object store for the check's tasks, the count comes to the driver
_read_chunk_task = ray.remote(num_cpus=1, num_returns=2)(_read_chunk)


def _decoded_panels(chunk: ChunkPixels) -> int:
    """How many of the chunk's panels are encoded images, for want of stored features the check can use."""
    return int(chunk.is_image.sum())


def _say_decoded(decoded: int | ray.ObjectRef[int], panels: int, stage: str) -> None:
    """Log how many of a chunk's `panels` had their images decoded (a store older than its features, or another side)."""
    if isinstance(decoded, ray.ObjectRef):
        try:
            decoded = ray.get(decoded)
        except ray.exceptions.RayError:  # its read was lost and done again in this process, uncounted
            return
    if decoded:
        logger.info("%s: %d of %d panels have nothing stored it can use (an older store, another side); "
                    "their images were decoded", stage, decoded, panels)


def panel_local_order(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A permutation of the pairs (a[i], b[i]) that puts pairs sharing a panel near one another.

    A task (and a read chunk) does a panel's per-panel work once, however many of its pairs it
    holds (unpacking, keypoints, containers), so the fewer distinct panels a slice of consecutive
    pairs meets, the less work: the panels are numbered in reverse Cuthill-McKee order of the
    pair graph (which keeps neighbours close) and the pairs sorted by their two panels' numbers.
    On the k-NN pairs of 1,000 generated papers a 512-pair slice met 0.51 panels a pair, against
    1.07 in the order the candidates come (grouped by their first panel only; docs/pixel-check.md#cost).
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if len(a) < 2:
        return np.arange(len(a))
    panels, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    ia, ib = inverse[:len(a)], inverse[len(a):]
    n = len(panels)
    ends = (np.concatenate([ia, ib]), np.concatenate([ib, ia]))  # both directions: a symmetric graph
    graph = sparse.coo_matrix((np.ones(2 * len(a), dtype=np.float32), ends), shape=(n, n)).tocsr()
    numbering = np.empty(n, dtype=np.int64)
    numbering[reverse_cuthill_mckee(graph, symmetric_mode=True)] = np.arange(n)
    first, second = np.minimum(numbering[ia], numbering[ib]), np.maximum(numbering[ia], numbering[ib])
    return np.lexsort((second, first))


def in_original_order(results: np.ndarray, order: np.ndarray) -> np.ndarray:
    """`results` (one row a pair) of the pairs taken in `order` (a permutation), put back in the pairs' own order."""
    out = np.empty_like(results)
    out[order] = results
    return out


def run_in_tasks(fn: Callable[[D, np.ndarray, np.ndarray, C], np.ndarray], data: D | ray.ObjectRef[D],
                 xs: np.ndarray, ys: np.ndarray, config: C, done: Callable[[int], None] | None = None,
                 step: int = PIXEL_CHECK_TASK_PAIRS, *, reread: Callable[[], D] | None = None,
                 stage: str = "pixel check") -> np.ndarray:
    """fn(data, xs[i:j], ys[i:j], config) (an array, a row a pair) over slices of `step` pairs, in Ray tasks
    that share one copy of `data` (put into the object store once, or already there: a reference); the rows
    in order. A slice whose task fails (a worker killed, out of memory) is redone here, so one lost worker
    costs time, not the scan (`data` is then fetched here, or read again by `reread` if the task reading
    it was lost; an error of that read itself is raised). `done(n)` after each slice."""
    starts = list(range(0, len(xs), step))
    tick = done or (lambda n: None)
    if not in_tasks(len(xs), step):
        local = _fetch(data, reread)
        parts: list[np.ndarray] = []
        for i in starts:
            parts.append(fn(local, xs[i:i + step], ys[i:i + step], config))
            tick(len(parts[-1]))
        return np.concatenate(parts) if parts else fn(local, xs, ys, config)  # no pairs: fn's empty rows (their dtype)
    ref = data if isinstance(data, ray.ObjectRef) else ray.put(data)
    remote = ray.remote(num_cpus=1)(fn)
    pending = {remote.remote(ref, xs[i:i + step], ys[i:i + step], config): i for i in starts}
    results: dict[int, np.ndarray] = {}
    here: list[D] = []  # `data` in this process, fetched when a first slice is redone
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for r in ready:
                i = pending.pop(r)
                try:
                    results[i] = ray.get(r)
                except ray.exceptions.RayError as exc:
                    if not here:
                        here.append(_fetch(data, reread))
                    logger.warning("%s task failed (%s); redoing its %d pairs in this process",
                                   stage, type(exc).__name__, len(xs[i:i + step]))
                    results[i] = fn(here[0], xs[i:i + step], ys[i:i + step], config)
                tick(len(results[i]))
    finally:
        for r in pending:  # left only when a slice could not be redone: its error is the caller's
            ray.cancel(r)
    return np.concatenate([results[i] for i in starts])


def _fetch(data: D | ray.ObjectRef[D], reread: Callable[[], D] | None) -> D:
    """`data` in this process: itself, or what its reference names (read again by `reread` if its task was lost)."""
    if not isinstance(data, ray.ObjectRef):
        return data
    try:
        return ray.get(data)
    except ray.exceptions.RayTaskError:
        raise  # the read itself failed (a damaged store): reading it again would fail the same way
    except ray.exceptions.RayError as exc:
        if reread is None:
            raise
        logger.warning("the task reading a chunk was lost (%s); reading it in this process", type(exc).__name__)
        return reread()
