"""The pose check over candidate pairs of store rows (`embedder.pose`), as Ray tasks when Ray is up.

Two passes per chunk of `POSE_READ_PAIRS` pairs, so that each panel is decoded and its
keypoints found once, not once per pair it is in: the driver reads the encoded images of
the chunk's panels, tasks turn slices of them into `PanelPose`s (a grey image at
`PoseOptions.side` and ORB keypoints of it and of its mirror image, ~100 kB a panel), and
tasks then fit and check each pair's pose from those. Both passes share one copy of their
input through Ray's object store (`jobs.pixel_check.run_in_tasks`).
"""
from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image

from embedder.pose import PanelPose, Pose, PoseOptions, PoseRule, panel_pose, verify_pose
from embedder.verify import grey_image, single_thread
from index.store import FigureStore
from jobs.pixel_check import ChunkPixels, PairProgress, read_chunk_images, run_in_tasks

logger = logging.getLogger(__name__)

# pairs whose panels' encoded images (~140 kB each) and then poses (~130 kB) the driver holds at a time:
# at most 4,096 panels, ~0.6 GB; k-NN pairs come grouped by panel, so usually a few hundred
POSE_READ_PAIRS = 2048


def panel_poses(chunk: ChunkPixels, ids: np.ndarray, _same_ids: np.ndarray, options: PoseOptions) -> list[PanelPose | None]:
    """`PanelPose` of each row id in `ids` (its encoded image in `chunk`); None for an unreadable image.

    (`run_in_tasks` hands a task two aligned slices of row ids, made for pairs; here both are `ids`.)
    """
    out: list[PanelPose | None] = []
    with single_thread():
        for row_id in ids.tolist():
            try:
                with Image.open(io.BytesIO(bytes(chunk.entry(row_id)[0]))) as image:
                    out.append(panel_pose(grey_image(image, options.side), options))
            except (OSError, ValueError) as exc:  # bad input never takes the scan down
                logger.warning("pose check skipped for an unreadable panel %d: %s", row_id, exc)
                out.append(None)
    return out


def pair_poses(poses: dict[int, PanelPose | None], a: np.ndarray, b: np.ndarray,
               setup: tuple[PoseOptions, PoseRule]) -> list[Pose]:
    """`verify_pose` of each pair of row ids (a[i], b[i]); a pair with an unreadable panel has no pose."""
    options, rule = setup
    out: list[Pose] = []
    with single_thread():
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            pa, pb = poses.get(x), poses.get(y)
            out.append(Pose(0) if pa is None or pb is None else verify_pose(pa, pb, options, rule))
    return out


def pose_check(store: FigureStore, a: np.ndarray, b: np.ndarray, rule: PoseRule = PoseRule(),
               options: PoseOptions = PoseOptions(), *, progress: bool = False) -> list[Pose]:
    """The `Pose` of each pair of store rows (a[i], b[i]); correlations only where `rule` could accept it."""
    out: list[Pose] = []
    bar = PairProgress(len(a), show=progress, desc="pose check")
    try:
        for start in range(0, len(a), POSE_READ_PAIRS):
            ca, cb = np.asarray(a[start:start + POSE_READ_PAIRS]), np.asarray(b[start:start + POSE_READ_PAIRS])
            ids = np.union1d(ca, cb)
            images = read_chunk_images(store, ids.tolist())
            poses = dict(zip(ids.tolist(), run_in_tasks(panel_poses, images, ids, ids, options)))
            del images
            out += run_in_tasks(pair_poses, poses, ca, cb, (options, rule), bar)
            del poses
    finally:
        bar.close()
    return out
