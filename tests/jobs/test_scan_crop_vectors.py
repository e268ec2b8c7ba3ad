"""End to end through real Ray: `scan --crop-vectors` (sub-region vectors) and `scan --keypoints` find a 30% crop."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from index.store import REGIONS_DIR, FigureStore
from jobs.cli import main
from training.data import all_kinds, specimen_image

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_crop_vectors_and_keypoints_find_a_crop_the_whole_vectors_miss(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    panels = [specimen_image(all_kinds(), 5000 + s, 0, 200, 260)[1] for s in range(40)]
    for i, panel in enumerate(panels):
        panel.save(folder / f"p{i:02d}.png")
    w, h = panels[0].size
    panels[0].crop((0, 0, round(w * 0.55), round(h * 0.55))).save(folder / "zz_crop.png")  # 30% of the area
    found = {}
    runs = {"with": ["--crop-vectors", "--no-keypoints"], "without": ["--no-crop-vectors", "--no-keypoints"],
            "keypoints": ["--no-crop-vectors", "--keypoints"]}
    for name, flags in runs.items():
        result = CliRunner().invoke(main, ["scan", str(folder), "--out", str(tmp_path / name), "--threshold", "0",
                                           "--k", "3", "--no-pixel-check", "--no-progress", *flags],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        report = pd.read_csv(tmp_path / name / "report.csv")
        assert (report.doc_a != report.doc_b).all()  # a panel's own sub-regions never pair it with itself
        found[name] = {frozenset((a, b)) for a, b in zip(report.doc_a, report.doc_b)}
    assert frozenset(("p00.png", "zz_crop.png")) in found["with"]
    assert frozenset(("p00.png", "zz_crop.png")) not in found["without"]
    assert frozenset(("p00.png", "zz_crop.png")) in found["keypoints"]
    assert found["without"] < found["keypoints"]  # keypoint pairs are added to the k-NN's, none taken away
    store = FigureStore.open(tmp_path / "with" / "store")
    ids, vecs = store.read_region_vectors()
    assert len(ids) == 5 * store.num_rows and vecs.shape[1] == store.dim  # every panel is >= 96 px here
    assert not (tmp_path / "without" / "store" / REGIONS_DIR).exists()
