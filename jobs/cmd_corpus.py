"""`reusescan make-corpus OUT`: synthetic papers with known image reuse, and their ground truth."""
from __future__ import annotations

import json

import click

from training.corpus import CorpusConfig
from training.corpus import make_corpus as build
from training.real_corpus import RealCorpusConfig, make_image_corpus, make_pdf_corpus


@click.command("make-corpus")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--docs", type=click.IntRange(min=1), default=20, show_default=True, help="Number of papers.")
@click.option("--reuse", type=click.IntRange(min=0), default=10, show_default=True, help="Number of reuse events (true pairs).")
@click.option("--seed", type=int, default=0, show_default=True, help="Everything is deterministic in the seed.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Rendering processes.")
@click.option("--images/--no-images", default=True, show_default=True, help="Also write the image-folder variant (OUT/images, OUT/images_truth.csv).")
@click.option("--intra", "intra_fraction", type=click.FloatRange(0, 1), default=0.3, show_default=True, help="Share of reuse within one paper.")
@click.option("--from-pdfs", "from_pdfs", type=click.Path(exists=True, file_okay=False), default=None,
              help="Plant --reuse altered copies of real images into copies of the real PDFs in this folder "
                   "(replacing other real images in place) instead of generating papers: OUT/pdf, OUT/truth.csv.")
@click.option("--from-images", "from_images", type=click.Path(exists=True, file_okay=False), default=None,
              help="Plant --reuse altered copies among the real images of this folder (as new files): "
                   "OUT/images, OUT/images_truth.csv.")
@click.option("--crop-share", type=click.FloatRange(0, 1), default=None,
              help="With --from-pdfs/--from-images: this share of the pairs is crop-type (crops of 25-50%% of the area, "
                   "such crops turned 90 degrees, and partial overlaps: two crops of one field sharing 30-60%% of their "
                   "area, alteration 'overlap'). Default: every recipe in turn (about 1 pair in 9 a crop, no overlaps).")
def make_corpus(out: str, docs: int, reuse: int, seed: int, workers: int, images: bool, intra_fraction: float,
                from_pdfs: str | None, from_images: str | None, crop_share: float | None) -> None:
    """Write OUT/pdf/*.pdf, OUT/truth.csv, OUT/images/**.png, OUT/images_truth.csv (see training.corpus).

    With --from-pdfs and/or --from-images the corpus is made of real material with planted
    reuse instead (see training.real_corpus); --docs, --workers and --images are then ignored.
    """
    if from_pdfs or from_images:
        cfg = RealCorpusConfig(reuse=reuse, seed=seed, intra_fraction=intra_fraction, crop_share=crop_share)
        result = {}
        if from_pdfs:
            result["pdf"] = make_pdf_corpus(out, from_pdfs, cfg)
        if from_images:
            result["images"] = make_image_corpus(out, from_images, cfg)
        click.echo(json.dumps(result))
        return
    summary = build(out, CorpusConfig(docs=docs, reuse=reuse, seed=seed, workers=workers, images=images, intra_fraction=intra_fraction))
    click.echo(json.dumps({k: v for k, v in summary.items() if k != "config"}))
