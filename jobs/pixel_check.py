"""The pixel check over pairs of store rows, as Ray tasks (one CPU each) when Ray is up."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import ray

from embedder.verify import AlignConfig, Alignment, align_many
from index.store import FigureStore

logger = logging.getLogger(__name__)

# Pairs read from the store at a time, and per Ray task, for the pixel check.
PIXEL_CHECK_READ_PAIRS = 8192
PIXEL_CHECK_TASK_PAIRS = 96

C = TypeVar("C")
R = TypeVar("R")


def pixel_check(store: FigureStore, a: np.ndarray, b: np.ndarray, config: AlignConfig) -> list[Alignment]:
    """`embedder.verify.Alignment` for each pair of store rows (a[i], b[i]).

    Runs as Ray tasks (one CPU each) when Ray is up, else in this process; the
    stored panel images are read a bounded number of pairs at a time.
    """
    out: list[Alignment] = []
    for start in range(0, len(a), PIXEL_CHECK_READ_PAIRS):
        ca, cb = a[start:start + PIXEL_CHECK_READ_PAIRS], b[start:start + PIXEL_CHECK_READ_PAIRS]
        table = store.read_table(["row_id", "image"], row_ids=np.union1d(ca, cb).tolist())
        images = dict(zip(table.column("row_id").to_pylist(), table.column("image").to_pylist()))
        xs, ys = [images[i] for i in ca.tolist()], [images[i] for i in cb.tolist()]
        out += _align_in_tasks(align_many, xs, ys, config)
    return out


def _align_in_tasks(fn: Callable[[list[bytes], list[bytes], C], list[R]], xs: list[bytes], ys: list[bytes],
                    config: C) -> list[R]:
    """fn over chunks of the pairs in Ray tasks; a chunk whose task fails (a worker killed, out of
    memory) is redone here, so one lost worker costs time, not the scan."""
    step = PIXEL_CHECK_TASK_PAIRS
    if not ray.is_initialized() or len(xs) <= step:
        return fn(xs, ys, config)
    remote = ray.remote(num_cpus=1)(fn)
    starts = range(0, len(xs), step)
    refs = [remote.remote(xs[i:i + step], ys[i:i + step], config) for i in starts]
    out: list[R] = []
    for start, ref in zip(starts, refs):
        try:
            done: list[R] = ray.get(ref)
            out += done
        except ray.exceptions.RayError as exc:
            logger.warning("pixel check task failed (%s); redoing its %d pairs in this process",
                           type(exc).__name__, len(xs[start:start + step]))
            out += fn(xs[start:start + step], ys[start:start + step], config)
    return out
