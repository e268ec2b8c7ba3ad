"""Matching over the store: FAISS candidates, the head's score, the pixel check, the threshold, groups."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from embedder.fusion import PixelFusion
from embedder.inference import Embedder
from embedder.pose import Overlap, PoseRule, unpack_pose
from embedder.verify import Alignment, no_alignments, unpack_alignment
from index.candidates import RecordKeys, drop_trivial, score_candidates, self_join, union_pairs
from index.faiss_index import sync_index
from index.groups import connected_components
from index.keypoints import KeypointOptions, keypoint_pairs
from index.memory import release_freed_memory
from index.store import FigureStore
from jobs.clock import StageClock
from jobs.ingest import check_store_model
from jobs.pixel_check import StageProgress, pixel_check, read_greys
from jobs.pose_check import pose_check
from jobs.scoring import model_threshold


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
    # sub-region vectors stored by `scan --crop-vectors` (`embedder.regions`) are extra queries, so a crop
    # of a panel meets it through the sub-region it came from (the pair keeps its best similarity); also
    # turns on the fused score's crop floor (embedder.fusion)
    crop_vectors: bool = False
    # panels sharing ORB keypoints (`index.keypoints`) are candidates too: crops, turned crops and partial
    # overlaps that the vectors' k-NN misses (docs/pixel-check.md#crops-keypoint-candidates)
    keypoints: bool = True
    keypoint_options: KeypointOptions = KeypointOptions()
    # fit the pose of one panel on the other from matched keypoints (`embedder.pose`) for the candidates the
    # fused score leaves under the model's threshold: a crop, a turned crop or a partial copy found there
    # (`PoseRule`) scores the correlation of the region the two share, outlined in the report
    poses: bool = True
    pose_rule: PoseRule = PoseRule()


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
    alignment: list[Alignment | None]
    # per pair with `poses`: the region the two panels share when the pose check accepted them, else None
    overlap: list[Overlap | None] | None = None


def match_store(store_dir: Path, *, query_row_ids: np.ndarray | None, model_path: str | None,
                options: MatchOptions, clock: StageClock, progress: bool = False) -> MatchResult:
    """Update the FAISS index, find k-NN candidates, score them (head, then pixel check), group them.

    `query_row_ids=None` matches the whole store against itself (scan); otherwise
    only those rows are queried against everything (nightly increments).
    `progress`: the pixel check's progress bar on stderr (it logs its progress either way).
    """
    check_store_model(store_dir, model_path)
    store = FigureStore.open(store_dir)
    with clock.timed("index"):
        index = sync_index(store, include_noise=options.include_noise)
    with clock.timed("candidates"):
        keys = RecordKeys.from_table(store.read_keys())
        vectors = store.dense_vectors()  # read once: the queries now, the head's inputs below
        release_freed_memory()  # the reads' freed pages (~45 MB at 5,000 papers), not held under every later stage
        ids = keys.row_id if options.include_noise else keys.row_id[~keys.noise]
        if query_row_ids is not None:
            ids = ids[np.isin(ids, query_row_ids)]
        # cast: index.candidates types its index as a plain class, which VectorIndex does not subclass
        q_ids, q_vecs = ids, vectors[ids]
        if options.crop_vectors:
            q_ids, q_vecs = with_region_queries(store, ids, q_vecs)
        pairs = self_join(cast(Any, index), q_ids, q_vecs, keys, k=options.k, min_sim=options.min_sim,
                          exclude_noise=not options.include_noise)
        del index  # a flat index is a copy of every vector: the keypoint stage, a large scan's peak, need not hold it
    if options.keypoints:
        with clock.timed("keypoint candidates"):
            # each panel twice: its descriptors are found, then searched
            bar = StageProgress(2 * len(ids), show=progress, desc="keypoint candidates", unit="panel")
            try:
                shared = keypoint_pairs(ids, lambda part: read_greys(store, part), vectors, options.keypoint_options,
                                        done=bar)
            finally:
                bar.close()
            pairs = union_pairs(pairs, drop_trivial(shared, keys, exclude_noise=not options.include_noise))
    with clock.timed("score"):
        embedder = Embedder.load(model_path)
        head = score_candidates(pairs, vectors, embedder.score) if len(pairs) else np.zeros(0, np.float32)
    fusion = PixelFusion.from_meta(embedder.meta) if options.pixel_check else None
    if fusion is not None and options.crop_vectors:  # the crops mode: a confident crop placement floors the head
        fusion = replace(fusion, crop_floor=True)
    # a row a candidate pair, not an object: the driver holds every candidate's (embedder.verify.ALIGNMENT_DTYPE)
    alignments, checked = no_alignments(len(pairs)), np.zeros(len(pairs), dtype=bool)
    scores = np.array(head, dtype=np.float32)
    if fusion is not None:
        with clock.timed("pixel check"):
            checked = head >= options.pixel_floor
            alignments[checked] = pixel_check(store, pairs.a[checked], pairs.b[checked], fusion.align,
                                              progress=progress)
            # all candidate pairs go in: each pair's background is its panels' other candidates (embedder.fusion)
            scores = fusion.score(head, alignments, (pairs.a, pairs.b))
    calibrated = model_threshold(embedder, fused=fusion is not None)
    overlaps: dict[int, Overlap] = {}  # candidate -> the region it shares, for the pairs the pose check accepted
    if fusion is not None and options.poses:
        # only where it can matter (as below), and not for a figure whose panels were cut out: they are
        # matched themselves, and a panel found again inside its figure would say the same twice
        split = split_figures(keys)
        todo = np.flatnonzero((scores < calibrated) & ~np.isin(pairs.a, split) & ~np.isin(pairs.b, split))
        with clock.timed("pose check"):
            poses = pose_check(store, pairs.a[todo], pairs.b[todo], options.pose_rule, progress=progress)
            accepted = options.pose_rule.accepts_rows(poses)
            for i, row in zip(todo[accepted].tolist(), poses[accepted]):
                overlaps[i] = unpack_pose(row).as_overlap()
                scores[i] = max(float(scores[i]), float(row["correlation"]))
            del poses
    threshold = calibrated if options.threshold is None else options.threshold
    keep = scores >= threshold
    a, b = pairs.a[keep], pairs.b[keep]
    group = connected_components(a, b).group_of(a)
    kept = np.flatnonzero(keep).tolist()
    return MatchResult(a=a, b=b, sim=pairs.sim[keep], score=scores[keep], group=group, candidates=len(pairs),
                       head=head[keep],
                       alignment=[unpack_alignment(alignments[i]) if checked[i] else None for i in kept],
                       overlap=[overlaps.get(i) for i in kept] if options.poses else None)


def split_figures(keys: RecordKeys) -> np.ndarray:
    """Row ids of the figure records that panels were cut from (some record's parent)."""
    return keys.row_id[np.isin(keys.figure, keys.parent[keys.parent >= 0])]


def with_region_queries(store: FigureStore, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The queries `ids`/`vectors` plus the stored sub-region vectors of those rows (ids repeated)."""
    region_ids, region_vecs = store.read_region_vectors()
    keep = np.isin(region_ids, ids)
    return np.concatenate([ids, region_ids[keep]]), np.concatenate([vectors, region_vecs[keep]])
