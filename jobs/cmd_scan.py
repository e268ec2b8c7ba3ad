"""`reusescan scan PATH --out DIR`: the whole pipeline on one folder of papers (`jobs.scan.run_scan`).

Re-running into the same DIR resumes: documents already in `DIR/store`
(same relative path and content hash) are not extracted or embedded again.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from index.store import StoreError, StoreMismatchError
from jobs.cli_options import fail, options_from, run_options
from jobs.options import format_summary
from jobs.scan import run_scan


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: report.csv, report.html, errors.csv and the store.")
@run_options
def scan(path: Path, out_dir: Path, **kwargs: Any) -> None:
    """Scan PATH (a folder of PDFs and/or images, or one file) for reused images.

    Writes OUT/report.csv (pairs, highest score first), OUT/report.html (open it in
    a browser), OUT/errors.csv (inputs that could not be read) and OUT/store/ (the
    Parquet figure store and FAISS index). Exit 0 when the scan completed, even if
    some inputs were unreadable.
    """
    try:
        summary = run_scan(path, out_dir, options_from(kwargs))
    except StoreMismatchError as exc:
        fail(f"{exc}. Use a new --out folder for another model.")
    except StoreError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; finished documents are kept in the store and the next run resumes")
    if summary.documents == 0:
        click.echo(f"reusescan: no PDF or image files under {path}", err=True)
    click.echo(format_summary(summary), err=True)
    click.echo(f"report: {summary.report}")
