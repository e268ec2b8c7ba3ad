"""A small real store for the query tests: generated panels, extracted, embedded with the shipped model, indexed.

Built in this process without Ray, with the functions a scan's stages call
(`extract_document`, `Embedder.embed`, `pixel_features`, `FigureStore.append`, `sync_index`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from embedder.fusion import PixelFusion
from embedder.inference import Embedder
from embedder.verify import pixel_features
from index.faiss_index import sync_index
from index.store import FigureStore
from jobs.scoring import model_id_of
from scanner.extract import extract_document
from training.synth import KINDS, generate

KIND_OF = {f"paper{i}.png": KINDS[i % len(KINDS)] for i in range(8)}


def stored_image(name: str) -> Image.Image:
    """The generated picture stored as document `name`."""
    i = int(name.removeprefix("paper").removesuffix(".png"))
    return generate(KIND_OF[name], seed=100 + i, size=(240, 200))


def build_store(corpus: Path, store_dir: Path, embedder: Embedder) -> FigureStore:
    """Write the sample images into `corpus`, then extract, embed, store and index them as a scan does."""
    corpus.mkdir(parents=True, exist_ok=True)
    records = []
    for name in KIND_OF:
        stored_image(name).save(corpus / name)
        records += extract_document(corpus / name, corpus).records
    fusion = PixelFusion.from_meta(embedder.meta)
    assert fusion is not None, "the shipped model is calibrated for the pixel check"
    import io

    images = [Image.open(io.BytesIO(r.image)).convert("RGB") for r in records]
    store = FigureStore.create(store_dir, model_id=model_id_of(None), dim=embedder.dim)
    store.append(records, embedder.embed(images), model_id=store.model_id, run_id="test",
                 pixels=[pixel_features(im, fusion.align) for im in images])
    sync_index(store)
    return store


def planted_copy(name: str) -> Image.Image:
    """A crop (80 % of each side, off-centre) of a stored picture, mirrored left-right."""
    img = stored_image(name)
    w, h = img.size
    crop = img.crop((int(0.05 * w), int(0.15 * h), int(0.85 * w), int(0.95 * h)))
    return Image.fromarray(np.asarray(crop)[:, ::-1].copy())
