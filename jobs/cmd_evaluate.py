"""`reusescan evaluate`: the paper's protocol on held-out generator seeds or a folder of images."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import click
import numpy as np

from embedder.inference import Embedder
from training.evaluate import draw_roc, evaluate_embedders, format_table, make_pairs

log = logging.getLogger(__name__)


@click.command("evaluate")
@click.argument("images_dir", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", "models", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Checkpoint(s) to compare side by side (default: the shipped model). "
                   "Rows are named after how each was trained (BTA, BTA-combined, Barlow Twins, ...).")
@click.option("--name", "names", multiple=True, help="Row name per --model, in order (default: from the checkpoint).")
@click.option("--pairs", type=click.IntRange(min=2), default=400, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Which held-out pairs.")
@click.option("--p-similar", type=click.FloatRange(0, 1), default=0.4, show_default=True)
@click.option("--threshold", type=float, default=0.5, show_default=True)
@click.option("--roc", "roc_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("roc.png"),
              show_default=True, help="Where to draw the ROC curves (PNG).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="Inference precision (auto: fp16 on CUDA, bf16 on CPUs with AMX or AVX-512 BF16, else fp32).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def evaluate_command(images_dir: Path | None, models: tuple[str, ...], names: tuple[str, ...], pairs: int, seed: int,
                     p_similar: float, threshold: float, roc_path: Path, precision: str, as_json: bool) -> None:
    """Accuracy, precision, recall, F1 and ROC AUC of BTA-style models on similar/dissimilar pairs.

    Without IMAGES_DIR the pairs come from held-out generator seeds; with it, from those images.
    """
    if names and len(names) != len(models):
        raise click.UsageError("give one --name per --model")
    paths: list[str | None] = list(models) or [None]
    embedders = {}
    for i, path in enumerate(paths):
        emb = Embedder.load(path, precision=precision)
        label = names[i] if names else str(emb.meta.get("method", "model"))
        while label in embedders:
            label += "'"
        embedders[label] = emb
    pair_list = make_pairs(pairs, seed=seed, p_similar=p_similar, folder=images_dir)
    rows = evaluate_embedders(embedders, pair_list, threshold)
    labels = np.array([p.label for p in pair_list])
    draw_roc(rows, labels, roc_path)
    if as_json:
        click.echo(json.dumps({"pairs": len(pair_list), "similar": int(labels.sum()), "threshold": threshold,
                               "source": str(images_dir) if images_dir else "generators (held-out seeds)",
                               "precision": precision,
                               "roc_png": str(roc_path), "methods": [r.to_dict() for r in rows]}, indent=2))
    else:
        click.echo(f"{len(pair_list)} pairs ({int(labels.sum())} similar), threshold {threshold}")
        click.echo(format_table(rows))
        click.echo(f"ROC curves: {roc_path}")
