"""Fabricate a large, valid figure store fast, for nightly-at-scale benchmarks.

    python benchmarks/fake_store.py SOURCE_STORE OUT_STORE --rows 200000 [--spread 1.0] [--seed 0]

Rows are copies of a real scanned store's non-noise panels (SOURCE_STORE, e.g. the store of a
`bench_scale.py` scan: same model id, dimension and dtype) with new document names and ids, and
vectors moved away from their source: v' = unit(v + spread * g / sqrt(d)), g standard normal, so
cos(v, v') ~ 1 / sqrt(1 + spread^2) (0.71 at the default 1.0). The fake panels therefore lie
where real panels lie (a nightly's queries meet them as k-NN candidates and the pixel check runs
on them, with copied pixel features) without being copies of tonight's panels. To keep the store
small and fast to write, the pixel features come from only `--pool` source panels (zstd then
stores each once per file) and the `image` column is null (as `keep_images=False` stores it), so
its bytes per panel are not a real store's: measure those on a real scan (`bench_scale.py`).
Eight panels per fake document, STORE_FILE_ROWS rows per file as a real ingest writes them, and
the FAISS index built at the end (`sync_index`), as the store would hold after earlier nights.
Prints one JSON line: rows, files, bytes, seconds to write and to build the index.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from index.faiss_index import sync_index
from index.store import PIXELS_COLUMN, FigureStore, noise_mask
from jobs.staging import STORE_FILE_ROWS
from scanner.records import FIGURES_SCHEMA

PANELS_PER_DOC = 8
RUN_ID = "fake-old"


def fabricate(source: Path, out: Path, rows: int, *, spread: float = 1.0, seed: int = 0,
              file_rows: int = STORE_FILE_ROWS, pool: int = 16) -> FigureStore:
    """Write a store of `rows` fabricated panels at `out` from the panels of the store at `source`."""
    src = FigureStore.open(source)
    table = src.read_table(FIGURES_SCHEMA.names + [PIXELS_COLUMN, "row_id"])
    keep = ~noise_mask(table.column("flags").to_pylist())
    table = table.filter(pa.array(keep))
    _, vectors = src.read_vectors(include_noise=False)
    if not table.num_rows:
        raise SystemExit(f"{source} has no non-noise panels to copy")
    store = FigureStore.create(out, model_id=src.model_id, dim=src.dim, dtype=src.dtype)
    rng = np.random.default_rng(seed)
    for start in range(0, rows, file_rows):
        n = min(file_rows, rows - start)
        pick = rng.integers(0, table.num_rows, n)
        part = table.take(pa.array(pick))
        ids = np.arange(start, start + n)
        docs = [f"old/{i // PANELS_PER_DOC:07d}.pdf" for i in ids.tolist()]
        part = part.set_column(part.schema.get_field_index("figure_id"), "figure_id",
                               pa.array([f"fake-{i:09d}" for i in ids.tolist()], pa.string()))
        part = part.set_column(part.schema.get_field_index("doc"), "doc", pa.array(docs, pa.string()))
        part = part.set_column(part.schema.get_field_index("doc_sha256"), "doc_sha256",
                               pa.array([hashlib.sha256(d.encode()).hexdigest() for d in docs], pa.string()))
        part = part.set_column(part.schema.get_field_index("parent_id"), "parent_id", pa.nulls(n, pa.string()))
        pixels = table.column(PIXELS_COLUMN).take(pa.array(pick % min(pool, table.num_rows)))
        noise = rng.standard_normal((n, src.dim)).astype(np.float32) * (spread / np.sqrt(src.dim))
        store.append(part.select(FIGURES_SCHEMA.names), vectors[pick] + noise, model_id=src.model_id,
                     run_id=RUN_ID, pixels=pixels, keep_images=False)
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", type=int, default=16, help="source panels whose pixel features are copied")
    args = parser.parse_args()
    started = time.monotonic()
    store = fabricate(args.source, args.out, args.rows, spread=args.spread, seed=args.seed, pool=args.pool)
    written = time.monotonic() - started
    sync_index(store)
    indexed = time.monotonic() - started - written
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(json.dumps({"rows": store.num_rows, "files": len(store.files), "bytes": size,
                      "write_s": round(written, 1), "index_s": round(indexed, 1),
                      "index": FigureStore.open(args.out).manifest.get("index")}))


if __name__ == "__main__":
    main()
