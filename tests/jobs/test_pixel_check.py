"""The pixel check's Ray tasks: a failed task is redone in the driver; the chunk of pixels tasks share,
read by a worker."""
from __future__ import annotations

import functools
import io
import logging
import os
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
from PIL import Image

from embedder.verify import AlignConfig, align_encoded, pixel_features, unpack_alignments
from index.store import PIXELS_COLUMN, FigureStore, StoreError
from jobs.pixel_check import (
    PIXEL_CHECK_TASK_PAIRS,
    ChunkPixels,
    StageProgress,
    check_pairs,
    in_original_order,
    panel_local_order,
    pixel_check,
    read_chunk_column,
    read_chunk_pixels,
    run_in_tasks,
)
from tests.index.helpers import figures_table, forget_file_sizes
from tests.jobs.raycluster import ray_up
from training.synth import KINDS, generate_specimen_field


def _fails_in_workers(data: int, xs: np.ndarray, ys: np.ndarray, driver_pid: int) -> np.ndarray:
    """Stands in for `align_chunk_rows`: dies in any Ray worker, works in the driver."""
    if os.getpid() != driver_pid:
        raise RuntimeError("worker lost")
    return xs + ys + data


def test_without_ray_the_pairs_are_checked_in_this_process() -> None:
    if ray.is_initialized():
        pytest.skip("Ray is up in this process")
    n = PIXEL_CHECK_TASK_PAIRS * 2 + 5
    ticks: list[int] = []
    out = run_in_tasks(_fails_in_workers, 1000, np.arange(n), np.ones(n, np.int64), os.getpid(), ticks.append)
    assert out.tolist() == [i + 1001 for i in range(n)]
    assert sum(ticks) == n and len(ticks) == 3  # progress moves task by task


def test_pairs_sharing_a_panel_are_taken_together_and_results_come_back_in_order() -> None:
    # two stars, 0 with 10..19 and 1 with 20..29, interleaved as candidates come (grouped by first panel only)
    a = np.array([0, 1] * 10)
    b = np.array([10 + i // 2 if i % 2 == 0 else 20 + i // 2 for i in range(20)])
    order = panel_local_order(a, b)
    assert sorted(order.tolist()) == list(range(20))
    first_half = set(a[order[:10]].tolist()) | set(b[order[:10]].tolist())
    assert first_half in ({0, *range(10, 20)}, {1, *range(20, 30)})  # one star, then the other
    taken = a[order] * 100 + b[order]
    assert in_original_order(taken, order).tolist() == [int(x) * 100 + int(y) for x, y in zip(a, b)]
    assert panel_local_order(np.array([3]), np.array([4])).tolist() == [0]
    assert panel_local_order(np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == []


@pytest.mark.slow
@pytest.mark.ray
def test_a_failed_pixel_check_task_is_redone_in_the_driver(caplog: pytest.LogCaptureFixture) -> None:
    n = PIXEL_CHECK_TASK_PAIRS * 2 + 5  # three tasks
    ticks: list[int] = []
    with ray_up(), caplog.at_level(logging.WARNING, logger="jobs.pixel_check"):
        out = run_in_tasks(_fails_in_workers, 1000, np.arange(n), np.ones(n, np.int64), os.getpid(), ticks.append)
    assert out.tolist() == [i + 1001 for i in range(n)]  # every pair, in order
    assert caplog.text.count("pixel check task failed") == 3
    assert sum(ticks) == n


def _read_by(panels: list[int]) -> ChunkPixels:
    """Stands in for a chunk read: the chunk holds the pid of the process that read it."""
    pid = np.array([os.getpid()], dtype=np.int64).view(np.uint8)
    return ChunkPixels(np.asarray(panels, np.int64), np.zeros(len(panels) + 1, np.int64), pid, np.zeros(len(panels), bool))


def _read_as_images(panels: list[int]) -> ChunkPixels:
    """Stands in for a chunk of a store without the features: every panel's entry is its encoded image."""
    read = _read_by(panels)
    return ChunkPixels(read.row_ids, read.offsets, read.blob, np.ones(len(panels), bool))


def _reader_pid(chunk: ChunkPixels, xs: np.ndarray, ys: np.ndarray, setup: None) -> np.ndarray:
    return np.full(len(xs), chunk.blob.view(np.int64)[0])


def _damaged_store(panels: list[int]) -> ChunkPixels:
    raise StoreError("store file part-000001.parquet is shorter than the manifest says")


def _dies_in_workers(driver_pid: int, panels: list[int]) -> ChunkPixels:
    """Stands in for a chunk read whose worker is lost (killed, out of memory) every time; works in the driver."""
    if os.getpid() != driver_pid:
        os._exit(1)
    return _read_by(panels)


def _check(n: int, read: Callable[[list[int]], ChunkPixels]) -> np.ndarray:
    return check_pairs(np.arange(n), np.arange(n) + n, np.arange(n), read=read, task=_reader_pid, setup=None,
                       read_pairs=4 * PIXEL_CHECK_TASK_PAIRS, task_pairs=PIXEL_CHECK_TASK_PAIRS,
                       empty=np.zeros(0, np.int64), bar=StageProgress(n, show=False))


@pytest.mark.slow
@pytest.mark.ray
def test_a_chunk_is_read_by_a_worker_not_the_driver(caplog: pytest.LogCaptureFixture) -> None:
    with ray_up():
        many = _check(8 * PIXEL_CHECK_TASK_PAIRS, _read_by)  # two chunks of four tasks each
        few = _check(PIXEL_CHECK_TASK_PAIRS, _read_by)  # one task: checked, so read, in the driver
        with pytest.raises(StoreError, match="shorter than the manifest"):  # a read's error reaches the caller
            _check(2 * PIXEL_CHECK_TASK_PAIRS, _damaged_store)
        with caplog.at_level(logging.WARNING, logger="jobs.pixel_check"):  # a lost reader costs time, not the check
            lost = _check(2 * PIXEL_CHECK_TASK_PAIRS, functools.partial(_dies_in_workers, os.getpid()))
    assert len(many) == 8 * PIXEL_CHECK_TASK_PAIRS and os.getpid() not in set(many.tolist())
    assert set(few.tolist()) == {os.getpid()}
    assert lost.tolist() == [os.getpid()] * (2 * PIXEL_CHECK_TASK_PAIRS)
    assert "the task reading a chunk was lost" in caplog.text
    assert caplog.text.count("pixel check task failed") == 2


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _with_images(pngs: list[bytes]) -> pa.Table:
    table = figures_table([{"doc": f"d{i}.pdf"} for i in range(len(pngs))])
    return table.set_column(table.schema.get_field_index("image"), "image", pa.array(pngs, pa.binary()))


def _store(tmp_path, config: AlignConfig, with_pixels: bool) -> tuple[FigureStore, list[bytes]]:
    base = [generate_specimen_field(k, 5, 0, size) for k, size in zip(KINDS[:3], [(140, 100), (80, 160), (120, 120)])]
    images = base + [base[0].crop((10, 8, 120, 90)).transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                     base[1].rotate(90, expand=True)]
    pngs = [_png(im) for im in images]
    store = FigureStore.create(tmp_path / "s", model_id="m", dim=4)
    pixels = [pixel_features(Image.open(io.BytesIO(p)).convert("RGB"), config) for p in pngs] if with_pixels else None
    store.append(_with_images(pngs), np.random.default_rng(0).normal(size=(len(pngs), 4)), model_id="m",
                 run_id="r", pixels=pixels)
    store.append(_with_images([b"not a png"]), np.ones((1, 4)), model_id="m", run_id="r2")  # row 5: undecodable
    return store, pngs


@pytest.mark.parametrize("with_pixels", [True, False])
def test_pixel_check_on_stored_features_equals_the_check_on_images(tmp_path, with_pixels: bool) -> None:
    config = AlignConfig()
    store, pngs = _store(tmp_path, config, with_pixels)
    a = np.array([0, 0, 1, 3, 2, 4, 5, 0])
    b = np.array([3, 1, 4, 1, 3, 2, 0, 5])
    got = unpack_alignments(pixel_check(store, a, b, config))
    stored = store.read_table(["row_id", "image"]).column("image").to_pylist()
    assert got[:6] == [align_encoded(stored[x], stored[y], config) for x, y in zip(a[:6], b[:6])]
    assert got[6].correlation == got[7].correlation == 0.0  # the undecodable panel
    chunk = read_chunk_pixels(store, [0, 3, 5], config)
    assert chunk.is_image.tolist() == [not with_pixels, not with_pixels, True]


def test_features_of_another_search_fall_back_to_the_image(tmp_path) -> None:
    stored_config, model_config = AlignConfig(), AlignConfig(detail_side=96)
    store, _ = _store(tmp_path, stored_config, with_pixels=True)
    chunk = read_chunk_pixels(store, [0, 1], model_config)
    assert chunk.is_image.tolist() == [True, True]
    stored = store.read_table(["row_id", "image"]).column("image").to_pylist()
    assert unpack_alignments(pixel_check(store, np.array([0]), np.array([3]), model_config)) == [
        align_encoded(stored[0], stored[3], model_config)]


def test_a_store_file_without_the_pixels_column_still_checks(tmp_path) -> None:
    config = AlignConfig()
    store, _ = _store(tmp_path, config, with_pixels=True)
    path = tmp_path / "s" / store.files[0]
    pq.write_table(pq.read_table(path).drop_columns([PIXELS_COLUMN]), path)
    forget_file_sizes(tmp_path / "s")  # as a store written before the column (and before file sizes)
    store = FigureStore.open(tmp_path / "s")
    stored = store.read_table(["row_id", "image"]).column("image").to_pylist()
    assert unpack_alignments(pixel_check(store, np.array([0, 1]), np.array([3, 4]), config)) == [
        align_encoded(stored[0], stored[3], config), align_encoded(stored[1], stored[4], config)]


def test_a_chunks_images_are_the_stored_bytes_across_files(tmp_path) -> None:
    """The pose check's chunk: each row's encoded image as stored, an unknown or imageless row empty."""
    store, pngs = _store(tmp_path, AlignConfig(), with_pixels=False)  # rows 0-4, then row 5 in a second file
    store.append(figures_table([{"doc": "x.pdf"}], images=False), np.ones((1, 4)), model_id="m", run_id="r3")
    chunk = read_chunk_column(store, [5, 4, 0, 6, 99, 2, 4], "image")
    assert chunk.row_ids.tolist() == [0, 2, 4, 5, 6, 99]
    assert [bytes(chunk.entry(i)[0]) for i in (0, 2, 4, 5)] == [pngs[0], pngs[2], pngs[4], b"not a png"]
    assert bytes(chunk.entry(6)[0]) == bytes(chunk.entry(99)[0]) == b""  # no image; not in the store


@pytest.mark.slow
@pytest.mark.ray
def test_the_driver_says_how_many_panels_a_worker_decoded(caplog: pytest.LogCaptureFixture) -> None:
    with ray_up(), caplog.at_level(logging.INFO, logger="jobs.pixel_check"):
        _check(2 * PIXEL_CHECK_TASK_PAIRS, _read_as_images)  # one chunk, read in a worker
    panels = 4 * PIXEL_CHECK_TASK_PAIRS
    assert f"pixel check: {panels} of {panels} panels have nothing stored it can use" in caplog.text
