"""The `reusescan` command line.

Sub-commands live in their own modules and are imported only when invoked
(`LazyGroup`), so `reusescan --help` stays fast and importing this module does
no work: torch, Ray and FAISS load only for the commands that need them.
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
}


def _package_version() -> str:
    try:
        return version("reusescan")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


class LazyGroup(click.Group):
    """A click group that imports a sub-command's module only when it runs."""

    def __init__(self, *args: object, lazy_subcommands: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_subcommands = lazy_subcommands

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


def configure_logging(verbose: int, quiet: bool) -> None:
    """WARNING by default, INFO with -v, DEBUG with -vv, ERROR only with --quiet."""
    if quiet:
        level = logging.ERROR
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group(cls=LazyGroup, lazy_subcommands=SUBCOMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_package_version(), prog_name="reusescan")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def main(verbose: int, quiet: bool) -> None:
    """reusescan: find reused images (blots, microscopy, histology) across a corpus of papers."""
    configure_logging(verbose, quiet)
