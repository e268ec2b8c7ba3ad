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
stored per panel in the store's `pixels` column), so nothing is decoded again. Matching is an
exact Hamming search (`faiss.IndexBinaryFlat`); `benchmarks/bench_keypoints.py` measures the
candidates' recall by alteration and their number.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedder.pose import DESCRIPTOR_BYTES, orb_keypoints
from index.candidates import Pairs

logger = logging.getLogger(__name__)

QUERY_BATCH = 65_536  # descriptors searched at a time

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
    neighbours: int = 8        # descriptors searched per query (the best one of another panel counts)
    max_ratio: float = 0.8     # ... when nearer than this times the best one of a third panel
    exact_up_to: int = 50_000  # descriptors searched exactly; more are searched in inverted lists ...
    nprobe: int = 16           # ... this many of them per query


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


def descriptor_index(descriptors: np.ndarray, options: KeypointOptions = KeypointOptions()) -> Any:
    """A FAISS binary index holding `descriptors`: exact up to `options.exact_up_to` of them, else inverted lists.

    An exact search costs (descriptors)² — a minute of CPU at 700 panels — so a larger
    set is clustered (2·√n lists, k-means on a sample) and each query searches the
    `options.nprobe` nearest lists.
    """
    import faiss

    bits = 8 * DESCRIPTOR_BYTES
    if len(descriptors) <= options.exact_up_to:
        exact = faiss.IndexBinaryFlat(bits)
        exact.add(descriptors)
        return exact
    lists = int(2 * np.sqrt(len(descriptors)))
    sample = np.random.default_rng(0).permutation(len(descriptors))[:40 * lists]  # k-means needs no more
    clustered = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, lists)
    clustered.train(descriptors[np.sort(sample)])
    clustered.nprobe = options.nprobe
    clustered.add(descriptors)
    return clustered


def keypoint_votes(ids: np.ndarray, own: Sequence[np.ndarray], mirror: Sequence[np.ndarray],
                   options: KeypointOptions = KeypointOptions()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, votes) with a < b: how many descriptors of one panel (or of its mirror) matched the other.

    Each query descriptor votes once, for the panel of its nearest descriptor in another panel,
    when that one is within `options.max_distance` and clearly nearer (`options.max_ratio`)
    than the nearest of any third panel; votes of both directions and of the mirror images add up.
    """
    ids = np.asarray(ids, dtype=np.int64)
    counts = np.array([len(d) for d in own])
    if counts.sum() == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    index = descriptor_index(np.concatenate([d for d in own if len(d)]), options)
    owner = np.repeat(ids, counts)
    queries = [np.concatenate([o, m]) for o, m in zip(own, mirror)]
    q_owner = np.repeat(ids, [len(q) for q in queries])
    found = np.concatenate([q for q in queries if len(q)])
    a_parts, b_parts = [], []
    for start in range(0, len(found), QUERY_BATCH):  # bounded memory: the search's arrays are 8 per query
        owner_of_query = q_owner[start:start + QUERY_BATCH]
        dist, nb = index.search(found[start:start + QUERY_BATCH], options.neighbours)
        panel_of = np.where(nb >= 0, owner[np.maximum(nb, 0)], -1)
        other = (nb >= 0) & (panel_of != owner_of_query[:, None])
        has = other.any(axis=1)
        first = other.argmax(axis=1)  # the nearest descriptor of another panel
        rows = np.arange(len(nb))
        nearest_panel, nearest = panel_of[rows, first], dist[rows, first]
        # the nearest descriptor of yet another panel: a descriptor as close in many panels (flat or
        # noisy texture) tells nothing about this pair (Lowe's ratio test, across panels)
        runner_up = other & (panel_of != nearest_panel[:, None])
        second = np.where(runner_up.any(axis=1), dist[rows, runner_up.argmax(axis=1)], np.iinfo(np.int32).max)
        has &= (nearest <= options.max_distance) & (nearest < options.max_ratio * second)
        a_parts.append(owner_of_query[has])
        b_parts.append(nearest_panel[has])
    a, b = np.concatenate(a_parts), np.concatenate(b_parts)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pairs, votes = np.unique(np.stack([lo, hi], axis=1), axis=0, return_counts=True)
    if not len(pairs):
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    return pairs[:, 0], pairs[:, 1], votes.astype(np.int64)


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


def keypoint_pairs(ids: np.ndarray, greys: Sequence[np.ndarray], vectors: np.ndarray,
                   options: KeypointOptions = KeypointOptions()) -> Pairs:
    """Candidate pairs of panels `ids` (greys aligned) sharing keypoints; `sim` is their vectors' cosine.

    `vectors` is indexed by row id (`FigureStore.dense_vectors()`), as in `index.candidates`.
    """
    own, mirror = panel_descriptors(greys, options)
    a, b, votes = keypoint_votes(ids, own, mirror, options)
    enough = votes >= options.min_votes
    a, b, votes = a[enough], b[enough], votes[enough]
    keep = strongest_per_panel(a, b, votes, options.per_panel)
    a, b = a[keep], b[keep]
    sim = np.einsum("ij,ij->i", vectors[a], vectors[b]) if len(a) else np.zeros(0, np.float32)
    logger.info("keypoint candidates: %d panels, %d descriptors, %d pairs", len(ids), sum(len(d) for d in own), len(a))
    return Pairs.from_arrays(a, b, sim.astype(np.float32))
