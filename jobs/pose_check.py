"""The pose check over candidate pairs of store rows (`embedder.pose`), as Ray tasks when Ray is up.

The pairs are taken `POSE_READ_PAIRS` at a time: the driver reads the encoded images of that
chunk's panels and puts them into Ray's object store once; each task of `POSE_TASK_PAIRS`
pairs decodes the panels it needs and finds their keypoints once (a cache per task), then fits
and checks each pair's pose. The candidate pairs come grouped by their first panel, so a task
meets most of its panels several times. Nothing a task computes goes back through the driver
but the poses (small records): its memory stays that of one chunk of encoded images.
"""
from __future__ import annotations

import logging

import numpy as np

from embedder.pose import PanelPose, Pose, PoseOptions, PoseRule, encoded_panel_pose, verify_pose
from embedder.verify import single_thread
from index.store import FigureStore
from jobs.pixel_check import ChunkPixels, StageProgress, read_chunk_images, run_in_tasks

logger = logging.getLogger(__name__)

POSE_READ_PAIRS = 2048  # pairs whose panels' encoded images (~140 kB each) the driver reads at a time
POSE_TASK_PAIRS = 512   # pairs per task: a panel's keypoints are found once per task that needs it


def _panel_pose(chunk: ChunkPixels, row_id: int, options: PoseOptions) -> PanelPose | None:
    """The `PanelPose` of one panel of the chunk; None for an unreadable image (bad input never stops a scan)."""
    try:
        return encoded_panel_pose(bytes(chunk.entry(row_id)[0]), options)
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


def pose_check(store: FigureStore, a: np.ndarray, b: np.ndarray, rule: PoseRule = PoseRule(),
               options: PoseOptions = PoseOptions(), *, progress: bool = False) -> list[Pose]:
    """The `Pose` of each pair of store rows (a[i], b[i]); correlations only where `rule` could accept it."""
    out: list[Pose] = []
    bar = StageProgress(len(a), show=progress, desc="pose check")
    try:
        for start in range(0, len(a), POSE_READ_PAIRS):
            ca, cb = np.asarray(a[start:start + POSE_READ_PAIRS]), np.asarray(b[start:start + POSE_READ_PAIRS])
            chunk = read_chunk_images(store, np.union1d(ca, cb).tolist())
            out += run_in_tasks(pose_chunk, chunk, ca, cb, (options, rule), bar, step=POSE_TASK_PAIRS)
            del chunk
    finally:
        bar.close()
    return out
