"""`reusescan case export`: the evidence page of one manuscript's confirmed pairs (`jobs.case_export`)."""
from __future__ import annotations

from pathlib import Path

import click

from jobs.case_export import CaseError, export_case
from jobs.review.data import ReviewError


@click.group("case")
def case() -> None:
    """Build what goes to the authors: the confirmed pairs of a manuscript."""


@case.command("export")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--doc", "manuscript", required=True,
              help="The manuscript: its document key as in report.csv, or its file name.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write <manuscript>-case.html (and .pdf) into.")
@click.option("--docs-root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder the documents' keys are relative to (default: where the scan or nightly run found them).")
@click.option("--pdf", is_flag=True, help="Also print the page to PDF with a headless Chromium (must be installed).")
def export(path: Path, manuscript: str, out_dir: Path, docs_root: Path | None, pdf: bool) -> None:
    """Write the evidence page of MANUSCRIPT's confirmed pairs in PATH (a scan folder or nightly store).

    One self-contained HTML file (images inlined, no network request): per finding, both
    pages with the regions outlined, the two regions and B turned back onto A, the
    transform and the scores; with --pdf the same page as PDF.
    """
    try:
        written = export_case(path, manuscript, out_dir, docs_root=docs_root, pdf=pdf)
    except ReviewError as exc:
        raise click.BadParameter(str(exc), param_hint="PATH") from exc
    except CaseError as exc:
        raise click.ClickException(str(exc)) from exc
    for p in written:
        click.echo(str(p))
