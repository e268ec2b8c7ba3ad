"""`reusescan score REPORT.csv TRUTH.csv`: precision/recall of a scan report against ground truth."""
from __future__ import annotations

import json

import click
import pandas as pd

from training.scoring import ScoringInputError, format_text, score_report


@click.command("score")
@click.argument("report", type=click.Path(exists=True, dir_okay=False))
@click.argument("truth", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--iou", "iou_threshold", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.5, show_default=True, help="Minimum bbox IoU on each side.")
@click.option("--contain", is_flag=True,
              help="Also match a side when one bbox contains the other's centre and the smaller box has at least "
                   "80%% of its area inside the larger: a reported panel inside a planted region, or a reported "
                   "whole figure holding a planted crop (fair for real figures, e.g. make-corpus --from-pdfs).")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Score only the rows at or above this score, as a scan at that threshold reports them "
                   "(e.g. a `scan --threshold 0` report at the model's threshold).")
def score(report: str, truth: str, as_json: bool, iou_threshold: float, contain: bool, threshold: float | None) -> None:
    """Match REPORT rows to TRUTH pairs and print precision, recall, AP, recall at precision 0.9 and best F1.

    A row matches a true pair when both sides have the same doc and page and bbox IoU >= --iou
    (either order; with --contain also by containment). Recall is also broken down per
    alteration, per inter/intra and per generator.
    """
    try:
        res = score_report(_rows_at_or_above(report, threshold), truth, iou_threshold, contain=contain)
    except ScoringInputError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(json.dumps(res.to_dict(), indent=2) if as_json else format_text(res))


def _rows_at_or_above(report: str, threshold: float | None) -> str | pd.DataFrame:
    """The report, or only its rows scoring at least `threshold`."""
    if threshold is None:
        return report
    rows = pd.read_csv(report, dtype=str, keep_default_na=False)
    scores = pd.to_numeric(rows["score"], errors="coerce") if "score" in rows.columns else None
    if scores is None or scores.isna().any():
        raise click.UsageError(f"{report}: --threshold needs a numeric score column")
    return rows[scores >= threshold]
