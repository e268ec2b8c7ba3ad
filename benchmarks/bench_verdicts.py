"""Does learning from verdicts help? Recall at precision 0.9 on held-out reviewed pairs, before and after.

    python benchmarks/bench_verdicts.py --docs 40 --reuse 40 --seed 303 [--verdicts 50] [--splits 5] [--model CKPT]

1. `reusescan make-corpus` a corpus and `reusescan scan` its PDFs at threshold 0 (every
   candidate kept with its head score and pixel check; both reused when already in --out).
2. Each split sends every finding (a figure pair with the panel pairs inside it) to the
   review half or the held-out half at random. A simulated reviewer works down the review
   half's report, highest score first, and records `--verdicts` verdicts from the ground
   truth (a pair matching a planted pair, or in a finding that does, is confirmed; any
   other is dismissed) into that split's own `verdicts.sqlite`.
3. The fusion is refitted as `reusescan calibrate --verdicts` does
   (`jobs.verdict_calibration`; the generated calibration pairs are measured once), and
   the held-out half is scored with the model's fusion and with the refitted one:
   `reusescan score`'s recall at precision 0.9 and AP against the planted pairs its rows find.
The first split also runs the real `reusescan calibrate --verdicts` command and checks it
writes the same fusion (`--no-cli-check` skips it). A control row refits on the generated
pairs alone, so the change is the verdicts', not the refit's.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from embedder.fusion import PixelFusion  # noqa: E402
from index.store import MANIFEST  # noqa: E402
from jobs.verdict_calibration import fit_with_verdicts, generated_signals, reviewed_pairs  # noqa: E402
from jobs.verdicts import CONFIRMED, DISMISSED, Verdict, VerdictStore  # noqa: E402
from training.report_fusion import panel_ids  # noqa: E402
from training.scoring import row_truth_matches, score_report  # noqa: E402


def reusescan(*args: str) -> None:
    """Run the CLI as a user would (its stdout goes to stderr: stdout is this script's JSON)."""
    subprocess.run([sys.executable, "-m", "jobs", *args], check=True, cwd=REPO, stdout=sys.stderr,
                   env={**os.environ, "PYTHONPATH": str(REPO)})


def split_dir(scan: Path, out: Path) -> Path:
    """A scan folder that shares `scan`'s report and store manifest but keeps its own verdicts."""
    shutil.rmtree(out, ignore_errors=True)
    (out / "store").mkdir(parents=True)
    for name in ("report.csv", "dismissed.csv"):
        if (scan / name).exists():
            (out / name).symlink_to((scan / name).resolve())
    (out / "store" / MANIFEST).symlink_to((scan / "store" / MANIFEST).resolve())
    return out


def fused(fusion: PixelFusion, rows: pd.DataFrame, everything: pd.DataFrame) -> np.ndarray:
    """`rows` scored by `fusion`, its background margins taken over all the scan's candidates (`everything`)."""
    num = lambda c: pd.to_numeric(everything[c], errors="coerce").fillna(0.0).to_numpy(np.float64)  # noqa: E731
    scores = fusion.combine(num("head_score"), num("pixel_match"), num("pixel_detail"), pair_ids=panel_ids(everything))
    return pd.Series(scores, index=everything.index).loc[rows.index].to_numpy()


def held_out_quality(rows: pd.DataFrame, scores: np.ndarray, truth: pd.DataFrame) -> dict[str, float]:
    """R@P0.9 and AP of `rows` scored by `scores`, against the planted pairs those rows find."""
    found = sorted({i for m in rows["_matches"] for i in m})
    ranked = rows.assign(score=[f"{s:.6f}" for s in scores]).drop(columns=["_matches", "_unit", "_positive"])
    res = score_report(ranked, truth.iloc[found].reset_index(drop=True))
    return {"recall_at_p90": round(res.recall_at_p90, 4), "average_precision": round(res.average_precision, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--reuse", type=int, default=40)
    parser.add_argument("--seed", type=int, default=303)
    parser.add_argument("--verdicts", type=int, default=50, help="simulated verdicts per split")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--verdict-share", type=float, default=0.5)
    parser.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    parser.add_argument("--pairs", type=int, default=1200, help="generated calibration pairs (as `reusescan calibrate`)")
    parser.add_argument("--no-cli-check", dest="cli_check", action="store_false",
                        help="skip running `reusescan calibrate --verdicts` itself on the first split")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "verdicts")
    args = parser.parse_args()

    corpus, scan = args.out / f"corpus-{args.docs}-{args.reuse}-{args.seed}", args.out / f"scan-{args.docs}-{args.reuse}-{args.seed}"
    if not (corpus / "truth.csv").exists():
        reusescan("make-corpus", str(corpus), "--docs", str(args.docs), "--reuse", str(args.reuse), "--seed", str(args.seed))
    if not (scan / "report.csv").exists():
        reusescan("scan", str(corpus / "pdf"), "--out", str(scan), "--threshold", "0", "--no-progress",
                  *(["--model", args.model] if args.model else []))
    truth = pd.read_csv(corpus / "truth.csv", dtype=str, keep_default_na=False)
    rows = pd.read_csv(scan / "report.csv", dtype=str, keep_default_na=False)
    rows["_matches"] = row_truth_matches(rows, truth)
    loose = row_truth_matches(rows, truth, contain=True)  # a panel inside a planted figure is part of that reuse
    rows["_unit"] = [f"f{f}" if f else f"k{k}" for f, k in zip(rows.get("finding", pd.Series([""] * len(rows))), rows["pair_key"])]
    true_units = {u for u, m in zip(rows["_unit"], loose) if m}
    rows["_positive"] = [bool(m) or u in true_units for u, m in zip(rows["_unit"], loose)]

    from embedder.checkpoint import read_checkpoint
    from embedder.inference import DEFAULT_CHECKPOINT

    model = Path(args.model) if args.model else DEFAULT_CHECKPOINT
    before = PixelFusion.from_meta(read_checkpoint(model).get("meta", {}))
    if before is None:
        raise SystemExit(f"{model} has no fusion to start from: run `reusescan calibrate` first")
    cache = args.out / f"generated-{model.stem}-{args.pairs}.npz"  # measuring the generated pairs is the slow part
    if cache.exists():
        generated = tuple(np.load(cache)[k] for k in ("head", "corr", "detail", "labels"))
    else:
        generated = generated_signals(model, args.pairs, 0, before.align)
        np.savez(cache, head=generated[0], corr=generated[1], detail=generated[2], labels=generated[3])
    from training.fusion import fit_fusion

    control = fit_fusion(*generated, align=before.align)  # refitted without verdicts: what the refit alone does

    results = []
    units = sorted(set(rows["_unit"]))
    for split in range(args.splits):
        rng = np.random.default_rng(split)
        review_units = {u for u in units if rng.random() < 0.5}
        review = rows[rows["_unit"].isin(review_units)].sort_values("score", ascending=False, key=lambda s: s.astype(float))
        held = rows[~rows["_unit"].isin(review_units)]
        sdir = split_dir(scan, args.out / f"split-{split}")
        decided = review.head(args.verdicts)
        VerdictStore.for_store(sdir / "store").add_many(
            Verdict(*r["pair_key"].split(":"), CONFIRMED if r["_positive"] else DISMISSED, reviewer="simulated")
            for _, r in decided.iterrows())
        after = fit_with_verdicts(generated, reviewed_pairs([sdir]), before.align, args.verdict_share,
                                  base=before)
        if split == 0 and args.cli_check:  # the command a user runs writes the same fusion
            ckpt = args.out / "recalibrated.pt"
            reusescan("calibrate", "--model", str(model), "--out", str(ckpt), "--verdicts", str(sdir),
                      "--verdict-share", str(args.verdict_share), "--pairs", str(args.pairs))
            cli = PixelFusion.from_meta(read_checkpoint(ckpt)["meta"])
            assert cli is not None and np.allclose([cli.w_head, cli.w_match, cli.w_detail, cli.bias],
                                                   [after.w_head, after.w_match, after.w_detail, after.bias], atol=1e-3)
        results.append({"split": split, "verdicts": len(decided), "confirmed": int(decided["_positive"].sum()),
                        "held_out_pairs": len(held), "held_out_true": int(held["_positive"].sum()),
                        "before": held_out_quality(held, fused(before, held, rows), truth),
                        "refit_without_verdicts": held_out_quality(held, fused(control, held, rows), truth),
                        "after": held_out_quality(held, fused(after, held, rows), truth),
                        "fusion_after": {k: round(v, 3) for k, v in after.to_meta().items() if k != "align"}})
    mean = {when: {k: round(float(np.mean([r[when][k] for r in results])), 4) for k in ("recall_at_p90", "average_precision")}
            for when in ("before", "refit_without_verdicts", "after")}
    print(json.dumps({"docs": args.docs, "reuse": args.reuse, "seed": args.seed, "model": args.model or "shipped",
                      "candidate_pairs": len(rows), "fusion_before": {k: round(v, 3) for k, v in before.to_meta().items() if k != "align"},
                      "mean": mean, "splits": results}, indent=2))


if __name__ == "__main__":
    main()
