"""Score a `scan --threshold 0` report again with a checkpoint's fused score, without rescanning.

    python benchmarks/rescore.py REPORT.csv OUT.csv [--model CKPT] [--at-threshold] && reusescan score OUT.csv TRUTH.csv [--contain]

The report keeps every candidate pair's head score and pixel-check results, which is all the
fusion needs (`training.report_fusion.rescore`; the background margins come from the report's
other rows). Prints how many rows reach the checkpoint's report threshold; `--at-threshold` writes
only those (what a scan with the default threshold would report: precision, recall and recall by
alteration at the threshold from `reusescan score`).
"""
from __future__ import annotations

import argparse

import pandas as pd

from embedder.checkpoint import read_checkpoint
from embedder.fusion import META_KEY, PixelFusion
from embedder.inference import DEFAULT_CHECKPOINT
from training.report_fusion import rescore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report")
    parser.add_argument("out")
    parser.add_argument("--model", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--at-threshold", action="store_true", help="keep only the rows at or above the threshold")
    args = parser.parse_args()
    meta = read_checkpoint(args.model).get("meta", {})
    fusion = PixelFusion.from_meta(meta)
    if fusion is None:
        raise SystemExit(f"{args.model} has no pixel-check calibration")
    report = pd.read_csv(args.report)
    report["score"] = rescore(report, fusion)
    threshold = float(meta[META_KEY].get("threshold", 0.5))
    kept = report[report["score"] >= threshold] if args.at_threshold else report
    kept.sort_values("score", ascending=False).to_csv(args.out, index=False, float_format="%.6g")
    print(f"{int((report['score'] >= threshold).sum())} of {len(report)} rows at or above {threshold:.4f} -> {args.out}")


if __name__ == "__main__":
    main()
