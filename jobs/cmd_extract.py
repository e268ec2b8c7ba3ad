"""`reusescan extract PATH --out DIR`: every figure and panel of a corpus into a Parquet store (`jobs.extract_run`)."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from jobs.extract_run import ExtractSummary, run_extract
from scanner.extract import ExtractLimits

__all__ = ["ExtractSummary", "extract", "run_extract"]

logger = logging.getLogger(__name__)


@click.command("extract")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder (figures.parquet, errors.csv).")
@click.option("--dump-png", type=click.Path(file_okay=False, path_type=Path), default=None, help="Also write every record's pixels as PNG files here.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Worker processes (default: CPU count; 0 = in this process).")
@click.option("--max-pages", type=click.IntRange(min=1), default=2000, show_default=True, help="Pages read per document.")
@click.option("--max-image-pixels", type=click.IntRange(min=1), default=100_000_000, show_default=True, help="Pixel cap per image (decompression bombs).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0), default=300.0, show_default=True, help="Seconds per document (0 = none).")
@click.option("--no-split", is_flag=True, help="Do not split compound figures into panels.")
@click.option("--boilerplate-docs", type=click.IntRange(min=2), default=3, show_default=True, help="Same pixels in this many documents = boilerplate.")
@click.option("--boilerplate-pages", type=click.IntRange(min=2), default=4, show_default=True, help="Same pixels on this many pages = boilerplate.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def extract(
    path: Path, out: Path, dump_png: Path | None, workers: int | None, max_pages: int, max_image_pixels: int,
    timeout_s: float, no_split: bool, boilerplate_docs: int, boilerplate_pages: int, no_progress: bool,
) -> None:
    """Extract every figure and panel of PATH (PDFs and images, recursive) into OUT/figures.parquet.

    Unreadable inputs get one line each in OUT/errors.csv; the run goes on and
    exits 0. Exit 1 means the run itself failed.
    """
    limits = ExtractLimits(
        max_image_pixels=max_image_pixels, max_pages=max_pages, timeout_s=timeout_s or None, split=not no_split,
    )
    n_workers = (os.cpu_count() or 1) if workers is None else workers
    try:
        summary = run_extract(
            path, out, workers=n_workers, limits=limits, dump_png=dump_png,
            min_docs=boilerplate_docs, min_pages=boilerplate_pages, progress=not no_progress,
        )
    except Exception as exc:
        logger.exception("extraction failed")
        click.echo(f"error: extraction failed: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"{summary.documents} inputs, {summary.pages} pages, {summary.records} records "
        f"({summary.panels} panels for matching), {summary.errors} error lines, {summary.seconds:.1f} s "
        f"-> {out / 'figures.parquet'}",
        err=True,
    )
