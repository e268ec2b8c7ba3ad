"""A partial overlap in the report: its region in page coordinates, outlined on both thumbnails, in report.csv."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
from PIL import Image

from jobs.report import PanelRef, ReportPair, within, write_report_csv
from jobs.report_rows import outline


def test_within_maps_a_fraction_box_into_the_panel_bbox() -> None:
    assert within((100.0, 200.0, 300.0, 300.0), (0.5, 0.0, 1.0, 0.4)) == (200.0, 200.0, 300.0, 240.0)


def test_outline_draws_the_region_and_leaves_the_rest() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (120, 60), "black").save(buf, format="PNG")
    drawn = np.asarray(Image.open(io.BytesIO(outline(buf.getvalue(), (0.5, 0.0, 1.0, 1.0)))).convert("RGB"))
    assert (drawn[30, 60] == (255, 0, 255)).all() and (drawn[30, 119] == (255, 0, 255)).all()  # left and right edges
    assert (drawn[30, 90] == 0).all() and (drawn[:, :55] == 0).all()  # inside and outside the box: untouched
    assert outline(b"", (0, 0, 1, 1)) == b"" and outline(b"not a png", (0, 0, 1, 1)) == b"not a png"


def test_report_csv_carries_the_overlap_columns(tmp_path) -> None:
    a = PanelRef("a.pdf", 1, (0.0, 0.0, 100.0, 100.0), "fa", b"")
    b = PanelRef("b.pdf", 2, (50.0, 50.0, 150.0, 150.0), "fb", b"")
    pairs = [ReportPair(0.97, a, b, overlap_score=0.97, overlap_a=(50.0, 0.0, 100.0, 100.0), overlap_b=(50.0, 50.0, 100.0, 150.0)),
             ReportPair(0.99, b, a)]
    rows = pd.read_csv(write_report_csv(pairs, tmp_path / "report.csv"), keep_default_na=False)
    at = list(rows.columns).index("overlap_score")
    assert list(rows.columns[at:at + 3]) == ["overlap_score", "overlap_a", "overlap_b"]
    assert rows.overlap_score.tolist() == ["", "0.9700"] and rows.overlap_a.tolist()[1] == "50.00 0.00 100.00 100.00"
    assert rows.overlap_b.tolist() == ["", "50.00 50.00 100.00 150.00"]
