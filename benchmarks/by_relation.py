"""Reported pairs by `relation` (same figure / same paper / other paper): planted vs not, at the threshold and below.

    python benchmarks/by_relation.py SCAN_DIR TRUTH.csv [--threshold 0.9274] [--floor 0.5]

SCAN_DIR is a `reusescan scan --threshold 0` folder (report.csv and store/). A row is planted
when `reusescan score --contain` matches it to the truth. Reports written before the
`relation` column existed get it from the store's parent ids, as a scan now writes it.
Legitimate look-alikes (a channel beside its merge, serial sections, consecutive slices) sit
mostly inside one paper: this shows how many planted and non-planted pairs of each relation a
reviewer meets at the threshold, and at a lower floor.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from index.store import FigureStore  # noqa: E402
from jobs.report import RELATIONS, relation_of  # noqa: E402
from training.scoring import row_truth_matches  # noqa: E402


def relations_from_store(rows: pd.DataFrame, store: Path) -> list[str]:
    """Each row's relation from the store's parent ids, as a scan now writes it."""
    table = FigureStore.open(store).read_table(["figure_id", "parent_id"]).to_pylist()
    parent = {r["figure_id"]: r["parent_id"] or "" for r in table}
    return [relation_of(da, db, a, b, parent.get(a, ""), parent.get(b, ""))
            for da, db, a, b in zip(rows.doc_a, rows.doc_b, rows.figure_id_a, rows.figure_id_b)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scan", type=Path)
    parser.add_argument("truth", type=Path)
    parser.add_argument("--threshold", type=float, default=0.9274)
    parser.add_argument("--floor", type=float, default=0.5, help="also count the rows scored at least this")
    args = parser.parse_args()
    rows = pd.read_csv(args.scan / "report.csv", dtype=str, keep_default_na=False)
    if "relation" not in rows.columns or not rows["relation"].any():
        rows["relation"] = relations_from_store(rows, args.scan / "store")
    truth = pd.read_csv(args.truth, dtype=str, keep_default_na=False)
    rows["planted"] = [bool(m) for m in row_truth_matches(rows, truth, contain=True)]
    rows["score"] = rows["score"].astype(float)
    print(f"{len(rows)} rows, {int(rows.planted.sum())} planted; threshold {args.threshold}, floor {args.floor}")
    print("| relation | planted ≥ threshold | not planted ≥ threshold | planted ≥ floor | not planted ≥ floor |")
    print("|---|---|---|---|---|")
    for rel in RELATIONS:
        r = rows[rows.relation == rel]
        cut, floor = r[r.score >= args.threshold], r[r.score >= args.floor]
        print(f"| {rel} | {int(cut.planted.sum())} | {int((~cut.planted).sum())} | {int(floor.planted.sum())} | "
              f"{int((~floor.planted).sum())} |")


if __name__ == "__main__":
    main()
