"""Re-score a threshold-0 scan's report with this checkout's pixel check: same candidates and head scores.

    python benchmarks/rescore_pixel_check.py SCAN_OUT NEW_REPORT.csv [--baseline REV] [--truth TRUTH.csv]
        [--align FIELD=VALUE ...]

SCAN_OUT is a `reusescan scan ... --threshold 0` output folder whose store has the `pixels`
column. Every reported pair is checked again as a scan checks it (`jobs.pixel_check.align_chunk`,
tasks of `PIXEL_CHECK_TASK_PAIRS` rows on one thread) and fused with its `head_score` and the
background margins over the report's rows (`training.report_fusion.rescore`); prints the CPU time,
how many pairs the cascade screened and how far the scores moved from the report's, and writes
the re-scored report for `reusescan score NEW_REPORT.csv TRUTH.csv`. With `--baseline REV` the
same candidates are also checked by that git revision's search (`embedder/verify.py` of REV), and
with `--truth` both are scored (AP, recall at precision 0.9, `--contain` matching) and the true
rows' fused scores compared. With `--align refine_top=2` (repeatable; values as JSON: `screen=0.7`,
`aspects=[1.0]`) the candidates are also checked with the shipped search ranges so changed
(`embedder.verify.AlignConfig`), the fusion unchanged. Measures a change of the pixel check on a
whole scan's candidates without re-running extraction and embedding.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_pixel_check import _align_chunk_with, load_revision  # noqa: E402

from embedder.fusion import PixelFusion  # noqa: E402
from embedder.inference import Embedder  # noqa: E402
from embedder.verify import AlignConfig  # noqa: E402
from index.store import FigureStore  # noqa: E402
from jobs.pixel_check import PIXEL_CHECK_TASK_PAIRS, align_chunk, read_chunk_pixels  # noqa: E402
from training.report_fusion import rescore  # noqa: E402
from training.scoring import label_rows, score_report  # noqa: E402


def check_report(scan: Path, report: pd.DataFrame, fusion: PixelFusion,
                 align: Callable[[Any, np.ndarray, np.ndarray], list[Any]]) -> tuple[pd.DataFrame, float]:
    """`report` with pixel_match, pixel_detail and score from `align` over its rows in tasks; and the CPU seconds."""
    keys = FigureStore.open(scan / "store").read_keys().to_pydict()
    row_of = dict(zip(keys["figure_id"], keys["row_id"]))
    a = np.array([row_of[f] for f in report.figure_id_a], dtype=np.int64)
    b = np.array([row_of[f] for f in report.figure_id_b], dtype=np.int64)
    chunk = read_chunk_pixels(FigureStore.open(scan / "store"), np.union1d(a, b).tolist(), fusion.align)
    started = time.process_time()
    found = [x for i in range(0, len(a), PIXEL_CHECK_TASK_PAIRS)
             for x in align(chunk, a[i:i + PIXEL_CHECK_TASK_PAIRS], b[i:i + PIXEL_CHECK_TASK_PAIRS])]
    seconds = time.process_time() - started
    out = report.copy()
    out["pixel_match"] = [x.correlation for x in found]
    out["pixel_detail"] = [x.detail for x in found]
    out["score"] = rescore(out, fusion)
    return out, seconds


def changed_search(config: AlignConfig, changes: Sequence[str]) -> AlignConfig:
    """`config` with each FIELD=VALUE of `changes` applied (VALUE as JSON)."""
    fields = config.to_dict()
    for change in changes:
        name, _, value = change.partition("=")
        if name not in fields:
            raise SystemExit(f"--align {change}: the search has no setting {name!r} (it has {', '.join(fields)})")
        fields[name] = json.loads(value)
    return AlignConfig.from_dict(fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scan", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--baseline", help="also check the candidates with this git revision's search")
    parser.add_argument("--truth", type=Path, help="the corpus truth: score both and compare the true rows")
    parser.add_argument("--align", action="append", default=[], metavar="FIELD=VALUE",
                        help="also check with the shipped search ranges changed so (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the scan runs it
    fusion = PixelFusion.from_meta(Embedder.load(None).meta)
    if fusion is None:
        raise SystemExit("the shipped model has no pixel-check calibration")
    report = pd.read_csv(args.scan / "report.csv")
    variants: dict[str, Callable[[Any, np.ndarray, np.ndarray], list[Any]]] = {
        "this checkout": lambda c, a, b: align_chunk(c, a, b, fusion.align)}
    if args.align:
        changed = changed_search(fusion.align, args.align)
        variants[f"this checkout, {', '.join(args.align)}"] = lambda c, a, b: align_chunk(c, a, b, changed)
    if args.baseline:
        old = load_revision(args.baseline)
        variants[f"baseline {args.baseline}"] = lambda c, a, b: _align_chunk_with(old, c, a, b)
    results = {}
    for name, align in variants.items():
        new, seconds = check_report(args.scan, report, fusion, align)
        moved = np.abs(new.score.to_numpy() - report.score.to_numpy())
        print(f"{name}: {len(new)} pairs, {seconds:.0f} s CPU ({seconds / len(new) * 1000:.1f} ms a pair), "
              f"screened {int((new.pixel_match < fusion.align.screen).sum())}; max |score - report's| "
              f"{moved.max():.4f}")
        results[name] = new
    if args.truth:
        true = label_rows(report, args.truth, contain=True) == 1
        for name, new in results.items():
            s = score_report(new, args.truth, contain=True)
            print(f"{name}: AP {s.average_precision:.4f}, R@P0.9 {s.recall_at_p90:.4f}, "
                  f"true rows {int(true.sum())} with fused scores {np.round(np.sort(new.score[true].to_numpy()), 4)}")
        if args.baseline:
            new, base = results["this checkout"], results[f"baseline {args.baseline}"]
            diff = np.abs(new.score.to_numpy() - base.score.to_numpy())
            print(f"this checkout against the baseline: max |score difference| {diff.max():.2e} over all rows, "
                  f"{diff[true].max() if true.any() else 0.0:.2e} over the true rows; identical alignments "
                  f"{int(((new.pixel_match == base.pixel_match) & (new.pixel_detail == base.pixel_detail)).sum())}"
                  f"/{len(new)}")
    out = results["this checkout"]
    out["score"] = np.round(out.score, 4)
    out["pixel_match"] = np.round(out.pixel_match, 4)
    out["pixel_detail"] = np.round(out.pixel_detail, 4)
    out.sort_values("score", ascending=False).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
