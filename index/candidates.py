"""Candidate pairs from nearest neighbours, trivial-pair removal, and scoring with the head.

The pipeline for one scan (all plain functions over numpy arrays)::

    keys   = RecordKeys.from_table(store.read_keys())
    ids, q = store.read_vectors(include_noise=False)      # or one file at a time
    pairs  = self_join(index, ids, q, keys, k=10, min_sim=0.5)
    scores = score_candidates(pairs, store.dense_vectors(), embedder.score)
    kept   = pairs.with_scores(scores).accept(threshold)

Nightly increments query only the new records against the (updated) index, which
holds everything: `self_join` with the new records as queries.

Several query vectors per record are allowed (repeat the record's id): e.g. the 8
rotations/flips of a panel embedded separately. Pairs are reduced to one per
unordered pair with the maximum similarity over views, so rotated or flipped
reuse is found even when the embedding is not invariant. That is the hook for the
embedder's dihedral views; whether it is needed is measured with the trained model.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa

from scanner.noise import icon_in_template_zone
from scanner.records import NOISE_FLAGS

logger = logging.getLogger(__name__)

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Pairs:
    """Unordered pairs of store row ids, a < b, each once, sorted by (a, b).

    `sim` is the cosine of the nearest-neighbour search (max over query views);
    `score` is the similarity head's probability once scored (NaN before).
    """

    a: np.ndarray
    b: np.ndarray
    sim: np.ndarray
    score: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __post_init__(self) -> None:
        if not (len(self.a) == len(self.b) == len(self.sim)):
            raise ValueError("a, b and sim must have the same length")
        if len(self.score) != len(self.a):
            object.__setattr__(self, "score", np.full(len(self.a), np.nan, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.a)

    @classmethod
    def empty(cls) -> Pairs:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))

    @classmethod
    def from_arrays(cls, a: np.ndarray, b: np.ndarray, sim: np.ndarray) -> Pairs:
        """Canonical pairs: self pairs dropped, (min, max) order, one row per pair with its max sim."""
        a = np.asarray(a, dtype=np.int64).ravel()
        b = np.asarray(b, dtype=np.int64).ravel()
        sim = np.asarray(sim, dtype=np.float32).ravel()
        keep = (a != b) & (a >= 0) & (b >= 0)
        a, b, sim = a[keep], b[keep], sim[keep]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        if len(lo) == 0:
            return cls.empty()
        # sort by (lo, hi, -sim) so the first row of each pair holds its max similarity
        order = np.lexsort((-sim, hi, lo))
        lo, hi, sim = lo[order], hi[order], sim[order]
        first = np.ones(len(lo), dtype=bool)
        first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
        return cls(lo[first], hi[first], sim[first])

    def select(self, mask: np.ndarray) -> Pairs:
        return Pairs(self.a[mask], self.b[mask], self.sim[mask], self.score[mask])

    def with_scores(self, scores: np.ndarray) -> Pairs:
        s = np.asarray(scores, dtype=np.float32)
        if s.shape != (len(self),):
            raise ValueError(f"expected {len(self)} scores, got shape {s.shape}")
        return Pairs(self.a, self.b, self.sim, s)

    def accept(self, threshold: float) -> Pairs:
        """The scored pairs with score >= `threshold` (unscored pairs are never accepted)."""
        return self.select(np.nan_to_num(self.score, nan=-1.0) >= threshold)

    def as_set(self) -> set[tuple[int, int]]:
        return set(zip(self.a.tolist(), self.b.tolist()))


def union_pairs(*parts: Pairs) -> Pairs:
    """One canonical set of pairs from several sources (k-NN, hashes); keeps the max sim."""
    parts = tuple(p for p in parts if len(p))
    if not parts:
        return Pairs.empty()
    return Pairs.from_arrays(np.concatenate([p.a for p in parts]), np.concatenate([p.b for p in parts]),
                             np.concatenate([p.sim for p in parts]))


@dataclass(frozen=True)
class RecordKeys:
    """Per-record facts that make a pair trivial, as arrays aligned with sorted `row_id`.

    figure/parent codes share one code space so `parent[i] == figure[j]` means
    record j is the figure record i was cut from.
    """

    row_id: np.ndarray      # int64, sorted
    figure: np.ndarray      # int64 code of figure_id
    parent: np.ndarray      # int64 code of parent_id, -1 for none
    doc: np.ndarray         # int64 code of the document (relative path + content hash)
    page: np.ndarray        # int32
    bbox: np.ndarray        # float32 (n, 4): x0 y0 x1 y1 in PDF points
    noise: np.ndarray       # bool: tiny / uniform / boilerplate
    icon: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # bool: PDF badge/logo spot

    @classmethod
    def from_table(cls, table: pa.Table) -> RecordKeys:
        """From a table with `index.store.KEY_COLUMNS` (e.g. `FigureStore.read_keys()`)."""
        import pandas as pd

        row_id = table.column("row_id").to_numpy().astype(np.int64)
        order = np.argsort(row_id, kind="stable")
        fig = table.column("figure_id").to_pylist()
        par = table.column("parent_id").to_pylist()
        codes, uniques = pd.factorize(pd.Series(fig + [p for p in par if p is not None], dtype=object))
        lookup = {u: i for i, u in enumerate(uniques)}
        figure = codes[: len(fig)].astype(np.int64)
        parent = np.array([lookup[p] if p is not None else -1 for p in par], dtype=np.int64)
        # A document is its path and its content: a paper submitted twice (two files,
        # same bytes) is two documents, and its pages pair up as reuse.
        doc_keys = [f"{d}\x00{s}" for d, s in zip(table.column("doc").to_pylist(), table.column("doc_sha256").to_pylist())]
        doc = pd.factorize(pd.Series(doc_keys, dtype=object))[0].astype(np.int64)
        page = table.column("page").to_numpy(zero_copy_only=False).astype(np.int32)
        bbox = np.stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float32)
                         for c in ("x0", "y0", "x1", "y1")], axis=1) if len(row_id) else np.zeros((0, 4), np.float32)
        flags = table.column("flags").to_pylist()
        noise = np.fromiter((bool(NOISE_FLAGS.intersection(f or ())) for f in flags), dtype=bool, count=len(flags))
        # only PDF pages have template zones; an image file's "page" is a frame, its box pixels
        is_pdf = np.fromiter((str(d).lower().endswith(".pdf") for d in table.column("doc").to_pylist()),
                             dtype=bool, count=len(row_id))
        # judged on the whole placement: a panel cut from a figure is as big as that figure here
        # (a badge split into icon and caption stays a badge; a small panel of a figure does not)
        row_of_figure = {int(f): i for i, f in enumerate(figure)}
        placed = np.array([row_of_figure.get(int(p), i) if p >= 0 else i for i, p in enumerate(parent)], dtype=np.int64)
        icon = is_pdf & icon_in_template_zone(page[placed], bbox[placed]) if len(row_id) else np.zeros(0, dtype=bool)
        return cls(row_id[order], figure[order], parent[order], doc[order], page[order], bbox[order], noise[order],
                   icon[order])

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Index into these arrays of each row id; KeyError for unknown ids."""
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.searchsorted(self.row_id, ids)
        pos = np.clip(pos, 0, max(len(self.row_id) - 1, 0))
        if len(ids) and (len(self.row_id) == 0 or (self.row_id[pos] != ids).any()):
            raise KeyError("row ids missing from the record keys")
        return pos


def bbox_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection area over the smaller box's area, rowwise for (n, 4) boxes (0 for empty boxes)."""
    ix = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    small = np.minimum(area_a, area_b)
    return np.where(small > 0, ix * iy / np.where(small > 0, small, 1), 0.0)


def trivial_mask(pairs: Pairs, keys: RecordKeys, *, exclude_noise: bool = True,
                 min_overlap: float = 0.5) -> np.ndarray:
    """True for pairs that are not reuse but the same pixels seen twice by construction.

    * the same record, or the same `figure_id` (one occurrence ingested twice: figure
      ids derive from the document's path and content hash);
    * a panel and the compound figure it was cut from (`parent_id`), either way round;
    * two records of the same document (path and content) on the same page whose boxes overlap
      by at least `min_overlap` of the smaller one: one picture in another (a panel
      and a sub-panel or its parent, an image drawn twice at the same place); two
      sibling panels side by side do not overlap and are kept, since duplicated
      panels inside one figure are exactly what we look for;
    * with `exclude_noise`, any record flagged tiny, uniform or boilerplate, and two
      icon-sized placements in the template zones of two documents (`scanner.noise.
      icon_in_template_zone`: journal badges and logos drawn from different pixels).
    """
    if len(pairs) == 0:
        return np.zeros(0, dtype=bool)
    pa_, pb = keys.positions(pairs.a), keys.positions(pairs.b)
    trivial = pairs.a == pairs.b
    trivial |= keys.figure[pa_] == keys.figure[pb]
    trivial |= (keys.parent[pa_] >= 0) & (keys.parent[pa_] == keys.figure[pb])
    trivial |= (keys.parent[pb] >= 0) & (keys.parent[pb] == keys.figure[pa_])
    same_place = (keys.doc[pa_] == keys.doc[pb]) & (keys.page[pa_] == keys.page[pb])
    if same_place.any():
        ov = bbox_overlap(keys.bbox[pa_[same_place]], keys.bbox[pb[same_place]])
        idx = np.flatnonzero(same_place)
        trivial[idx[ov >= min_overlap]] = True
    if exclude_noise:
        trivial |= keys.noise[pa_] | keys.noise[pb]
        if len(keys.icon):
            trivial |= keys.icon[pa_] & keys.icon[pb] & (keys.doc[pa_] != keys.doc[pb])
    return trivial


def drop_trivial(pairs: Pairs, keys: RecordKeys, *, exclude_noise: bool = True, min_overlap: float = 0.5) -> Pairs:
    """`pairs` without the trivial ones (see `trivial_mask`)."""
    return pairs.select(~trivial_mask(pairs, keys, exclude_noise=exclude_noise, min_overlap=min_overlap))


class Searchable(Protocol):
    """What the candidate search needs of an index (`index.faiss_index.VectorIndex` has it)."""

    def search(self, queries: np.ndarray, k: int, *, batch_size: int = ...) -> tuple[np.ndarray, np.ndarray]:
        """(D, I): cosine similarities and store row ids of the k nearest neighbours of each query."""
        ...


def knn_pairs(index: Searchable, query_ids: np.ndarray, query_vectors: np.ndarray, *, k: int = 10,
              min_sim: float = 0.5, batch_size: int = 16384) -> Pairs:
    """Pairs (query, neighbour) among the k nearest neighbours with cosine >= `min_sim`.

    Searches k+1 neighbours (the query's own stored vector is usually the first) in
    batches of `batch_size` queries; `query_ids` may repeat (several views of one
    record). Returns canonical pairs, self pairs dropped.
    """
    qids = np.asarray(query_ids, dtype=np.int64)
    q = np.asarray(query_vectors, dtype=np.float32)
    if len(qids) != len(q):
        raise ValueError(f"{len(qids)} query ids but {len(q)} query vectors")
    if len(q) == 0:
        return Pairs.empty()
    parts: list[Pairs] = []
    for s in range(0, len(q), batch_size):
        D, I = index.search(q[s:s + batch_size], k + 1, batch_size=batch_size)
        ok = (I >= 0) & (D >= min_sim)
        rows = np.broadcast_to(qids[s:s + batch_size, None], I.shape)
        parts.append(Pairs.from_arrays(rows[ok], I[ok], D[ok]))
    return union_pairs(*parts)


def self_join(index: Searchable, query_ids: np.ndarray, query_vectors: np.ndarray, keys: RecordKeys, *,
              k: int = 10, min_sim: float = 0.5, batch_size: int = 16384, exclude_noise: bool = True) -> Pairs:
    """Whole-store candidates: every (non-noise) record against the index, trivial pairs dropped.

    Pass all stored vectors of the records to match as queries (`FigureStore.read_vectors`),
    or call once per store file and `union_pairs` the results to bound memory.
    """
    if exclude_noise and len(query_ids):
        keep = ~keys.noise[keys.positions(query_ids)]
        query_ids, query_vectors = np.asarray(query_ids)[keep], np.asarray(query_vectors)[keep]
    pairs = knn_pairs(index, query_ids, query_vectors, k=k, min_sim=min_sim, batch_size=batch_size)
    out = drop_trivial(pairs, keys, exclude_noise=exclude_noise)
    logger.info("self-join: %d queries, %d raw pairs, %d after dropping trivial ones", len(query_ids), len(pairs), len(out))
    return out


def score_candidates(pairs: Pairs, vectors: np.ndarray | Callable[[np.ndarray], np.ndarray], scorer: Scorer,
                     batch_size: int = 4096) -> np.ndarray:
    """Score every pair with `scorer` (the model's head on two (B, D) vector arrays -> (B,) in [0, 1]).

    `vectors` is either an array indexed by row id (`FigureStore.dense_vectors()`, row
    ids are dense) or a function from row ids to their vectors (for stores too big to
    hold, or to return several views). Returns float32 scores aligned with `pairs`.
    """
    lookup: Callable[[np.ndarray], np.ndarray]
    lookup = vectors if callable(vectors) else (lambda ids: np.asarray(vectors)[ids])
    out = np.empty(len(pairs), dtype=np.float32)
    for s in range(0, len(pairs), batch_size):
        a, b = pairs.a[s:s + batch_size], pairs.b[s:s + batch_size]
        scores = np.asarray(scorer(lookup(a), lookup(b)), dtype=np.float32).reshape(-1)
        if scores.shape != (len(a),):
            raise ValueError(f"scorer returned shape {scores.shape} for a batch of {len(a)} pairs")
        if not np.isfinite(scores).all() or (scores < 0).any() or (scores > 1).any():
            raise ValueError("scorer must return finite scores in [0, 1]")
        out[s:s + batch_size] = scores
    return out

