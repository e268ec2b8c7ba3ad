"""Extend an image corpus's truth with the natural repeats of each planted pair's source.

    python benchmarks/natural_repeats.py REPORT.csv TRUTH.csv OUT_TRUTH.csv [--match 0.99] [--detail 0.95]

Real image collections hold the same picture twice (NEUBIAS has one nuclei field as 16-bit, 8-bit,
with an offset and turned with clipping; CellProfiler one image in two example folders). A planted
copy of one of them then rightly matches the others too, and `benchmarks/planted_only.py` counts
those rows as false. This finds the repeats among the *original* inputs of a `scan --threshold 0`
report (pairs of two non-planted images whose pixel check places one on the other at correlation
>= --match with detail >= --detail, i.e. the same pixels), joins them into groups, and writes a
truth file where each planted pair (source, copy) also lists (repeat of the source, copy), with
the alteration of the planted pair. Score with both truth files and say which.
"""
from __future__ import annotations

import argparse

import pandas as pd


def repeat_groups(report: pd.DataFrame, originals: set[str], match: float, detail: float) -> dict[str, set[str]]:
    """Each original image that has repeats -> its group (itself included), joined transitively."""
    same = report[report.doc_a.isin(originals) & report.doc_b.isin(originals)
                  & (report.pixel_match >= match) & (report.pixel_detail >= detail)]
    group: dict[str, set[str]] = {}
    for a, b in zip(same.doc_a, same.doc_b):
        joined = group.get(a, {a}) | group.get(b, {b})
        for doc in joined:
            group[doc] = joined
    return group


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report")
    ap.add_argument("truth")
    ap.add_argument("out")
    ap.add_argument("--match", type=float, default=0.99)
    ap.add_argument("--detail", type=float, default=0.95)
    args = ap.parse_args()
    report, truth = pd.read_csv(args.report), pd.read_csv(args.truth)
    planted = set(truth.doc_b) | set(truth.doc_a[truth.alteration == "overlap"])
    originals = (set(report.doc_a) | set(report.doc_b)) - planted
    groups = repeat_groups(report, originals, args.match, args.detail)
    extra = []
    for _, row in truth.iterrows():
        for repeat in sorted(groups.get(row.doc_a, set()) - {row.doc_a}):
            extra.append({**row.to_dict(), "doc_a": repeat, "bbox_a": _whole(report, repeat)})
    pd.concat([truth, pd.DataFrame(extra)], ignore_index=True).to_csv(args.out, index=False)
    print(f"{len(set(map(frozenset, map(tuple, groups.values()))))} groups of repeated originals; "
          f"{len(extra)} truth rows added -> {args.out}")


def _whole(report: pd.DataFrame, doc: str) -> str:
    """The bbox the report gives `doc` (an image file is one panel: its whole extent)."""
    side_a = report.loc[report.doc_a == doc, "bbox_a"]
    return str(side_a.iloc[0]) if len(side_a) else str(report.loc[report.doc_b == doc, "bbox_b"].iloc[0])


if __name__ == "__main__":
    main()
