"""The pose check over candidate pairs of store rows (`embedder.pose`), as Ray tasks when Ray is up.

The pairs are taken `POSE_READ_PAIRS` at a time: a Ray task reads what the pose check needs of
that chunk's panels into Ray's object store (`jobs.pixel_check.check_pairs`): the grey image
stored with each panel when it was embedded (`index.store.POSE_COLUMN`, ~30 kB). A store with files written
before that column existed is read `POSE_READ_IMAGE_PAIRS` pairs at a time, as the panels'
encoded images (~140-340 kB each), decoded in the tasks. Each task of `POSE_TASK_PAIRS` pairs
finds the keypoints of the panels it needs once (a cache per task), then fits and checks each
pair's pose. The pairs are taken in panel-local order (`jobs.pixel_check.panel_local_order`), so
a task meets most of its panels several times; the poses come back in the pairs' own order.
Nothing a task computes goes back through the driver but the poses (small records), and the
driver reads no chunk of more than one task's pairs.
"""
from __future__ import annotations

import logging

import numpy as np

from embedder.pose import (
    PanelPose,
    Pose,
    PoseOptions,
    PoseRule,
    encoded_panel_pose,
    pack_poses,
    pose_grey_side,
    stored_panel_pose,
    verify_pose,
)
from embedder.verify import single_thread
from index.store import POSE_COLUMN, FigureStore
from jobs.pixel_check import (
    ChunkPixels,
    StageProgress,
    check_pairs,
    panel_local_order,
    read_chunk_column,
    read_chunk_stored,
)

logger = logging.getLogger(__name__)

POSE_READ_PAIRS = 8192       # pairs whose panels' stored grey images (~30 kB each) a task reads at a time
POSE_READ_IMAGE_PAIRS = 2048  # ... in a store without them: their encoded images (~140-340 kB each)
POSE_TASK_PAIRS = 512        # pairs per task: a panel's keypoints are found once per task that needs it


def read_chunk_poses(store: FigureStore, row_ids: list[int], options: PoseOptions) -> ChunkPixels:
    """`ChunkPixels` of `row_ids`: each panel's stored pose grey image at `options.side`, else its encoded image."""
    return read_chunk_stored(store, row_ids, POSE_COLUMN, lambda data: pose_grey_side(data) == options.side)


def _panel_pose(chunk: ChunkPixels, row_id: int, options: PoseOptions) -> PanelPose | None:
    """The `PanelPose` of one panel of the chunk; None for an unreadable image (bad input never stops a scan)."""
    data, is_image = chunk.entry(row_id)
    try:
        return encoded_panel_pose(bytes(data), options) if is_image else stored_panel_pose(data, options)
    except (OSError, ValueError) as exc:
        logger.warning("pose check skipped for an unreadable panel %d: %s", row_id, exc)
        return None


def pose_chunk(chunk: ChunkPixels, a: np.ndarray, b: np.ndarray, setup: tuple[PoseOptions, PoseRule]) -> list[Pose]:
    """`verify_pose` of each pair of row ids (a[i], b[i]) on one thread; a pair with an unreadable panel has no pose."""
    options, rule = setup
    poses: dict[int, PanelPose | None] = {}
    out: list[Pose] = []
    with single_thread():
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            for row_id in (x, y):
                if row_id not in poses:
                    poses[row_id] = _panel_pose(chunk, row_id, options)
            pa, pb = poses[x], poses[y]
            out.append(Pose(0) if pa is None or pb is None else verify_pose(pa, pb, options, rule))
    return out


def pose_chunk_rows(chunk: ChunkPixels, a: np.ndarray, b: np.ndarray, setup: tuple[PoseOptions, PoseRule]) -> np.ndarray:
    """`pose_chunk` as rows of `embedder.pose.POSE_DTYPE`: what a task sends back (no objects a pair)."""
    return pack_poses(pose_chunk(chunk, a, b, setup))


def pose_check(store: FigureStore, a: np.ndarray, b: np.ndarray, rule: PoseRule = PoseRule(),
               options: PoseOptions = PoseOptions(), *, progress: bool = False, local_order: bool = True) -> np.ndarray:
    """The `Pose` of each pair of store rows (a[i], b[i]) as a row of `embedder.pose.POSE_DTYPE`
    (`unpack_poses` makes them objects); correlations only where `rule` could accept it.

    `local_order=False` takes the pairs in the order given rather than panel-local order (the same
    poses, more work: `benchmarks/bench_pose_check.py` compares the two).
    """
    stored = options.side == PoseOptions.side and store.has_column(POSE_COLUMN)  # ingest stores this side

    def read(panels: list[int]) -> ChunkPixels:
        return read_chunk_poses(store, panels, options) if stored else read_chunk_column(store, panels, "image")

    return check_pairs(a, b, panel_local_order(a, b) if local_order else np.arange(len(a)), read=read,
                       task=pose_chunk_rows, setup=(options, rule),
                       read_pairs=POSE_READ_PAIRS if stored else POSE_READ_IMAGE_PAIRS, task_pairs=POSE_TASK_PAIRS,
                       empty=pack_poses([]), bar=StageProgress(len(a), show=progress, desc="pose check"))
