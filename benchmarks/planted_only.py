"""Keep the report rows that touch a planted copy, for scoring a real-image corpus whose inputs hold natural duplicates.

    python benchmarks/planted_only.py REPORT.csv TRUTH.csv OUT.csv && reusescan score OUT.csv TRUTH.csv --contain

Real image collections (e.g. CellProfiler's examples) hold the same image in two example
folders and consecutive, nearly identical frames of one movie: a scan rightly reports
them, but `make-corpus --from-images` truth does not list them, so they count as false
positives and recall at precision 0.9 is 0 whatever the scanner does. Truth is only
known for pairs involving a planted copy (`doc_b` of the truth file); this keeps the
rows with at least one such side (pairs of two original inputs are outside the
experiment), so a copy matched to the wrong original still counts as a false positive.
"""
from __future__ import annotations

import sys

import pandas as pd


def main() -> None:
    report, truth, out = sys.argv[1:4]
    rows = pd.read_csv(report)
    planted = set(pd.read_csv(truth).doc_b)
    keep = rows.doc_a.isin(planted) | rows.doc_b.isin(planted)
    rows[keep].to_csv(out, index=False)
    print(f"{int(keep.sum())} of {len(rows)} rows touch a planted copy -> {out}")


if __name__ == "__main__":
    main()
