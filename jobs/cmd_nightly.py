"""`reusescan nightly INCOMING --store STORE`: new submissions against everything seen before (`jobs.nightly`)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from index.store import StoreError
from jobs.cli_options import fail, options_from, run_options
from jobs.nightly import StoreLocked, run_nightly
from jobs.options import format_summary


@click.command()
@click.argument("incoming", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--store", "store_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The store of everything seen before (created on the first night).")
@click.option("--date", "night", default=None, help="Night to file the report under (YYYY-MM-DD). Default: today (UTC).")
@run_options
def nightly(incoming: Path, store_dir: Path, night: str | None, **kwargs: Any) -> None:
    """Ingest the new documents of INCOMING into STORE and report their reuse against everything.

    Writes STORE/reports/<date>/report.csv, report.html and errors.csv. Safe to
    re-run: a second run of the same night adds nothing and reports the same.
    """
    if night is None:
        night = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    try:
        dt.date.fromisoformat(night)
    except ValueError as exc:
        raise click.BadParameter(f"not a date (YYYY-MM-DD): {night!r}", param_hint="--date") from exc
    try:
        summary = run_nightly(incoming, store_dir, night, options_from(kwargs))
    except (StoreLocked, StoreError) as exc:
        fail(str(exc))
    click.echo(format_summary(summary), err=True)
    click.echo(f"report: {summary.report}")
