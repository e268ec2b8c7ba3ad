"""`reusescan query FILE --store STORE`: does this one figure appear anywhere in the store (`jobs.query`)."""
from __future__ import annotations

from pathlib import Path

import click

from index.store import StoreMismatchError
from jobs.cli_options import fail
from jobs.query import QUERY_CSV, QUERY_HTML, NoStoreError, QueryOptions, UnreadableQueryError, run_query


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--store", "store_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A nightly STORE, or a scan's OUT folder (its store/).")
@click.option("--page", type=click.IntRange(1), default=None, help="Only this page of a PDF (1-based).")
@click.option("--top", type=click.IntRange(1, 1000), default=20, show_default=True, help="Candidates listed, best first.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Also write {QUERY_CSV} (report.csv's columns) and {QUERY_HTML} (the report's cards) here.")
@click.option("--model", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Model checkpoint (.pt): the store's model. Default: the model shipped with reusescan.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Score at which a match is reported. Default: the model's calibrated threshold, as a scan.")
@click.option("--k", "k", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Nearest neighbours per query panel.")
@click.option("--include-noise", is_flag=True, help="Also search with tiny, uniform, chart and text panels.")
@click.option("--pixel-check/--no-pixel-check", default=True, show_default=True,
              help="Refine the head score with the pixel check, as a scan does.")
def query(file: Path, store_dir: Path, page: int | None, top: int, out_dir: Path | None, model: str | None,
          threshold: float | None, k: int, include_noise: bool, pixel_check: bool) -> None:
    """Ask whether FILE (an image, a PDF, or one page of it) appears anywhere in a store.

    Extracts FILE's panels as a scan does, embeds them with the store's model, searches
    the store's index and scores the candidates as a scan (head, pixel check, threshold).
    Prints the ranked candidates (matches marked *); nothing is written into the store.
    Exit 0 whether or not anything matched.
    """
    options = QueryOptions(model_path=model, page=page, top=top, k=max(k, 1), threshold=threshold,
                           include_noise=include_noise, pixel_check=pixel_check)
    try:
        result = run_query(file, store_dir, options)
    except NoStoreError as exc:
        raise click.BadParameter(str(exc), param_hint="--store") from exc
    except UnreadableQueryError as exc:
        raise click.BadParameter(str(exc), param_hint="FILE") from exc
    except StoreMismatchError as exc:
        fail(str(exc))
    from jobs.query import format_table, write_query_outputs

    click.echo(format_table(result))
    for err in result.errors:
        click.echo(f"reusescan: {err.input}: {err.stage}: {err.error}", err=True)
    click.echo("time: " + ", ".join(f"{name} {sec:.1f}s" for name, sec in result.seconds.items()), err=True)
    if out_dir is not None:
        write_query_outputs(result, store_dir, out_dir)
        click.echo(f"report: {out_dir / QUERY_HTML}")
