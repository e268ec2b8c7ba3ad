"""End to end through real Ray, on real images: a scan finds a turned quarter crop and a partial copy
(two crops of one field sharing a third of their width) by the pose check, with the region outlined."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from embedder.pose import PoseOptions, stored_panel_pose
from embedder.verify import grey_image
from index.store import POSE_COLUMN, FigureStore
from jobs.cli import main
from scanner.records import parse_bbox

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "real-sample" / "images"
OTHERS = ["cellprofiler/ExampleIlluminationCorrection/images/AS_09047_050428030001_O01f00d2.png",
          "neubias/xy_8bit__glialcell.png", "stardist/img2d.png", "neubias/xyc_8bit__membranes_nuclei.png",
          "neubias/mitocheck-movie/EMBO_2012_Group3--empty--empty--W0002--P001--T00010--Z000--C.png",
          "neubias/mitocheck-movie/EMBO_2012_Group3--empty--empty--W0002--P001--T00012--Z000--C.png"]


def _scan(folder: Path, out: Path, *flags: str) -> pd.DataFrame:
    result = CliRunner().invoke(main, ["scan", str(folder), "--out", str(out), "--no-progress", *flags],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return pd.read_csv(out / "report.csv", keep_default_na=False)


def _row(rows: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    return rows[[{x, y} == {a, b} for x, y in zip(rows.doc_a, rows.doc_b)]]


def test_a_turned_crop_and_a_partial_copy_are_found_with_their_regions(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    nuclei = Image.open(SAMPLE / "cellprofiler/ExampleHuman/images/AS_09125_050116030001_D03f00d0.png").convert("RGB")
    nuclei.save(folder / "field.png")  # 512 x 512
    nuclei.crop((100, 150, 356, 406)).rotate(90, expand=True).save(folder / "crop.png")  # a quarter, turned
    histo = Image.open(SAMPLE / "stardist/histo.png").convert("RGB")
    w, h = histo.size
    left, right = histo.crop((0, 0, int(0.65 * w), h)), histo.crop((int(0.35 * w), 0, w, h))
    left.save(folder / "left.png")
    right.save(folder / "right.png")  # they share x 35-65 % of the field: 46 % of each
    for i, name in enumerate(OTHERS):
        Image.open(SAMPLE / name).convert("RGB").save(folder / f"other{i}.png")

    without = _scan(folder, tmp_path / "without", "--no-poses", "--no-keypoints")
    rows = _scan(folder, tmp_path / "with")
    assert _row(without, "field.png", "crop.png").empty and _row(without, "left.png", "right.png").empty

    crop = _row(rows, "field.png", "crop.png")
    assert len(crop) == 1 and float(crop.overlap_score.iloc[0]) >= 0.95
    region = {crop.doc_a.iloc[0]: parse_bbox(crop.overlap_a.iloc[0]), crop.doc_b.iloc[0]: parse_bbox(crop.overlap_b.iloc[0])}
    assert region["field.png"] == pytest.approx((100, 150, 356, 406), abs=10)  # image files: bbox in pixels
    assert region["crop.png"] == pytest.approx((0, 0, 256, 256), abs=10)

    overlap = _row(rows, "left.png", "right.png")
    assert len(overlap) == 1 and float(overlap.overlap_score.iloc[0]) >= 0.95
    region = {overlap.doc_a.iloc[0]: parse_bbox(overlap.overlap_a.iloc[0]),
              overlap.doc_b.iloc[0]: parse_bbox(overlap.overlap_b.iloc[0])}
    assert region["left.png"] == pytest.approx((int(0.35 * w), 0, left.width, h), abs=8)
    assert region["right.png"] == pytest.approx((0, 0, int(0.65 * w) - int(0.35 * w), h), abs=8)

    # nothing else is a crop or a copy: the two movie frames and the other fields are not reported
    assert set(map(frozenset, zip(rows.doc_a, rows.doc_b))) == {frozenset({"field.png", "crop.png"}),
                                                                frozenset({"left.png", "right.png"})}
    assert "shared region" in (tmp_path / "with" / "report.html").read_text()
    # the store holds every panel's grey image for the pose check: the one its PNG gives
    store = FigureStore.open(tmp_path / "with" / "store")
    stored = store.read_table(["image", POSE_COLUMN]).to_pydict()
    assert store.has_column(POSE_COLUMN) and len(stored["image"]) >= len(OTHERS) + 4  # every input is a record
    for image, grey in zip(stored["image"], stored[POSE_COLUMN]):
        expected = grey_image(Image.open(io.BytesIO(image)), PoseOptions.side)
        assert np.array_equal(stored_panel_pose(grey).grey, expected)
