"""Does learning from verdicts help? Recall at precision 0.9 on held-out reviewed pairs, before and after.

    python benchmarks/bench_verdicts.py --scan SCAN_DIR --truth TRUTH.csv [--verdicts 50] [--splits 20] [--prior P]
    python benchmarks/bench_verdicts.py --docs 20 --reuse 10 --seed 0 [...]   # make-corpus + scan first (cached in --out)
    python benchmarks/bench_verdicts.py --scan IMG_SCAN --truth IMG/images_truth.csv --planted-only  # an image corpus

1. The report is a `reusescan scan --threshold 0` report.csv (every candidate kept with its head
   score and pixel check), of an existing scan folder with its corpus truth, or of a
   `make-corpus` corpus scanned here.
2. A simulated reviewer works down the report, highest score first, and decides the top
   `--verdicts` pairs from the truth with `reusescan score --contain` semantics (a pair matching a
   planted pair, a panel inside one, or a pair in a finding that does, is confirmed; any other is
   dismissed).
3. Each of `--splits` random splits sends every reviewed finding (a figure pair with the panel
   pairs inside it) to the training half or the held-out half. The training verdicts go into the
   split's own `verdicts.sqlite` and `reusescan calibrate --verdicts` learns its correction from
   them (`jobs.verdict_calibration`; the first split also runs the command itself and checks it
   writes the same fusion, unless `--no-cli-check`).
4. The held-out reviewed pairs are ranked by the model's fusion and by the corrected one, as a
   rescan would score them (the same candidates, their background margins over the whole
   report): recall at precision 0.9 and AP over their verdicts (ties ranked negatives first).
   Printed per split and as medians, with the number of splits that got worse. The rest of the
   report (every row outside the training findings) is scored too, against the planted pairs it
   finds, so a correction that helps the reviewed pairs but hurts the remainder shows.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from embedder.fusion import PixelFusion  # noqa: E402
from index.store import MANIFEST  # noqa: E402
from jobs.verdict_calibration import correction_from_verdicts, reviewed_pairs  # noqa: E402
from jobs.verdicts import CONFIRMED, DISMISSED, Verdict, VerdictStore  # noqa: E402
from training.report_fusion import panel_ids  # noqa: E402
from training.scoring import ranking_quality, row_truth_matches, score_report  # noqa: E402

METRICS = ("recall_at_p90", "average_precision")


def reusescan(*args: str) -> None:
    """Run the CLI as a user would (its stdout goes to stderr: stdout is this script's JSON)."""
    subprocess.run([sys.executable, "-m", "jobs", *args], check=True, cwd=REPO, stdout=sys.stderr,
                   env={**os.environ, "PYTHONPATH": str(REPO)})


def split_dir(scan: Path, report: Path, out: Path) -> Path:
    """A scan folder with `report` as its report.csv and `scan`'s store manifest, keeping its own verdicts."""
    shutil.rmtree(out, ignore_errors=True)
    (out / "store").mkdir(parents=True)
    (out / "report.csv").symlink_to(report.resolve())
    manifest = scan / "store" / MANIFEST
    if manifest.exists():
        (out / "store" / MANIFEST).symlink_to(manifest.resolve())
    else:  # a scan folder kept without its store: the verdicts only need the folder to look like a scan
        (out / "store" / MANIFEST).write_text("{}")
    return out


def fused(fusion: PixelFusion, rows: pd.DataFrame) -> pd.Series:
    """Every row scored by `fusion`, its background margins taken over all the report's candidates."""
    num = lambda c: pd.to_numeric(rows[c], errors="coerce").fillna(0.0).to_numpy(np.float64)  # noqa: E731
    return pd.Series(fusion.combine(num("head_score"), num("pixel_match"), num("pixel_detail"), pair_ids=panel_ids(rows)),
                     index=rows.index)


def labelled(rows: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """`rows` with `_unit` (its finding, or itself), `_positive` (`reusescan score --contain`, by finding), `_matches`."""
    rows = rows.copy()
    loose = row_truth_matches(rows, truth, contain=True)  # a panel inside a planted figure is part of that reuse
    findings = rows["finding"] if "finding" in rows.columns else pd.Series([""] * len(rows), index=rows.index)
    rows["_unit"] = [f"f{f}" if f else f"k{k}" for f, k in zip(findings, rows["pair_key"])]
    true_units = {u for u, m in zip(rows["_unit"], loose) if m}
    rows["_positive"] = [bool(m) or u in true_units for u, m in zip(rows["_unit"], loose)]
    rows["_matches"] = row_truth_matches(rows, truth)  # as `reusescan score` matches (once: it is the slow part)
    return rows


def quality(scores: pd.Series, rows: pd.DataFrame) -> dict[str, float]:
    """R@P0.9 and AP of `rows` ranked by `scores`, over their verdicts."""
    ap, r90 = ranking_quality(scores.loc[rows.index].to_numpy(), rows["_positive"].to_numpy(int))
    return {"recall_at_p90": round(r90, 4), "average_precision": round(ap, 4)}


def report_quality(scores: pd.Series, rows: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """R@P0.9 and AP of `rows` ranked by `scores` as `reusescan score` computes them, against the planted pairs they find."""
    found = sorted({i for m in rows["_matches"] for i in m})
    ranked = rows.assign(score=[f"{s:.6f}" for s in scores.loc[rows.index]]).drop(columns=["_unit", "_positive", "_matches"])
    res = score_report(ranked, truth.iloc[found].reset_index(drop=True))
    return {"recall_at_p90": round(res.recall_at_p90, 4), "average_precision": round(res.average_precision, 4)}


def scan_of_generated_corpus(args: argparse.Namespace) -> tuple[Path, Path]:
    """make-corpus and scan it at threshold 0 under --out (both reused when there)."""
    name = f"{args.docs}-{args.reuse}-{args.seed}"
    corpus, scan = args.out / f"corpus-{name}", args.out / f"scan-{name}"
    if not (corpus / "truth.csv").exists():
        reusescan("make-corpus", str(corpus), "--docs", str(args.docs), "--reuse", str(args.reuse), "--seed", str(args.seed))
    if not (scan / "report.csv").exists():
        reusescan("scan", str(corpus / "pdf"), "--out", str(scan), "--threshold", "0", "--no-progress",
                  *(["--model", args.model] if args.model else []))
    return scan, corpus / "truth.csv"


def summary(results: list[dict[str, Any]], where: str) -> dict[str, Any]:
    """Medians over splits of before/after, and how many splits got worse, on `where`."""
    out: dict[str, Any] = {}
    for metric in METRICS:
        before = np.array([r[where]["before"][metric] for r in results])
        after = np.array([r[where]["after"][metric] for r in results])
        out[metric] = {"median_before": round(float(np.median(before)), 4), "median_after": round(float(np.median(after)), 4),
                       "splits_better": int((after > before).sum()), "splits_worse": int((after < before).sum())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scan", type=Path, default=None, help="an existing `scan --threshold 0` folder (needs --truth)")
    parser.add_argument("--truth", type=Path, default=None, help="the scanned corpus's truth.csv")
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--reuse", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verdicts", type=int, default=50, help="simulated verdicts: the report's top pairs")
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--train-fraction", type=float, default=0.5, help="share of the reviewed findings trained on")
    parser.add_argument("--planted-only", action="store_true",
                        help="review only rows touching a planted copy (image corpora with natural duplicates, "
                             "as benchmarks/planted_only.py); margins still come from every row")
    parser.add_argument("--prior", type=float, default=None, help="L2 strength (default: chosen by inner cross-validation)")
    parser.add_argument("--model", default=None, help="checkpoint the scan was made with (default: the shipped model)")
    parser.add_argument("--no-cli-check", dest="cli_check", action="store_false",
                        help="skip running `reusescan calibrate --verdicts` itself on the first split")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "verdicts")
    args = parser.parse_args()
    if (args.scan is None) != (args.truth is None):
        parser.error("--scan and --truth go together")
    scan, truth_path = (args.scan, args.truth) if args.scan else scan_of_generated_corpus(args)

    from embedder.checkpoint import read_checkpoint
    from embedder.inference import DEFAULT_CHECKPOINT

    model = Path(args.model) if args.model else DEFAULT_CHECKPOINT
    before = PixelFusion.from_meta(read_checkpoint(model).get("meta", {}))
    if before is None:
        raise SystemExit(f"{model} has no fusion to start from: run `reusescan calibrate` first")
    truth = pd.read_csv(truth_path, dtype=str, keep_default_na=False)
    rows = labelled(pd.read_csv(scan / "report.csv", dtype=str, keep_default_na=False), truth)
    score_before = fused(before, rows)
    # the report as the model scores it (a scan made before its fusion was refitted is rescored, as
    # benchmarks/rescore.py does: the head and pixel numbers do not change with the fusion)
    rescored = int((pd.to_numeric(rows["score"]) - score_before).abs().gt(1e-3).sum())
    args.out.mkdir(parents=True, exist_ok=True)
    report = args.out / "report.csv"
    rows.assign(score=[f"{s:.4f}" for s in score_before]).drop(columns=["_unit", "_positive", "_matches"]).to_csv(report, index=False)
    planted = set(truth.doc_b)
    reviewable = (rows.doc_a.isin(planted) | rows.doc_b.isin(planted)) if args.planted_only else pd.Series(True, index=rows.index)
    reviewed = rows.loc[score_before[reviewable].sort_values(ascending=False, kind="stable").index[:args.verdicts]]
    units = sorted(set(reviewed["_unit"]))

    results = []
    for split in range(args.splits):
        rng = np.random.default_rng(split)
        train_units = {u for u in units if rng.random() < args.train_fraction}
        train = reviewed[reviewed["_unit"].isin(train_units)]
        held = reviewed[~reviewed["_unit"].isin(train_units)]
        if train["_positive"].nunique() < 2 or held["_positive"].nunique() < 2:
            continue  # a split without both kinds on either side measures nothing
        sdir = split_dir(scan, report, args.out / "splits" / f"split-{split}")
        VerdictStore.for_store(sdir / "store").add_many(
            Verdict(*r["pair_key"].split(":"), CONFIRMED if r["_positive"] else DISMISSED, reviewer="simulated")
            for _, r in train.iterrows())
        correction, how = correction_from_verdicts(reviewed_pairs([sdir]), args.prior, before)
        after = correction.apply(before)
        if not results and args.cli_check:  # the command a user runs writes the same fusion
            ckpt = args.out / "corrected.pt"
            reusescan("calibrate", "--model", str(model), "--out", str(ckpt), "--verdicts", str(sdir),
                      *(["--verdict-prior", str(args.prior)] if args.prior else []))
            cli = PixelFusion.from_meta(read_checkpoint(ckpt)["meta"])
            assert cli is not None and np.allclose([cli.w_head, cli.w_match, cli.w_detail, cli.bias, cli.w_match_margin],
                                                   [after.w_head, after.w_match, after.w_detail, after.bias,
                                                    after.w_match_margin], atol=1e-3)
        score_after = fused(after, rows)
        rest = rows[reviewable & ~rows["_unit"].isin(train_units)]
        results.append({"split": split, "train_verdicts": len(train), "train_confirmed": int(train["_positive"].sum()),
                        "held_out_verdicts": len(held), "held_out_confirmed": int(held["_positive"].sum()),
                        "prior": correction.prior, "correction": {k: round(v, 3) for k, v in correction.to_meta().items() if v is not None},
                        "held_out_reviewed": {"before": quality(score_before, held), "after": quality(score_after, held)},
                        "rest_of_report": {"before": report_quality(score_before, rest, truth),
                                           "after": report_quality(score_after, rest, truth)}})
        print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"scan": str(scan), "model": args.model or "shipped", "candidate_pairs": len(rows), "rows_rescored": rescored,
                      "verdicts": len(reviewed), "confirmed": int(reviewed["_positive"].sum()),
                      "reviewed_before": quality(score_before, reviewed), "splits_used": len(results),
                      "held_out_reviewed": summary(results, "held_out_reviewed"),
                      "rest_of_report": summary(results, "rest_of_report"), "splits": results}, indent=2))


if __name__ == "__main__":
    main()
