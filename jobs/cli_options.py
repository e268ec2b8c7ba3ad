"""The click options shared by `reusescan scan` and `reusescan nightly`, and the exit on a failed run."""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from jobs.match import MatchOptions
from jobs.options import RunOptions
from jobs.pipeline import PipelineOptions
from jobs.report import MAX_PAIRS

F = TypeVar("F", bound=Callable[..., Any])

_MATCH = MatchOptions()
_PIPELINE = PipelineOptions()

_OPTIONS = [
    click.option("--model", type=click.Path(exists=True, dir_okay=False), default=None,
                 help="Model checkpoint (.pt). Default: the model shipped with reusescan."),
    click.option("--address", default=None,
                 help="Ray cluster to join ('auto' or 'ray://HOST:10001'). Default: start a local Ray."),
    click.option("--batch-size", type=click.IntRange(1, 4096), default=_PIPELINE.embed_batch_size, show_default=True,
                 help="Panels per embedding batch."),
    click.option("--actors", type=click.IntRange(1, 1024), default=None,
                 help="Embedding actors. Default: one per GPU when GPUs are present, else one per two CPUs "
                      "(at least one CPU stays free for extraction)."),
    click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
                 help="Score at which a pair is reported. Default: the threshold calibrated for the model "
                      "and scoring mode (0.5 when it has none)."),
    click.option("--k", "k", type=click.IntRange(1, 1000), default=_MATCH.k, show_default=True,
                 help="Nearest neighbours per panel."),
    click.option("--min-sim", type=click.FloatRange(-1.0, 1.0), default=_MATCH.min_sim, show_default=True,
                 help="Cosine floor for a candidate pair."),
    click.option("--include-noise", is_flag=True, help="Also match tiny, uniform, chart and boilerplate images."),
    click.option("--pixel-check/--no-pixel-check", default=_MATCH.pixel_check, show_default=True,
                 help="Refine the head score by placing one panel on the other (turn, crop, rescale) and "
                      "correlating pixels; needs a calibrated model (the shipped one is)."),
    click.option("--crop-vectors/--no-crop-vectors", default=_MATCH.crop_vectors, show_default=True,
                 help="Also embed sub-regions of large panels (quadrants and centre) and use them as extra "
                      "queries, so that crops keeping a quarter to half of a panel become candidates, and "
                      "let a confident crop placement outweigh a low head score (embedding about 2-3x "
                      "slower, about 3x the candidates to pixel-check; docs/benchmarks.md)."),
    click.option("--keypoints/--no-keypoints", default=_MATCH.keypoints, show_default=True,
                 help="Also make candidates of panels that share ORB keypoints (crops of a quarter to half "
                      "of a panel, turned or mirrored, and partial overlaps, which the vectors' nearest "
                      "neighbours miss); docs/pixel-check.md."),
    click.option("--poses/--no-poses", default=_MATCH.poses, show_default=True,
                 help="Fit where one panel lies on the other from matched keypoints, for candidates scored "
                      "under the threshold: a crop, a turned crop or two panels sharing part of one field is "
                      "reported with the shared region outlined in both (docs/pixel-check.md)."),
    click.option("--max-pages", type=click.IntRange(1), default=_PIPELINE.max_pages, show_default=True,
                 help="Pages read per document (the rest is reported in errors.csv)."),
    click.option("--cards", type=click.IntRange(1), default=MAX_PAIRS, show_default=True,
                 help="Pairs report.html draws as cards, highest first; report.csv lists every pair. The report "
                      "holds each card's pictures while it is built (~0.3 MB a card)."),
    click.option("--progress/--no-progress", default=True, help="Progress bars on stderr."),
]


def run_options(func: F) -> F:
    """Decorate a command with the options common to `scan` and `nightly` (read them with `options_from`)."""
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


def options_from(kwargs: dict[str, Any]) -> RunOptions:
    """The `RunOptions` of the shared options in a command's keyword arguments."""
    # absolute: Ray workers (on a cluster, other machines) do not run in the driver's directory
    model = str(Path(kwargs["model"]).resolve()) if kwargs["model"] else None
    pipeline = PipelineOptions(model_path=model, embed_batch_size=kwargs["batch_size"],
                               embed_actors=kwargs["actors"], max_pages=kwargs["max_pages"],
                               crop_vectors=kwargs["crop_vectors"])
    match = MatchOptions(k=kwargs["k"], min_sim=kwargs["min_sim"], threshold=kwargs["threshold"],
                         include_noise=kwargs["include_noise"], pixel_check=kwargs["pixel_check"],
                         crop_vectors=kwargs["crop_vectors"], keypoints=kwargs["keypoints"],
                         poses=kwargs["poses"])
    return RunOptions(pipeline=pipeline, match=match, address=kwargs["address"], progress=kwargs["progress"],
                      cards=kwargs["cards"])


def fail(message: str) -> NoReturn:
    """Exit 1: the run itself failed (not an input)."""
    click.echo(f"reusescan: error: {message}", err=True)
    sys.exit(1)
