"""`score_report(..., contain=True)` / `reusescan score --contain`: matching real figures by containment."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from jobs.cli import main
from training.scoring import contains, score_report

TRUTH = pd.DataFrame([{"doc_a": "a.pdf", "page_a": "1", "bbox_a": "100 100 300 300",
                       "doc_b": "b.pdf", "page_b": "2", "bbox_b": "50 50 250 200", "alteration": "crop", "kind": "inter", "generator": "real"}])


def _report(bbox_a: str, bbox_b: str) -> pd.DataFrame:
    return pd.DataFrame([{"score": "0.9", "doc_a": "a.pdf", "page_a": "1", "bbox_a": bbox_a, "doc_b": "b.pdf", "page_b": "2", "bbox_b": bbox_b}])


def test_contains_exact_cases() -> None:
    assert contains((0, 0, 100, 100), (10, 10, 40, 40))          # panel well inside a figure
    assert contains((10, 10, 40, 40), (0, 0, 100, 100))          # either order
    assert not contains((0, 0, 100, 100), (80, 0, 110, 100))     # centre in, but 20 of 30 wide inside: 67% < 80%
    assert contains((0, 0, 100, 100), (75, 0, 105, 100))         # centre in, 25 of 30 inside: 83%
    assert contains((0, 0, 100, 100), (76, 0, 100, 100))         # fully inside
    assert not contains((0, 0, 100, 100), (200, 200, 220, 220))  # disjoint
    assert not contains((0, 0, 100, 100), (90, 90, 130, 130))    # centre outside


def test_a_panel_inside_the_planted_region_and_a_figure_holding_a_crop_match_with_contain() -> None:
    # side a: a reported whole figure (0..400) holding the planted crop's source region;
    # side b: a reported panel inside the planted placement
    rep = _report("0 0 400 400", "100 80 200 160")
    assert score_report(rep, TRUTH).tp == 0          # IoU 0.25 and 0.27: no match by default
    res = score_report(rep, TRUTH, contain=True)
    assert (res.tp, res.fp, res.recall) == (1, 0, 1.0)


def test_not_contained_is_still_a_miss() -> None:
    rep = _report("0 0 400 400", "200 150 400 400")  # side b: centre (300, 275) outside the planted bbox
    res = score_report(rep, TRUTH, contain=True)
    assert (res.tp, res.fp) == (0, 1)
    rep = _report("0 0 400 400", "50 50 250 200")
    other_page = rep.assign(page_b="3")
    assert score_report(other_page, TRUTH, contain=True).tp == 0


def test_iou_behaviour_unchanged_by_default() -> None:
    rep = _report("110 110 300 300", "55 50 250 200")  # high IoU on both sides
    assert score_report(rep, TRUTH).tp == 1
    assert score_report(rep, TRUTH, contain=True).tp == 1
    rep = _report("100 100 200 200", "50 50 250 200")  # side a inside, IoU 0.25
    assert score_report(rep, TRUTH).tp == 0
    assert score_report(rep, TRUTH, iou_threshold=0.2).tp == 1


def test_score_cli_contain_option(tmp_path: Path) -> None:
    _report("0 0 400 400", "100 80 200 160").to_csv(tmp_path / "r.csv", index=False)
    TRUTH.to_csv(tmp_path / "t.csv", index=False)
    plain = CliRunner().invoke(main, ["score", str(tmp_path / "r.csv"), str(tmp_path / "t.csv"), "--json"])
    cont = CliRunner().invoke(main, ["score", str(tmp_path / "r.csv"), str(tmp_path / "t.csv"), "--json", "--contain"])
    assert plain.exit_code == cont.exit_code == 0
    assert '"tp": 0' in plain.output and '"tp": 1' in cont.output
    help_text = CliRunner().invoke(main, ["score", "--help"]).output
    assert "--contain" in help_text and "80%" in help_text


def test_score_cli_threshold_scores_only_the_rows_a_scan_at_that_threshold_reports(tmp_path: Path) -> None:
    rows = pd.concat([_report("100 100 300 300", "50 50 250 200").assign(score="0.95"),   # the planted pair
                      _report("0 0 10 10", "0 0 10 10").assign(score="0.93"),             # a false pair above
                      _report("500 500 510 510", "0 0 10 10").assign(score="0.40")])      # a false pair below
    rows.to_csv(tmp_path / "r.csv", index=False)
    TRUTH.to_csv(tmp_path / "t.csv", index=False)
    args = ["score", str(tmp_path / "r.csv"), str(tmp_path / "t.csv"), "--json"]
    every = json.loads(CliRunner().invoke(main, args).output)
    above = json.loads(CliRunner().invoke(main, [*args, "--threshold", "0.9"]).output)
    assert (every["tp"], every["fp"]) == (1, 2) and (above["tp"], above["fp"]) == (1, 1)
    assert above["precision"] == 0.5 and above["recall"] == 1.0
    rows.drop(columns="score").to_csv(tmp_path / "noscore.csv", index=False)
    refused = CliRunner().invoke(main, ["score", str(tmp_path / "noscore.csv"), str(tmp_path / "t.csv"), "--threshold", "0.9"])
    assert refused.exit_code != 0 and "needs a numeric score column" in refused.output
