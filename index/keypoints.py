"""Keypoint candidates: panels that share many local features, for the crops the k-NN misses (issue 13).

A crop keeping a quarter to half of a real panel has cosine ~0.3 with it and ranks far down
its k-NN list, and sub-region vectors (`embedder.regions`, `scan --crop-vectors`) rescue few
of them at ~3x the candidates. Its pixels, however, are the panel's pixels: corners and blobs
found in the crop are found again in the source at another scale, in any quarter turn. ORB
keypoints (FAST corners with oriented binary descriptors, over a scale pyramid, so blind to
scale and rotation) of each panel are therefore matched against those of every other panel,
and a pair of panels sharing at least `min_votes` close descriptors becomes a candidate. ORB
is not blind to mirroring, so each panel's mirror image is also a query.

The descriptors are taken on the panel's grey image at the pixel check's detail side (128 px,
stored per panel in the store's `pixels` column), so nothing is decoded again. They are found a
chunk of panels at a time and wait on disk. Matching is an exact Hamming search
(`faiss.IndexBinaryFlat`) up to 50,000 descriptors, inverted lists above; inverted lists of more
than `shard_size` descriptors (~40 bytes each in memory) are written to disk in shards that share
one quantizer and are searched one at a time (`ShardedIndex`), so memory holds one chunk of queries
and one shard, not the corpus. `benchmarks/bench_keypoints.py` measures the candidates' recall by
alteration and their number.
"""
from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from embedder.pose import DESCRIPTOR_BYTES, orb_keypoints
from index.candidates import Pairs
from index.memory import release_freed_memory

logger = logging.getLogger(__name__)

QUERY_BATCH = 65_536  # descriptors searched at a time
SEARCH_GROUP = 262_144  # ... and in inverted lists: a group is put in list order, and reads each shard once
CHUNK_PANELS = 2048   # panels whose descriptors are found (then searched) at a time: ~70 kB a panel in memory
TRAIN_PER_LIST = 32       # sampled descriptors a list's centroid is trained on
SAMPLE_BLOCK = 1 << 22    # positions the training sample is drawn from at a time (32 MB of int64)
TOP_TRAIN_PER_CELL = 128  # ... and a top-level cell's (`vocabulary`)
TOP_PROBE = 8             # top-level cells whose lists' centroids are compared with a query to find its nearest lists

# the grey images (uint8, H x W) of some panels, in the order of their ids
GreyReader = Callable[[np.ndarray], Sequence[np.ndarray]]

@dataclass(frozen=True)
class KeypointOptions:
    """How panels' keypoints are found and when two panels count as sharing them."""

    n_keypoints: int = 400     # most keypoints kept per panel (FAST-Harris strongest first)
    fast_threshold: int = 10   # FAST corner threshold, grey levels of 255
    patch: int = 19            # ORB patch side (pixels); a corner closer than this to the border is not used
    max_distance: int = 64     # Hamming distance (of 256 bits) at which two descriptors match
    min_votes: int = 3         # matched descriptors for a pair to become a candidate
    per_panel: int = 5         # partners kept per panel, most votes first (bounds the pixel check's work)
    mirrored: bool = True      # also query with each panel's mirror image (crops that were flipped)
    neighbours: int = 8        # descriptors searched per query (the best one of another panel nearer than the last counts)
    max_ratio: float = 0.8     # ... when nearer than this times the best one of a third panel
    exact_up_to: int = 50_000  # descriptors searched exactly; more are searched in inverted lists ...
    list_size: int = 512       # ... of about this many descriptors ...
    nprobe: int = 24           # ... this many of them per query
    # inverted lists of more descriptors than this are split in shards of about this many, kept on disk and
    # searched one at a time: the memory the index takes (~90 MB a shard), whatever the corpus
    shard_size: int = 2_097_152


def orb_descriptors(grey: np.ndarray, options: KeypointOptions = KeypointOptions()) -> np.ndarray:
    """(n, 32) uint8 packed ORB descriptors of a grey (H, W) uint8 image; (0, 32) when it has too few corners."""
    return orb_keypoints(grey, options.n_keypoints, options.fast_threshold, options.patch).descriptors


def panel_descriptors(greys: Sequence[np.ndarray], options: KeypointOptions = KeypointOptions()
                      ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per panel: its descriptors, and those of its mirror image (empty when `options.mirrored` is off)."""
    own = [orb_descriptors(g, options) for g in greys]
    mirror = [orb_descriptors(np.ascontiguousarray(g[:, ::-1]), options) if options.mirrored
              else np.zeros((0, DESCRIPTOR_BYTES), np.uint8) for g in greys]
    return own, mirror


@dataclass(frozen=True)
class DescriptorChunk:
    """The descriptors of some panels: `own` then `mirror` hold each panel's block in `ids` order."""

    ids: np.ndarray            # int64
    own_counts: np.ndarray     # int64, per panel
    own: np.ndarray            # (sum of own_counts, 32) uint8
    mirror_counts: np.ndarray  # int64, per panel
    mirror: np.ndarray         # (sum of mirror_counts, 32) uint8


def _stacked(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, DESCRIPTOR_BYTES), np.uint8)


@dataclass(frozen=True)
class DescriptorSpool:
    """Every panel's descriptors, found a chunk of panels at a time and kept on disk (one `.npz` a chunk)."""

    files: list[Path]
    ids: np.ndarray         # all panels, in chunk order
    own_counts: np.ndarray  # their own descriptors (the mirror's are only queries, never indexed)

    @property
    def total(self) -> int:
        return int(self.own_counts.sum())

    def chunks(self) -> Iterator[DescriptorChunk]:
        for path in self.files:
            with np.load(path) as z:
                yield DescriptorChunk(**{name: z[name] for name in z.files})

    def own_blocks(self) -> Iterator[np.ndarray]:
        """Each chunk's own descriptors (what the index is filled with: it needs nothing else of the chunk)."""
        for path in self.files:
            with np.load(path) as z:
                yield z["own"]

    def own_rows(self, rows: np.ndarray) -> np.ndarray:
        """Own descriptors at positions `rows` (ascending) of all of them in chunk order."""
        out, offset = [], 0
        for own in self.own_blocks():
            here = rows[(rows >= offset) & (rows < offset + len(own))]
            out.append(own[here - offset])
            offset += len(own)
        return _stacked(out)

    def index(self, options: KeypointOptions, folder: Path) -> Any:
        """An index of every own descriptor, in chunk order (`descriptor_index`), sharded to `folder` past `options.shard_size`."""
        index = descriptor_index(self.total, self.own_rows, options)
        if not hasattr(index, "invlists"):  # exact search: at most `options.exact_up_to` descriptors
            for own in self.own_blocks():
                index.add(own)
            return index
        if self.total <= options.shard_size:
            fill_lists(index, self.own_blocks)
            return index
        return ShardedIndex.write(index, self.own_blocks, options.shard_size, folder)


def list_ranges(sizes: np.ndarray, shard_size: int) -> np.ndarray:
    """Bounds (first list of each range, then the number of lists) of consecutive lists of `sizes` entries
    holding at most `shard_size` entries a range (a larger list is a range alone)."""
    bounds, held = [0], 0
    for list_no, n in enumerate(sizes.tolist()):
        if n and held and held + n > shard_size:
            bounds.append(list_no)
            held = 0
        held += n
    return np.array([*bounds, len(sizes)], np.int64)


@dataclass(frozen=True)
class ShardedIndex:
    """Inverted lists too large to hold at once: shards of whole lists on disk, sharing one quantizer,
    searched one at a time.

    A shard holds a range of consecutive lists, which the vocabulary (`vocabulary`) numbers top cell
    by top cell, so a query's `nprobe` nearest lists fall mostly in one shard or a few. A query's
    lists are found once; each shard, read back in turn, is searched by the queries with lists in
    it, in those lists (`search_preassigned`), and its nearest merged with those of the shards
    before it. That gives the neighbours one index of every descriptor gives, but for which of
    several descriptors as near as the k-th take the last places, while memory holds one shard
    (and the quantizer, which each shard's file also holds).
    """

    files: list[Path]
    bounds: np.ndarray   # int64: the first list of each shard, then the number of lists
    template: Any        # the inverted-list index the shards copy (quantizer, lists, nprobe); it holds the quantizer alive

    @classmethod
    def write(cls, template: Any, blocks: Callable[[], Iterator[np.ndarray]], shard_size: int,
              folder: Path) -> ShardedIndex:
        """Shards of about `shard_size` descriptors of the lists of inverted-list index `template`, holding the
        descriptors of `blocks()` (ids: their positions, in order), written to `folder`.

        `blocks()` is read once to find each descriptor's list (kept in `folder`), then once a shard.
        """
        import faiss

        assigned, sizes = [], np.zeros(template.nlist, np.int64)
        for n, block in enumerate(blocks()):
            lists = nearest_list(template.quantizer, block)
            sizes += np.bincount(lists, minlength=template.nlist)
            assigned.append(folder / f"lists-{n:06d}.npy")
            np.save(assigned[-1], lists)
        bounds = list_ranges(sizes, shard_size)
        paths = []
        for n, (first, end) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist())):
            shard = faiss.IndexBinaryIVF(template.quantizer, template.d, template.nlist)  # trained: its quantizer holds every list
            fill_list_range(shard, blocks(), (np.load(path) for path in assigned), sizes, first, end)
            paths.append(folder / f"shard-{n:04d}.faissb")
            faiss.write_index_binary(shard, str(paths[-1]))
            del shard
        for path in assigned:
            path.unlink()
        return cls(paths, bounds, template)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(distances int32, positions int64) of each query's `k` nearest descriptors, as `IndexBinaryIVF.search`."""
        return in_list_order(self.template.quantizer, self.template.nprobe, queries, partial(self._search_sorted, k=k))

    def _search_sorted(self, queries: np.ndarray, lists: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """`search` of queries already in list order, given their lists."""
        import faiss

        dist = np.full((len(queries), k), np.iinfo(np.int32).max, np.int32)  # what faiss gives for no neighbour
        nearest = np.full((len(queries), k), -1, np.int64)
        for path, first, end in zip(self.files, self.bounds[:-1].tolist(), self.bounds[1:].tolist(), strict=True):
            inside = (lists >= first) & (lists < end)
            rows = np.flatnonzero(inside.any(axis=1))  # the queries with lists here, still in list order
            if not len(rows):
                continue
            shard: Any = faiss.read_index_binary(str(path))  # an IndexBinaryIVF, typed as its base
            shard.nprobe = lists.shape[1]
            for start in range(0, len(rows), QUERY_BATCH):
                part = rows[start:start + QUERY_BATCH]
                # a list of another shard is left out (faiss skips a list -1)
                d, i = shard.search_preassigned(queries[part], k, np.where(inside[part], lists[part], -1), None)
                dist[part], nearest[part] = faiss.merge_knn_results(np.stack([dist[part], d]),
                                                                    np.stack([nearest[part], i]))
            del shard, inside
        return dist, nearest


def lists_in_order(quantizer: Any, queries: np.ndarray, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, lists): `queries` ordered by their nearest inverted list, and the `nprobe` lists each one
    searches (int32), in that order.

    Queries searched in this order read the same lists one after the other, from the CPU's caches:
    the same neighbours, in 0.71 of the keypoint stage's time at 1,000 papers (docs/benchmarks.md).
    """
    # at most every list: FAISS's search takes `nprobe` lists a query where it would search only `nlist`
    nprobe = min(nprobe, quantizer.ntotal)
    lists = np.empty((len(queries), nprobe), np.int32)
    for start in range(0, len(queries), QUERY_BATCH):
        lists[start:start + QUERY_BATCH] = quantizer.search(queries[start:start + QUERY_BATCH], nprobe)[1]
    order = np.argsort(lists[:, 0], kind="stable")
    return order, lists[order]


def in_list_order(quantizer: Any, nprobe: int, queries: np.ndarray,
                  search_sorted: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """`search_sorted(queries, lists)` of the queries put in list order (`lists_in_order`), its results put back."""
    order, lists = lists_in_order(quantizer, queries, nprobe)
    dist, nearest = search_sorted(queries[order], lists)
    return in_given_order(dist, order), in_given_order(nearest, order)


def in_given_order(rows: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The rows of a result for queries taken in `order`, back in the queries' own order."""
    out = np.empty_like(rows)
    out[order] = rows
    return out


def search_inverted_lists(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`index.search` of an `IndexBinaryIVF`, the queries taken in the order of their nearest list (`lists_in_order`)."""
    def search_sorted(queries: np.ndarray, lists: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dist, nearest = np.empty((len(queries), k), np.int32), np.empty((len(queries), k), np.int64)
        for start in range(0, len(queries), QUERY_BATCH):  # FAISS copies a batch's lists (int64) and distances
            part = slice(start, start + QUERY_BATCH)
            dist[part], nearest[part] = index.search_preassigned(queries[part], k, lists[part], None)
        return dist, nearest

    return in_list_order(index.quantizer, index.nprobe, queries, search_sorted)


def search_function(index: Any) -> Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
    """How `keypoint_votes` searches `index` (exact, inverted lists in list order, or shards)."""
    import faiss

    return partial(search_inverted_lists, index) if isinstance(index, faiss.IndexBinaryIVF) else index.search


def spool_descriptors(ids: np.ndarray, read_greys: GreyReader, folder: Path, options: KeypointOptions,
                      chunk_panels: int, done: Callable[[int], None]) -> DescriptorSpool:
    """Find the descriptors of panels `ids` `chunk_panels` at a time, each chunk saved to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    files, counts = [], []
    for n, start in enumerate(range(0, len(ids), chunk_panels)):
        part = ids[start:start + chunk_panels]
        own, mirror = panel_descriptors(read_greys(part), options)
        chunk = DescriptorChunk(part, np.array([len(d) for d in own], np.int64), _stacked(own),
                                np.array([len(d) for d in mirror], np.int64), _stacked(mirror))
        files.append(folder / f"descriptors-{n:06d}.npz")
        np.savez(files[-1], **vars(chunk))
        counts.append(chunk.own_counts)
        done(len(part))
    return DescriptorSpool(files, ids, np.concatenate(counts) if counts else np.zeros(0, np.int64))


def binary_kmeans(x: np.ndarray, k: int, *, iterations: int = 10, seed: int = 0) -> np.ndarray:
    """(k, bytes) binary centroids of packed binary vectors `x` (FAISS's binary k-means: bits as ±1, centroids by sign)."""
    import faiss

    # trained through an IVF index, not `faiss.Kmeans`: that one reads its centroids back as a SWIG
    # std::vector, which in a process that has imported PyMuPDF (SWIG too) comes back as PyMuPDF's
    # (faiss issue #3689)
    centroids = faiss.IndexBinaryFlat(8 * x.shape[1])
    clustering = faiss.IndexBinaryIVF(centroids, 8 * x.shape[1], k)
    clustering.cp.niter, clustering.cp.seed = iterations, seed
    # the sample is sized for its centroids already: no subsampling, no warning, no 32 MB buffer for a few rows
    clustering.cp.min_points_per_centroid, clustering.cp.max_points_per_centroid = 1, len(x) // k + 1
    clustering.cp.decode_block_size = min(len(x), clustering.cp.decode_block_size)
    clustering.train(x)
    return centroids.reconstruct_n(0, centroids.ntotal)


def vocabulary(sample: np.ndarray, cells: int) -> Any:
    """A FAISS quantizer of about len(sample) / `TRAIN_PER_LIST` binary centroids of `sample`, in two levels.

    The sample is clustered into `cells` cells, then each cell's members into one centroid per
    `TRAIN_PER_LIST` of them (a vocabulary tree, Nistér & Stewénius 2006), so the lists a big cell
    holds are no fuller than a small cell's. Training costs about (sample × cells) distances a pass
    where one k-means of all the centroids would cost (sample × centroids), and finding a vector's
    nearest centroids costs `cells` + `TOP_PROBE` cells' worth: the centroids are the inverted lists
    of an index whose own lists are the top cells.
    """
    import faiss

    bits = 8 * sample.shape[1]
    # the top level's centroids are trained on a subsample: they need a hundred points each, not thousands
    top_centroids = binary_kmeans(sample[::max(1, len(sample) // (TOP_TRAIN_PER_CELL * cells))], cells)
    top = faiss.IndexBinaryFlat(bits)
    top.add(top_centroids)
    _, nearest = top.search(sample, 1)
    order = np.argsort(nearest[:, 0], kind="stable")
    bounds = np.searchsorted(nearest[order, 0], np.arange(cells + 1))
    kept: list[int] = []
    words: list[np.ndarray] = []
    word_cells: list[np.ndarray] = []
    for c in range(cells):
        members = sample[order[bounds[c]:bounds[c + 1]]]
        if len(members):  # a cell no sample row fell in gets no centroid, and is dropped: no list is unreachable
            words.append(binary_kmeans(members, max(1, round(len(members) / TRAIN_PER_LIST)), seed=c))
            word_cells.append(np.full(len(words[-1]), len(kept), np.int64))
            kept.append(c)
    coarse = faiss.IndexBinaryFlat(bits)
    coarse.add(top_centroids[kept])
    quantizer: Any = faiss.IndexBinaryIVF(coarse, bits, coarse.ntotal)  # trained: `coarse` holds every cell
    centroids, cell_of = np.concatenate(words), np.concatenate(word_cells)
    # each centroid in the cell it was trained in (a plain `add` would move some to a nearer cell, leaving
    # cells empty that a search then probes for nothing)
    quantizer.add_core(len(centroids), faiss.swig_ptr(centroids), None, faiss.swig_ptr(cell_of))
    quantizer.nprobe = TOP_PROBE
    return quantizer


def sample_positions(total: int, size: int, seed: int = 0, block: int = SAMPLE_BLOCK) -> np.ndarray:
    """About `size` positions of range(total), each as likely, ascending; memory set by `block`, not by `total`.

    Each block of `block` positions keeps a binomial number of them (the mean share `size / total`),
    picked without replacement: a permutation of every position would hold 8 bytes a descriptor,
    16 GB at two billion descriptors (about 10 million panels), where the sample is a sixteenth of them.
    """
    rate = min(1.0, size / total) if total else 0.0
    rng = np.random.default_rng(seed)
    starts = np.arange(0, total, block, dtype=np.int64)
    widths = np.minimum(block, total - starts)
    kept = [start + np.sort(rng.choice(width, count, replace=False, shuffle=False))
            for start, width, count in zip(starts, widths, rng.binomial(widths, rate)) if count]
    return np.concatenate(kept) if kept else np.zeros(0, np.int64)


def descriptor_index(total: int, rows: Callable[[np.ndarray], np.ndarray],
                     options: KeypointOptions = KeypointOptions()) -> Any:
    """An empty FAISS binary index for `total` descriptors: exact up to `options.exact_up_to`, else inverted lists.

    An exact search costs (descriptors)² — a minute of CPU at 700 panels — so a larger set is
    split into inverted lists, whose centroids (a `vocabulary` trained on a sample that
    `rows(positions)` reads) are found in two levels, and each query scans the `options.nprobe`
    lists of the centroids nearest to it among those of the `TOP_PROBE` nearest top cells. The
    lists hold √n/2 descriptors (then a query's distances to the centroids and to the lists'
    descriptors are about as many) up to `options.list_size`, then `options.list_size`: from
    there on a query's cost grows only with the top cells (√(n / list_size)), not with n.
    """
    import faiss

    bits = 8 * DESCRIPTOR_BYTES
    if total <= options.exact_up_to:
        return faiss.IndexBinaryFlat(bits)
    lists = total / min(options.list_size, np.sqrt(total) / 2)
    sample = sample_positions(total, round(TRAIN_PER_LIST * lists))
    quantizer = vocabulary(rows(sample), max(2, round(np.sqrt(lists))))
    clustered = faiss.IndexBinaryIVF(quantizer, bits, quantizer.ntotal)  # trained: its quantizer holds every list
    # at most every list, as `lists_in_order` gives them: FAISS's search wants that many lists a query
    clustered.nprobe = min(options.nprobe, quantizer.ntotal)
    return clustered


def fill_lists(index: Any, blocks: Callable[[], Iterator[np.ndarray]]) -> None:
    """Add the descriptors of every block of `blocks()` (read twice) to the empty inverted-list `index`, in order.

    Each descriptor's list is found once, in the first pass, and handed to the second.
    """
    if index.ntotal:
        raise ValueError(f"fill_lists fills an empty index; this one holds {index.ntotal} entries")
    lists = [nearest_list(index.quantizer, block) for block in blocks()]
    sizes = np.bincount(np.concatenate(lists), minlength=index.nlist) if lists else np.zeros(index.nlist, np.int64)
    fill_list_range(index, blocks(), lists, sizes, 0, index.nlist)


def fill_list_range(index: Any, blocks: Iterable[np.ndarray], lists: Iterable[np.ndarray], sizes: np.ndarray,
                    first: int, end: int) -> None:
    """Add to empty `index` the descriptors of `blocks` whose list (`lists`, block by block) is in [first, end),
    under their positions among all blocks; `sizes`: every list's entries."""
    in_range = np.zeros_like(sizes)
    in_range[first:end] = sizes[first:end]
    reserve_lists(index, in_range)
    position = 0
    for block, of_block in zip(blocks, lists, strict=True):
        here = np.flatnonzero((of_block >= first) & (of_block < end))
        add_to_lists(index, block[here], of_block[here], position + here)
        position += len(block)


def nearest_list(quantizer: Any, descriptors: np.ndarray) -> np.ndarray:
    """The inverted list (int32) each descriptor belongs in: its nearest centroid's."""
    lists = quantizer.assign(descriptors, 1)[:, 0].astype(np.int32)
    if len(lists) and lists.min() < 0:  # a quantizer with no centroid near
        raise ValueError("the index's quantizer left descriptors without a list")
    return lists


def reserve_lists(index: Any, sizes: np.ndarray) -> None:
    """Size each list of the empty inverted-list `index` once, to the `sizes` entries it will hold.

    Lists grown by appends keep up to twice what they hold (a std::vector doubles), 59 bytes a
    40-byte entry (a 32-byte code and an 8-byte id) against 44 sized first, on 4 million descriptors.
    """
    for list_no, size in enumerate(sizes.tolist()):
        if size:
            index.invlists.resize(list_no, size)  # room for every entry (a vector keeps its capacity ...
            index.invlists.resize(list_no, 0)     # ... when emptied): the adds never reallocate


def add_to_lists(index: Any, codes: np.ndarray, lists: np.ndarray, ids: np.ndarray) -> None:
    """Add descriptors `codes` to their `lists` of inverted-list `index`, under `ids`."""
    import faiss

    # named, not temporaries: `swig_ptr` keeps no reference to the array it points into
    codes, lists, ids = np.ascontiguousarray(codes), lists.astype(np.int64), ids.astype(np.int64)
    index.add_core(len(codes), faiss.swig_ptr(codes), faiss.swig_ptr(ids), faiss.swig_ptr(lists))


def _votes(dist: np.ndarray, nb: np.ndarray, holders: np.ndarray, ends: np.ndarray, owner_of_query: np.ndarray,
           options: KeypointOptions) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi): for each query that votes (its nearest indexed descriptors `dist`, `nb`), its panel and the
    panel it votes for, the smaller id first."""
    # the panel of an indexed descriptor: the one whose block of the index holds it
    panel_of = np.where(nb >= 0, holders[np.searchsorted(ends, np.maximum(nb, 0), side="right")], -1)
    # only the neighbours nearer than the k-th when all k were found: which of several descriptors as near
    # as the k-th make the cut depends on the order the search met them in (a sharded index's differs)
    cut = np.where(nb[:, -1] >= 0, dist[:, -1], np.iinfo(np.int32).max)
    other = (nb >= 0) & (dist < cut[:, None]) & (panel_of != owner_of_query[:, None])
    has = other.any(axis=1)
    first = other.argmax(axis=1)  # the nearest descriptor of another panel
    rows = np.arange(len(nb))
    nearest_panel, nearest = panel_of[rows, first], dist[rows, first]
    # the nearest descriptor of yet another panel: a descriptor as close in many panels (flat or
    # noisy texture) tells nothing about this pair (Lowe's ratio test, across panels); with
    # max_ratio < 1, two panels tied for nearest refuse each other, in whichever order they came
    runner_up = other & (panel_of != nearest_panel[:, None])
    # (one not among the k found is no nearer than the k-th: the k-th stands in for it)
    second = np.where(runner_up.any(axis=1), dist[rows, runner_up.argmax(axis=1)], cut)
    has &= (nearest <= options.max_distance) & (nearest < options.max_ratio * second)
    a, b = owner_of_query[has], nearest_panel[has]
    return np.minimum(a, b), np.maximum(a, b)


def keypoint_votes(ids: np.ndarray, read_greys: GreyReader, folder: Path,
                   options: KeypointOptions = KeypointOptions(), *, chunk_panels: int = CHUNK_PANELS,
                   floor: int = 0, done: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, votes) with a < b, in that order: how many descriptors of one panel (or of its mirror) matched the other.

    Each query descriptor votes once, for the panel of its nearest descriptor in another panel,
    when that one is within `options.max_distance` and clearly nearer (`options.max_ratio`)
    than the nearest of any third panel; votes of both directions and of the mirror images add up.
    Only the `options.neighbours` nearest are looked at, and of them only those nearer than the
    last (whose distance stands in for a third panel not among them), so ties at the last place
    change nothing. The descriptors are found `chunk_panels` panels at a time and wait in `folder`
    (on disk) until they are searched, as do the index's shards past `options.shard_size`: memory
    holds one chunk and the index or one shard of it, whatever the number of panels. The votes
    are tallied after each chunk's search; a pair whose panels have both been searched with fewer
    than `floor` votes is dropped there (it cannot reach it), so the tally holds the pairs that
    still may. `done(n)` as each chunk's panels are found, and again as they are searched.
    """
    import faiss

    tick = done or (lambda n: None)
    spool = spool_descriptors(np.asarray(ids, dtype=np.int64), read_greys, folder, options, chunk_panels, tick)
    release_freed_memory()  # the grey images' reads: not held under the index and the search
    empty = np.zeros(0, np.int64)
    if spool.total == 0:
        return empty, empty, empty
    if spool.ids.max() >= 1 << 31:  # `pair_keys` packs two row ids into one int64
        raise ValueError(f"row id {int(spool.ids.max())} is beyond the keypoint votes' 2**31")
    index = spool.index(options, folder)
    search = search_function(index)
    # a group's queries are put in the order of the lists they search: the more of them, the more share a list
    group = QUERY_BATCH if isinstance(index, faiss.IndexBinaryFlat) else SEARCH_GROUP
    has_own = spool.own_counts > 0
    holders, ends = spool.ids[has_own], np.cumsum(spool.own_counts[has_own])
    searched = np.zeros(int(spool.ids.max()) + 1, dtype=bool)  # by row id: its descriptors have voted
    tally = (empty, empty)  # pair keys (`pair_keys`), ascending, and their votes
    for chunk in spool.chunks():
        queries = np.concatenate([chunk.own, chunk.mirror])
        owners = np.concatenate([np.repeat(chunk.ids, chunk.own_counts), np.repeat(chunk.ids, chunk.mirror_counts)])
        key_parts, vote_parts = [tally[0]], [tally[1]]
        # bounded memory: the search's arrays are k + nprobe a query; a sharded index reads each shard once a group
        for start in range(0, len(queries), group):
            dist, nb = search(queries[start:start + group], options.neighbours)
            of_group = owners[start:start + group]
            for at in range(0, len(nb), QUERY_BATCH):
                part = slice(at, at + QUERY_BATCH)
                lo, hi = _votes(dist[part], nb[part], holders, ends, of_group[part], options)
                keys, votes = np.unique(pair_keys(lo, hi), return_counts=True)
                key_parts.append(keys)
                vote_parts.append(votes)
        keys, votes = add_votes(key_parts, vote_parts)
        searched[chunk.ids] = True
        lo, hi = split_pair_keys(keys)
        keep = (votes >= floor) | ~(searched[lo] & searched[hi])
        tally = (keys[keep], votes[keep])
        tick(len(chunk.ids))
    a, b = split_pair_keys(tally[0])
    return a, b, tally[1]


def pair_keys(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """One int64 a pair of row ids (below 2**31): sorting the keys sorts the pairs by (lo, hi)."""
    return (lo.astype(np.int64) << 32) | hi.astype(np.int64)


def split_pair_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (lo, hi) row ids of `pair_keys`."""
    return keys >> 32, keys & 0xFFFFFFFF


def add_votes(key_parts: list[np.ndarray], vote_parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys of `key_parts`, ascending, and each one's votes summed over the parts (int64)."""
    keys, inverse = np.unique(np.concatenate(key_parts), return_inverse=True)
    votes = np.bincount(inverse, weights=np.concatenate(vote_parts), minlength=len(keys))
    return keys, votes.astype(np.int64)


def strongest_per_panel(a: np.ndarray, b: np.ndarray, votes: np.ndarray, per_panel: int) -> np.ndarray:
    """Mask of the pairs among the `per_panel` most-voted partners of either of their panels."""
    panel = np.concatenate([a, b])  # each pair once under each of its panels
    pair = np.concatenate([np.arange(len(a)), np.arange(len(a))])
    order = np.lexsort((-np.concatenate([votes, votes]), panel))  # by panel, most votes first
    panel, pair = panel[order], pair[order]
    start = np.flatnonzero(np.r_[True, panel[1:] != panel[:-1]])
    rank = np.arange(len(panel)) - np.repeat(start, np.diff(np.r_[start, len(panel)]))
    keep = np.zeros(len(a), dtype=bool)
    keep[pair[rank < per_panel]] = True
    return keep


def keypoint_pairs(ids: np.ndarray, read_greys: GreyReader, vectors: np.ndarray,
                   options: KeypointOptions = KeypointOptions(), *, chunk_panels: int = CHUNK_PANELS,
                   done: Callable[[int], None] | None = None) -> Pairs:
    """Candidate pairs of panels `ids` sharing keypoints; `sim` is their vectors' cosine.

    `read_greys(some_ids)` gives those panels' grey images (at the stored 128 px side), a chunk
    at a time (see `keypoint_votes`; the descriptors wait in a temporary folder). `vectors` is
    indexed by row id (`FigureStore.dense_vectors()`), as in `index.candidates`.
    """
    with tempfile.TemporaryDirectory(prefix="reusescan-keypoints-") as folder:
        a, b, votes = keypoint_votes(ids, read_greys, Path(folder), options, chunk_panels=chunk_panels,
                                     floor=options.min_votes, done=done)
    release_freed_memory()  # the descriptor index's lists, freed: the rest of the scan need not keep their pages
    keep = strongest_per_panel(a, b, votes, options.per_panel)
    a, b = a[keep], b[keep]
    sim = np.einsum("ij,ij->i", vectors[a], vectors[b]) if len(a) else np.zeros(0, np.float32)
    logger.info("keypoint candidates: %d panels, %d pairs", len(ids), len(a))
    return Pairs.from_arrays(a, b, sim.astype(np.float32))
