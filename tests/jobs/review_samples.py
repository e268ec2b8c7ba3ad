"""A tiny hand-made scan folder for the review tests: a real store, a report.csv, no Ray and no model.

Four panels (A, B, C and A turned 90°) are written into a real `FigureStore`
with arbitrary vectors; the report holds three pairs: A / rot90(A) (inter),
B / C (inter) and C / A (intra), built with the same panel hashes the scan uses.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from index.store import FigureStore
from jobs.report import PanelRef, ReportPair
from jobs.report_rows import write_outputs
from jobs.verdicts import panel_hash
from scanner.records import PanelRecord


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def panels() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    a = (rng.random((60, 90, 3)) * 255).astype(np.uint8)
    return {"A": png(a), "B": png((rng.random((50, 50, 3)) * 255).astype(np.uint8)),
            "C": png((rng.random((40, 70, 3)) * 255).astype(np.uint8)), "A90": png(np.rot90(a).copy())}


PLACES = {"A": ("p1.pdf", 1, (10, 20, 100, 80)), "B": ("p1.pdf", 2, (5, 5, 55, 55)),
          "C": ("p2.pdf", 1, (0, 0, 70, 40)), "A90": ("p2.pdf", 3, (30, 30, 90, 120))}


def refs(images: dict[str, bytes], docs: dict[str, str] | None = None) -> dict[str, PanelRef]:
    out = {}
    for name, (doc, page, bbox) in PLACES.items():
        doc = (docs or {}).get(doc, doc)
        out[name] = PanelRef(doc=doc, page=page, bbox=bbox, figure_id=f"fig-{name}", thumbnail=images[name],
                             image_sha256=panel_hash(images[name]))
    return out


def sample_pairs(images: dict[str, bytes], docs: dict[str, str] | None = None) -> list[ReportPair]:
    r = refs(images, docs)
    return [ReportPair(score=0.97, a=r["A"], b=r["A90"], group_id=1, transform="rot90"),
            ReportPair(score=0.91, a=r["B"], b=r["C"], group_id=2, transform="identity"),
            ReportPair(score=0.85, a=r["A"], b=r["B"], group_id=3, transform=None)]


def make_store(store_dir: Path, images: dict[str, bytes]) -> None:
    records = []
    for name, (doc, page, (x0, y0, x1, y1)) in PLACES.items():
        img = Image.open(io.BytesIO(images[name]))
        records.append(PanelRecord(figure_id=f"fig-{name}", doc=doc, doc_sha256=f"sha-{doc}", page=page,
                                   x0=x0, y0=y0, x1=x1, y1=y1, width=img.width, height=img.height, image=images[name]))
    store = FigureStore.create(store_dir, model_id="test-model", dim=4)
    store.append(records, np.eye(4, dtype=np.float32), model_id="test-model", run_id="test")


def make_scan_dir(out: Path) -> list[ReportPair]:
    """OUT/store with the four panels and OUT/report.csv (+ html, errors, dismissed) with the three pairs."""
    images = panels()
    make_store(out / "store", images)
    pairs = sample_pairs(images)
    write_outputs(out, pairs, [], title="sample", summary={})
    return pairs
