"""The scorer on hand-made reports: perfect, empty, shuffled, swapped, duplicated, wrong."""
from __future__ import annotations

import pandas as pd
import pytest

from scanner.records import parse_bbox
from training.scoring import ScoringInputError, iou, score_report

TRUTH = pd.DataFrame(
    [
        ["a.pdf", "1", "0 0 100 100", "b.pdf", "2", "10 10 110 110", "hflip", "inter", "gel"],
        ["a.pdf", "3", "50 50 150 150", "a.pdf", "4", "0 0 80 80", "crop+jpeg", "intra", "flow"],
        ["c.pdf", "1", "0 0 200 100", "d.pdf", "1", "0 0 200 100", "hflip", "inter", "gel"],
        ["e.pdf", "2", "0 0 50 50", "f.pdf", "2", "0 0 50 50", "blur", "inter", "flow"],
    ],
    columns=["doc_a", "page_a", "bbox_a", "doc_b", "page_b", "bbox_b", "alteration", "kind", "generator"],
)


def _report(rows: list[tuple[float, str, int, str, str, int, str]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["score", "doc_a", "page_a", "bbox_a", "doc_b", "page_b", "bbox_b"])
    df["kind"] = "inter"
    return df.astype(str)


def _perfect() -> list[tuple[float, str, int, str, str, int, str]]:
    return [(0.9 - 0.1 * i, r.doc_a, int(r.page_a), r.bbox_a, r.doc_b, int(r.page_b), r.bbox_b) for i, r in enumerate(TRUTH.itertuples())]


def test_iou_and_bbox() -> None:
    assert parse_bbox("1 2 3 4") == (1.0, 2.0, 3.0, 4.0)
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    with pytest.raises(ValueError, match="4 numbers"):
        parse_bbox("1 2 3")


def test_perfect_report() -> None:
    res = score_report(_report(_perfect()), TRUTH)
    assert (res.tp, res.fp, res.duplicates) == (4, 0, 0)
    assert res.precision == res.recall == res.average_precision == res.recall_at_p90 == res.best_f1 == 1.0
    assert res.best_f1_threshold == pytest.approx(0.6)
    assert res.recall_by_alteration["hflip"] == {"n": 2, "found": 2, "recall": 1.0}
    assert res.recall_by_op["jpeg"]["recall"] == 1.0


def test_empty_report() -> None:
    res = score_report(_report([]), TRUTH)
    assert res.precision is None and res.recall == 0.0
    assert res.average_precision == 0.0 and res.best_f1 == 0.0 and res.best_f1_threshold is None
    assert res.recall_by_alteration["blur"]["found"] == 0


def test_shuffled_and_swapped_sides_and_small_bbox_shift() -> None:
    rows = _perfect()
    swapped = [(s, db, pb, bb, da, pa, ba) for (s, da, pa, ba, db, pb, bb) in rows]
    shifted = [(s, da, pa, "2 3 102 101" if ba == "0 0 100 100" else ba, db, pb, bb) for (s, da, pa, ba, db, pb, bb) in swapped]
    res = score_report(_report(list(reversed(shifted))), TRUTH)
    assert (res.tp, res.fp) == (4, 0) and res.average_precision == 1.0


def test_wrong_page_or_low_iou_is_false_positive() -> None:
    rows = _perfect()[:2]
    rows.append((0.95, "a.pdf", 2, "0 0 100 100", "b.pdf", 2, "10 10 110 110"))   # wrong page
    rows.append((0.85, "c.pdf", 1, "0 0 90 100", "d.pdf", 1, "100 0 200 100"))    # IoU 0.0 on side b
    res = score_report(_report(rows), TRUTH)
    assert (res.tp, res.fp) == (2, 2)
    assert res.precision == 0.5 and res.recall == 0.5
    # ranks: FP(0.95) TP(0.9) FP(0.85) TP(0.8): AP = (1/2 + 2/4) / 4
    assert res.average_precision == pytest.approx((0.5 + 0.5) / 4)
    assert res.recall_at_p90 == 0.0
    assert res.recall_by_alteration["hflip"] == {"n": 2, "found": 1, "recall": 0.5}


def test_duplicate_rows_are_ignored_not_double_counted() -> None:
    rows = _perfect()
    dup_exact = rows[0]
    dup_swapped = (0.3, rows[0][4], rows[0][5], rows[0][6], rows[0][1], rows[0][2], rows[0][3])
    dup_near = (0.2, rows[0][1], rows[0][2], "1 1 101 101", rows[0][4], rows[0][5], rows[0][6])
    res = score_report(_report(rows + [dup_exact, dup_swapped, dup_near]), TRUTH)
    assert (res.tp, res.fp) == (4, 0)
    assert res.duplicates == 1  # exact and swapped duplicates collapse; the near-duplicate finding is ignored
    assert res.precision == 1.0 and res.n_reported == 7


def test_best_f1_threshold_and_ties() -> None:
    rows = _perfect()
    rows = [(0.5, *r[1:]) for r in rows[:2]] + [(0.5, "x.pdf", 1, "0 0 1 1", "y.pdf", 1, "0 0 1 1")] + [(0.1, *r[1:]) for r in rows[2:]]
    res = score_report(_report(rows), TRUTH)
    # cut at 0.5: P=2/3 R=1/2 F1=0.571; cut at 0.1: P=4/5 R=1 F1=0.889
    assert res.best_f1 == pytest.approx(2 * 0.8 / 1.8)
    assert res.best_f1_threshold == 0.1


def test_missing_columns_are_named() -> None:
    with pytest.raises(ScoringInputError, match="score"):
        score_report(TRUTH, TRUTH)
    with pytest.raises(ScoringInputError, match="bbox"):
        score_report(_report([(0.9, "a", 1, "0 0 1", "b", 1, "0 0 1 1")]), TRUTH)
