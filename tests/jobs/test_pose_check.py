"""The pose check's reads: the grey images stored with the panels, or for an older store their images."""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from embedder.pose import PoseOptions, PoseRule, encoded_panel_pose, pose_grey_bytes, unpack_poses, verify_pose
from index.store import POSE_COLUMN, FigureStore
from jobs.pose_check import pose_check, read_chunk_poses
from tests.index.helpers import figures_table, forget_file_sizes

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "real-sample" / "images"
NUCLEI = SAMPLE / "cellprofiler/ExampleHuman/images/AS_09125_050116030001_D03f00d0.png"
HISTO = SAMPLE / "stardist/histo.png"


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _store(root: Path, with_greys: bool) -> tuple[FigureStore, list[bytes]]:
    """Rows 0-4: a field, a turned quarter crop of it, two overlapping halves of another field, an
    unrelated one; row 5 (a file of its own): an undecodable image."""
    nuclei = Image.open(NUCLEI).convert("RGB")
    histo = Image.open(HISTO).convert("RGB")
    w, h = histo.size
    images = [nuclei, nuclei.crop((100, 150, 356, 406)).rotate(90, expand=True),
              histo.crop((0, 0, int(0.65 * w), h)), histo.crop((int(0.35 * w), 0, w, h)),
              Image.open(SAMPLE / "stardist/img2d.png").convert("RGB")]
    pngs = [_png(im) for im in images]
    table = figures_table([{"doc": f"d{i}.pdf"} for i in range(len(pngs))])
    table = table.set_column(table.schema.get_field_index("image"), "image", pa.array(pngs, pa.binary()))
    store = FigureStore.create(root, model_id="m", dim=4)
    greys = [pose_grey_bytes(Image.open(io.BytesIO(p)).convert("RGB")) for p in pngs] if with_greys else None
    store.append(table, np.random.default_rng(0).normal(size=(len(pngs), 4)), model_id="m", run_id="r",
                 pose_greys=greys)
    bad = figures_table([{"doc": "bad.pdf"}])
    bad = bad.set_column(bad.schema.get_field_index("image"), "image", pa.array([b"not a png"], pa.binary()))
    store.append(bad, np.ones((1, 4)), model_id="m", run_id="r2",
                 pose_greys=[b"RSG1\x00\x01 damaged" if with_greys else None])
    return store, pngs


PAIRS_A, PAIRS_B = np.array([0, 2, 0, 4, 1, 5]), np.array([1, 3, 4, 2, 3, 0])


@pytest.mark.parametrize("with_greys", [True, False])
def test_poses_from_stored_greys_equal_poses_from_the_images(tmp_path: Path, with_greys: bool) -> None:
    store, pngs = _store(tmp_path / "s", with_greys)
    rule = PoseRule()
    got = unpack_poses(pose_check(store, PAIRS_A, PAIRS_B, rule))
    expected = [verify_pose(encoded_panel_pose(pngs[x]), encoded_panel_pose(pngs[y]), PoseOptions(), rule)
                for x, y in zip(PAIRS_A[:5], PAIRS_B[:5])]
    assert got[:5] == expected
    assert rule.accepts(got[0]) and rule.accepts(got[1])  # the turned crop, the two halves
    assert not any(rule.accepts(p) for p in got[2:5])
    assert got[5].inliers == 0  # the unreadable panel has no pose, and the check went on
    assert store.has_column(POSE_COLUMN)
    # without a stored grey image a panel's image is read; row 5's damaged grey (its header says side 256)
    # is read as it is, and fails in the task like an undecodable image
    chunk = read_chunk_poses(store, [0, 4, 5], PoseOptions())
    assert chunk.is_image.tolist() == [not with_greys] * 3


def test_another_side_or_an_older_store_reads_the_images(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, pngs = _store(tmp_path / "s", with_greys=True)
    other = PoseOptions(side=192)
    assert read_chunk_poses(store, [0, 1], other).is_image.tolist() == [True, True]
    with caplog.at_level(logging.INFO, logger="jobs.pixel_check"):
        found = unpack_poses(pose_check(store, np.array([0]), np.array([1]), options=other))
    assert "pose check: 2 of 2 panels have nothing stored it can use" in caplog.text
    assert found == [
        verify_pose(encoded_panel_pose(pngs[0], other), encoded_panel_pose(pngs[1], other), other, PoseRule())]

    path = tmp_path / "s" / store.files[0]  # as a file written before the column existed
    pq.write_table(pq.read_table(path).drop_columns([POSE_COLUMN]), path)
    forget_file_sizes(tmp_path / "s")
    store = FigureStore.open(tmp_path / "s")
    assert not store.has_column(POSE_COLUMN)
    got = unpack_poses(pose_check(store, PAIRS_A[:2], PAIRS_B[:2]))
    assert got == [verify_pose(encoded_panel_pose(pngs[x]), encoded_panel_pose(pngs[y]), PoseOptions(), PoseRule())
                   for x, y in zip(PAIRS_A[:2], PAIRS_B[:2])]
