"""`reusescan calibrate`: fit the fused score (head + pixel check) for a checkpoint and store it in it."""
from __future__ import annotations

import json
from pathlib import Path

import click
from tqdm import tqdm

from embedder.inference import DEFAULT_CHECKPOINT
from training.fusion import calibrate_checkpoint, copy_fusion, set_fused_threshold


@click.command("calibrate")
@click.option("--model", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Checkpoint to calibrate (default: the shipped model).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the calibrated checkpoint (may be the --model file itself).")
@click.option("--pairs", type=click.IntRange(20, 5000), default=1200, show_default=True,
              help="Generated calibration pairs (40% similar).")
@click.option("--seed", type=click.IntRange(0, 8), default=0, show_default=True,
              help="Which calibration pairs (their specimens never meet training or evaluation ones).")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Only store this report threshold for the fused score (from benchmarks/bench_scan.py); no refit.")
@click.option("--verdicts", "verdict_sources", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A scan folder or nightly store whose reviewers' verdicts join the fit (repeatable).")
@click.option("--verdict-prior", type=click.FloatRange(0.0, min_open=True), default=None,
              help="With --verdicts: the L2 strength pulling the correction to zero "
                   "(default: chosen by cross-validation over the verdicts).")
@click.option("--reports", type=(click.Path(exists=True, dir_okay=False), click.Path(exists=True, dir_okay=False)),
              multiple=True, metavar="REPORT TRUTH",
              help="Refit on scanned corpora instead: a `scan --threshold 0` report.csv and the corpus truth "
                   "(repeatable); also stores the threshold keeping precision 0.9 on every report.")
@click.option("--contain/--no-contain", default=True, show_default=True,
              help="With --reports: a reported panel inside a planted region counts (reusescan score --contain).")
@click.option("--fusion-from", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Only copy this checkpoint's fusion and threshold (no refit), e.g. onto a fine-tuned model.")
def calibrate(model: str | None, out: Path, pairs: int, seed: int, threshold: float | None,
              verdict_sources: tuple[Path, ...], verdict_prior: float | None,
              reports: tuple[tuple[str, str], ...], contain: bool, fusion_from: str | None) -> None:
    """Fit how the head score and the pixel check combine into the reported score.

    The pairs come from generator seeds used neither for training nor for
    `reusescan evaluate`; the three fitted weights go into the checkpoint's meta
    (`pixel_check`), which `reusescan scan` then uses. The encoder is unchanged, so
    stores built with the model stay valid. Recalibrate the report threshold
    afterwards (`benchmarks/bench_scan.py`, README "Where quality stands") and
    store it with `--threshold`. With `--verdicts`, the pairs reviewers confirmed
    (positives) or dismissed (negatives) in those scan folders or stores fit a small
    correction of the model's score, written to a new checkpoint (docs/review.md).
    """
    if fusion_from is not None:
        try:
            copy_fusion(fusion_from, model or DEFAULT_CHECKPOINT, out)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(json.dumps({"out": str(out), "fusion_from": str(fusion_from)}))
        return

    if threshold is not None:
        try:
            set_fused_threshold(model or DEFAULT_CHECKPOINT, out, threshold)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(json.dumps({"out": str(out), "threshold": threshold}))
        return

    if reports:
        _calibrate_on_reports(model or str(DEFAULT_CHECKPOINT), out, reports, contain)
        return

    if verdict_sources:
        from jobs.review.data import ReviewError
        from jobs.verdict_calibration import calibrate_with_verdicts

        try:
            fusion, stats = calibrate_with_verdicts(model, out, verdict_sources, prior=verdict_prior)
        except (ValueError, ReviewError) as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(json.dumps({"out": str(out), **fusion.to_meta(), **stats}, indent=2))
        return

    with tqdm(total=pairs, desc="pixel check", unit="pair") as bar:
        fusion, stats = calibrate_checkpoint(model, out, n_pairs=pairs, seed=seed, progress=bar.update)
    click.echo(json.dumps({"out": str(out), **fusion.to_meta(), **stats}, indent=2))


def _calibrate_on_reports(model: str, out: Path, reports: tuple[tuple[str, str], ...], contain: bool) -> None:
    from embedder.checkpoint import read_checkpoint
    from embedder.fusion import PixelFusion
    from training.report_fusion import calibrate_on_reports, write_calibration

    base = PixelFusion.from_meta(read_checkpoint(model).get("meta", {}))
    if base is None:
        raise click.ClickException(f"{model} has no pixel-check calibration: run `reusescan calibrate` first")
    try:
        fusion, thr, stats = calibrate_on_reports(base, reports, contain=contain)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    write_calibration(model, out, fusion, thr, stats)
    click.echo(json.dumps({"out": str(out), **fusion.to_meta(), "threshold": thr, "reports": stats}, indent=2))
