"""End-to-end quality and speed of `reusescan scan` on generated corpora, and threshold calibration.

    python benchmarks/bench_scan.py --docs 40 --reuse 20 --seed 101 [--model CKPT] [--out bench-out/scan]

Generates a corpus with `reusescan make-corpus` (PDF and image-folder variants),
scans both with the real CLI (real Ray, the given or shipped model) at threshold 0
so that every candidate is kept with its head score, and scores the reports with
`reusescan score`. Prints, per variant: precision/recall at the model's default
threshold, average precision, recall at precision 0.9, best F1 and the score
threshold that reaches precision 0.9 (the calibration: run it on a seed that is
not the evaluation seed, then pass `--threshold` or store it in the model card).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.scoring import score_report  # noqa: E402


def reusescan(*args: str) -> float:
    """Run the CLI as a user would; returns wall seconds."""
    started = time.monotonic()
    # the CLI's own stdout (the report path) goes to stderr: stdout is this script's JSON
    subprocess.run([sys.executable, "-m", "jobs", *args], check=True, cwd=REPO, stdout=sys.stderr)
    return time.monotonic() - started


def threshold_for_precision(report: pd.DataFrame, truth_path: Path, precision: float) -> float | None:
    """Lowest score threshold whose report prefix reaches `precision` (None if none does)."""
    best = None
    for thr in sorted(set(report["score"].round(4)), reverse=True):
        res = score_report(report[report["score"] >= thr], truth_path)
        if res.precision is not None and res.precision >= precision:
            best = float(thr)
    return best


def evaluate(variant: str, root: Path, truth: Path, out: Path, model: str | None, threshold: float,
             extra: Sequence[str] = ()) -> dict[str, object]:
    shutil.rmtree(out, ignore_errors=True)  # a fresh scan: a kept store would resume, and hold other corpora
    args = ["scan", str(root), "--out", str(out), "--threshold", "0", "--no-progress", *extra]
    if model:
        args += ["--model", model]
    seconds = reusescan(*args)
    report = pd.read_csv(out / "report.csv")
    full = score_report(report, truth)
    at_default = score_report(report[report["score"] >= threshold], truth)
    return {
        "variant": variant,
        "scan_seconds": round(seconds, 1),
        "candidates_reported": int(len(report)),
        "true_pairs": full.n_true,
        "recall_of_candidates": full.recall,
        "average_precision": round(full.average_precision, 4),
        "recall_at_p90": round(full.recall_at_p90, 4),
        "best_f1": round(full.best_f1, 4),
        "best_f1_threshold": full.best_f1_threshold,
        f"precision_at_{threshold}": at_default.precision,
        f"recall_at_{threshold}": at_default.recall,
        "threshold_for_p90": threshold_for_precision(report, truth, 0.9),
        "recall_by_op": {k: v.get("recall") for k, v in full.recall_by_op.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--reuse", type=int, default=20)
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    parser.add_argument("--threshold", type=float, default=0.5, help="threshold to report precision/recall at")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "scan")
    parser.add_argument("--no-images", action="store_true", help="skip the image-folder variant")
    parser.add_argument("--no-pixel-check", dest="pixel_check", action="store_false",
                        help="score with the head alone (scan --no-pixel-check)")
    parser.add_argument("--crop-vectors", action="store_true", help="scan --crop-vectors (sub-region queries)")
    args = parser.parse_args()

    corpus = args.out / f"corpus-{args.docs}-{args.reuse}-{args.seed}"
    if not (corpus / "truth.csv").exists():
        reusescan("make-corpus", str(corpus), "--docs", str(args.docs), "--reuse", str(args.reuse),
                  "--seed", str(args.seed), "--workers", "2")
    extra = ([] if args.pixel_check else ["--no-pixel-check"]) + (["--crop-vectors"] if args.crop_vectors else [])
    scans = args.out / f"scan-{corpus.name}"
    results = [evaluate("pdf", corpus / "pdf", corpus / "truth.csv", scans / "pdf", args.model, args.threshold, extra)]
    if not args.no_images:
        results.append(evaluate("images", corpus / "images", corpus / "images_truth.csv", scans / "images",
                                args.model, args.threshold, extra))
    print(json.dumps({"docs": args.docs, "reuse": args.reuse, "seed": args.seed, "pixel_check": args.pixel_check,
                      "model": args.model or "shipped", "results": results}, indent=2))


if __name__ == "__main__":
    main()
