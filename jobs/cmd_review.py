"""`reusescan review PATH`: the flagged pairs in the browser, verdicts into the store (`jobs.review`)."""
from __future__ import annotations

from pathlib import Path

import click

from jobs.cli_options import fail
from jobs.review.data import ReviewError, resolve
from jobs.review.server import ReviewServer


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (localhost by default: the app has no login).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--import", "import_file", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Load a verdicts file exported from report.html into the store, then exit.")
def review(path: Path, host: str, port: int, import_file: Path | None) -> None:
    """Review the pairs of a scan folder or nightly store in the browser; verdicts go into the store.

    PATH is a scan's OUT folder (its report.csv, verdicts in OUT/store/verdicts.sqlite)
    or a nightly STORE (one report per night, newest first). Keys: j/k next/previous,
    c confirm, d dismiss, u unsure. Later scan and nightly runs leave dismissed pairs
    out of report.csv and mark confirmed ones.
    """
    try:
        target = resolve(path)
    except ReviewError as exc:
        raise click.BadParameter(str(exc), param_hint="PATH") from exc
    if import_file is not None:
        try:
            added, known = target.verdicts.import_json(import_file)
        except (ValueError, TypeError, KeyError) as exc:
            raise click.BadParameter(f"{import_file}: {exc}", param_hint="--import") from exc
        click.echo(f"imported {added} verdict(s) into {target.verdicts.path} ({known} already recorded)")
        return
    try:
        server = ReviewServer(target, host=host, port=port)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from exc
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc}")
    click.echo(f"reviewing {', '.join(target.reports)} of {target.store_dir}")
    click.echo(f"open {server.url}  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
