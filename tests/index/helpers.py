"""Fixtures for the index tests: small record tables and clustered unit vectors, made here."""
from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from scanner.records import FIGURES_SCHEMA


def png(seed: int, size: int = 24) -> bytes:
    """A small random RGB PNG."""
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(size, size + 8, 3), dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


def figures_table(rows: Sequence[dict], *, images: bool = True) -> pa.Table:
    """A FIGURES_SCHEMA table; each row dict may set any column, the rest get defaults."""
    cols: dict[str, list] = {name: [] for name in FIGURES_SCHEMA.names}
    for i, r in enumerate(rows):
        doc = r.get("doc", f"doc{i}.pdf")
        page = r.get("page", 1)
        bbox = r.get("bbox", (0.0, 0.0, 100.0, 100.0))
        values = {
            "figure_id": r.get("figure_id", f"{doc}:{page}:{i}"),
            "doc": doc,
            "doc_sha256": r.get("doc_sha256", f"sha-{doc}"),
            "page": page,
            "x0": bbox[0], "y0": bbox[1], "x1": bbox[2], "y1": bbox[3],
            "width": 32, "height": 24,
            "image": png(i) if images else None,
            "parent_id": r.get("parent_id"),
            "flags": list(r.get("flags", ())),
        }
        for name in FIGURES_SCHEMA.names:
            cols[name].append(values[name])
    return pa.Table.from_pydict(cols, schema=FIGURES_SCHEMA)


def simple_table(n: int, *, start: int = 0, images: bool = False) -> pa.Table:
    """`n` unrelated records, one per document."""
    return figures_table([{"doc": f"d{start + i}.pdf"} for i in range(n)], images=images)


def clustered(n: int, dim: int, *, clusters: int = 50, latent: int = 12, seed: int = 0) -> np.ndarray:
    """Unit vectors with low intrinsic dimension and cluster structure (like learned embeddings)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, latent))
    proj = rng.normal(size=(latent, dim)) / np.sqrt(latent)
    z = centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, latent))
    x = (z @ proj + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def forget_file_sizes(store_root: Path) -> None:
    """Drop the committed file sizes from a store's manifest, as stores written before they were kept.

    For tests that rewrite a store file to look like an older version's: the size check would
    otherwise (rightly) call the rewritten file damaged.
    """
    path = store_root / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        entry.pop("bytes", None)
    path.write_text(json.dumps(manifest), encoding="utf-8")
