"""Add `scan --overlaps` to a threshold-0 scan's report: the same candidates and fused scores, plus the overlap check.

    python benchmarks/rescore_overlaps.py SCAN_OUT NEW_REPORT.csv [--below T]

SCAN_OUT is a `reusescan scan ... --threshold 0` output folder (report.csv and store).
Every reported pair scored under T (default: the shipped model's threshold) gets the
overlap check of `jobs.match` (`screened_overlap`, then `OverlapRule`); an accepted
overlap raises the pair's score to its correlation and fills `overlap_score`,
`overlap_a` and `overlap_b` as the scan does. Prints the time, the pairs checked,
passing the coarse screen and accepted, and writes the report for
`reusescan score NEW_REPORT.csv TRUTH.csv`. Measures the overlap check on a whole
scan's candidates without re-running extraction, embedding and the pixel check
(which `--overlaps` leaves unchanged).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embedder.inference import Embedder  # noqa: E402
from embedder.verify import OverlapRule  # noqa: E402
from index.store import FigureStore  # noqa: E402
from jobs.pixel_check import overlap_chunk, read_chunk_images  # noqa: E402
from jobs.report import within  # noqa: E402
from jobs.scoring import model_threshold  # noqa: E402
from scanner.records import format_bbox, parse_bbox  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scan", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--below", type=float, default=None, help="Check pairs scored under this (default: the model's threshold).")
    args = ap.parse_args()
    torch.set_num_threads(1)  # as the scan's tasks run it
    below = model_threshold(Embedder.load(None), fused=True) if args.below is None else args.below
    rule = OverlapRule()
    report = pd.read_csv(args.scan / "report.csv", keep_default_na=False)
    table = FigureStore.open(args.scan / "store").read_table(["figure_id", "row_id"]).to_pylist()
    row_of = {r["figure_id"]: r["row_id"] for r in table}
    todo = np.flatnonzero(report.score.to_numpy(dtype=float) < below)
    a = np.array([row_of[f] for f in report.figure_id_a.iloc[todo]], dtype=np.int64)
    b = np.array([row_of[f] for f in report.figure_id_b.iloc[todo]], dtype=np.int64)
    started = time.perf_counter()
    chunk = read_chunk_images(FigureStore.open(args.scan / "store"), np.union1d(a, b).tolist())
    found = overlap_chunk(chunk, a, b, rule)
    seconds = time.perf_counter() - started
    for col in ("overlap_score", "overlap_a", "overlap_b"):
        report[col] = ""
    scores = report.score.to_numpy(dtype=float).copy()
    accepted = 0
    for i, o in zip(todo.tolist(), found):
        if not rule.accepts(o):
            continue
        accepted += 1
        scores[i] = max(scores[i], o.correlation)
        report.loc[report.index[i], "overlap_score"] = f"{o.correlation:.4f}"
        report.loc[report.index[i], "overlap_a"] = format_bbox(within(parse_bbox(report.bbox_a.iloc[i]), o.box_a))
        report.loc[report.index[i], "overlap_b"] = format_bbox(within(parse_bbox(report.bbox_b.iloc[i]), o.box_b))
    screened = sum(o.correlation >= rule.screen for o in found)
    print(f"{len(report)} pairs, {len(todo)} under {below:.4f} checked in {seconds:.0f} s "
          f"({1000 * seconds / max(1, len(todo)):.0f} ms a pair, one thread); past the screen {screened}; accepted {accepted}")
    report["score"] = np.round(scores, 4)
    report.sort_values("score", ascending=False).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
