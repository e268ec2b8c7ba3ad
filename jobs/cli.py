"""The `reusescan` command line.

Sub-commands live in their own modules and are imported only when invoked
(`LazyGroup`), so `reusescan --help` stays fast and importing this module does
no work: torch, Ray and FAISS load only for the commands that need them. The
command list of `reusescan --help` is drawn from `SUMMARIES` for the same reason
(a test keeps them equal to each command's own help).
"""
from __future__ import annotations

import importlib
import logging
from importlib.metadata import PackageNotFoundError, version

import click

# name -> "module:attribute"; each module owns one sub-command.
SUBCOMMANDS: dict[str, str] = {
    "scan": "jobs.cmd_scan:scan",
    "extract": "jobs.cmd_extract:extract",
    "nightly": "jobs.cmd_nightly:nightly",
    "make-corpus": "jobs.cmd_corpus:make_corpus",
    "score": "jobs.cmd_score:score",
    "train": "jobs.cmd_train:train_command",
    "evaluate": "jobs.cmd_evaluate:evaluate_command",
    "calibrate": "jobs.cmd_calibrate:calibrate",
    "case": "jobs.cmd_case:case",
    "review": "jobs.cmd_review:review",
    "query": "jobs.cmd_query:query",
}

# name -> the first paragraph of the command's help, for `reusescan --help` without importing it.
SUMMARIES: dict[str, str] = {
    "calibrate": "Fit how the head score and the pixel check combine into the reported score.",
    "case": "Build what goes to the authors: the confirmed pairs of a manuscript.",
    "evaluate": "Accuracy, precision, recall, F1 and ROC AUC of BTA-style models on similar/dissimilar pairs.",
    "extract": "Extract every figure and panel of PATH (PDFs and images, recursive) into OUT/figures.parquet.",
    "make-corpus": "Write OUT/pdf/*.pdf, OUT/truth.csv, OUT/images/**.png, OUT/images_truth.csv (see training.corpus).",
    "nightly": "Ingest the new documents of INCOMING into STORE and report their reuse against everything.",
    "query": "Ask whether FILE (an image, a PDF, or one page of it) appears anywhere in a store.",
    "review": "Review the pairs of a scan folder or nightly store in the browser; verdicts go into the store.",
    "scan": "Scan PATH (a folder of PDFs and/or images, or one file) for reused images.",
    "score": "Match REPORT rows to TRUTH pairs and print precision, recall, AP, recall at precision 0.9 and best F1.",
    "train": "Train one stage of the BTA model (resumable; data-parallel with --workers).",
}


def _package_version() -> str:
    try:
        return version("reusescan")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


class LazyGroup(click.Group):
    """A click group that imports a sub-command's module only when it runs."""

    def __init__(self, *args: object, lazy_subcommands: dict[str, str], summaries: dict[str, str] | None = None,
                 **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_subcommands = lazy_subcommands
        self.summaries = summaries or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_subcommands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            module_name, attr = self.lazy_subcommands[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{module_name}:{attr} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list as click draws it, with lazy commands' help from `summaries` (nothing imported)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.lazy_subcommands and name in self.summaries:
                rows.append((name, summary_line(self.summaries[name], limit)))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def summary_line(summary: str, limit: int) -> str:
    """`summary` shortened to `limit` characters the way click shortens a command's help."""
    return click.Command(None, help=summary).get_short_help_str(limit)


def configure_logging(verbose: int, quiet: bool) -> None:
    """WARNING by default, INFO with -v, DEBUG with -vv, ERROR only with --quiet."""
    if quiet:
        level = logging.ERROR
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group(cls=LazyGroup, lazy_subcommands=SUBCOMMANDS, summaries=SUMMARIES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_package_version(), prog_name="reusescan")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def main(verbose: int, quiet: bool) -> None:
    """reusescan: find reused images (blots, microscopy, histology) across a corpus of papers."""
    configure_logging(verbose, quiet)
