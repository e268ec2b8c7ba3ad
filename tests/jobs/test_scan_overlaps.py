"""End to end through real Ray: `scan --overlaps` reports two crops of one field sharing 40% of their area."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from jobs.cli import main
from scanner.records import parse_bbox
from training.data import all_kinds, specimen_image

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_scan_with_overlaps_reports_a_partial_overlap_with_its_region_in_both_panels(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    field = specimen_image(all_kinds(), 7001, 0, 240, 240)[1].resize((240, 240))
    field.crop((0, 0, 150, 240)).save(folder / "left.png")      # x 0-150
    field.crop((90, 0, 240, 240)).save(folder / "right.png")    # x 90-240: they share x 90-150, 40 % of each
    for s in range(4):
        specimen_image(all_kinds(), 7100 + s, 0, 240, 240)[1].resize((240, 240)).crop((0, 0, 150, 240)).save(folder / f"other{s}.png")
    reports = {}
    for flag in ("--overlaps", "--no-overlaps"):
        result = CliRunner().invoke(main, ["scan", str(folder), "--out", str(tmp_path / flag), "--min-sim", "-1",
                                           "--no-progress", flag], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        reports[flag] = pd.read_csv(tmp_path / flag / "report.csv", keep_default_na=False)
    pair = {"left.png", "right.png"}
    assert not any({a, b} == pair for a, b in zip(reports["--no-overlaps"].doc_a, reports["--no-overlaps"].doc_b))
    rows = reports["--overlaps"]
    hit = rows[[{a, b} == pair for a, b in zip(rows.doc_a, rows.doc_b)]]
    assert len(hit) == 1 and float(hit.overlap_score.iloc[0]) >= 0.95
    region = {hit.doc_a.iloc[0]: parse_bbox(hit.overlap_a.iloc[0]), hit.doc_b.iloc[0]: parse_bbox(hit.overlap_b.iloc[0])}
    assert region["left.png"] == pytest.approx((90, 0, 150, 240), abs=8)
    assert region["right.png"] == pytest.approx((0, 0, 60, 240), abs=8)
    assert (rows[[{a, b} != pair for a, b in zip(rows.doc_a, rows.doc_b)]].overlap_score == "").all()
    assert "partial overlap" in (tmp_path / "--overlaps" / "report.html").read_text()
