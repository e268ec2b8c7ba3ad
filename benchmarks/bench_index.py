"""Scale benchmark of the index stage: store, FAISS build and whole-store self-join.

Builds a figure store of N synthetic unit vectors (default 1,000,000 x 256) that
look like learned embeddings rather than uniform noise: points of a Gaussian
mixture (N/500 clusters) in a 32-d latent space, mapped linearly to `dim`
dimensions plus isotropic noise, so the intrinsic dimension is low and
neighbourhoods are structured. A fraction of rows (`--dup-frac`, default 1 %)
are planted near-duplicates of another row (cosine 0.90-0.997: "the same panel,
altered"). Then it runs exactly what a scan runs:

1. write the store in ingest batches (Parquet, one file per batch);
2. `sync_index`: choose the index by size, train on a sample read from the
   store, add every file, tune nprobe for recall@10 >= 0.97 on 1000 stored vectors;
3. `self_join`: every vector's k nearest neighbours above `--min-sim`, one store
   file at a time, trivial pairs dropped;
4. measure recall@10 of the index against exact search on `--recall-queries`
   sampled queries (self excluded from both lists), the share of planted
   duplicates among the pairs, and peak memory (getrusage ru_maxrss).

Usage::

    .venv/bin/python benchmarks/bench_index.py --n 1000000 --dim 256
    .venv/bin/python benchmarks/bench_index.py --n 20000 --flat-max 5000   # quick

Prints one JSON object; the targets are build + search within 600 s and
recall@10 >= 0.95.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.candidates import RecordKeys, self_join, union_pairs  # noqa: E402
from index.faiss_index import FLAT_MAX, exact_knn_blocks, recall_at_k, set_threads, sync_index  # noqa: E402
from index.store import FigureStore  # noqa: E402
from scanner.records import FIGURES_SCHEMA  # noqa: E402

logger = logging.getLogger("bench_index")


def synthetic_vectors(n: int, dim: int, *, dup_frac: float = 0.01, latent: int = 32, noise: float = 0.3,
                      spread: float = 0.6,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(vectors (n, dim) float32 unit rows, planted (m, 2) int64 pairs source<copy)."""
    rng = np.random.default_rng(seed)
    clusters = max(10, n // 500)
    centres = rng.normal(size=(clusters, latent)).astype(np.float32)
    proj = (rng.normal(size=(latent, dim)) / np.sqrt(latent)).astype(np.float32)
    x = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        e = min(n, s + step)
        z = centres[rng.integers(0, clusters, e - s)] + spread * rng.normal(size=(e - s, latent)).astype(np.float32)
        x[s:e] = z @ proj + noise * rng.normal(size=(e - s, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    m = int(n * dup_frac)
    perm = rng.permutation(n)
    src, dst = perm[:m], perm[m:2 * m]
    eps = rng.uniform(0.005, 0.03, size=(m, 1)).astype(np.float32)
    for s in range(0, m, step):
        sl = slice(s, min(m, s + step))
        y = x[src[sl]] + eps[sl] * rng.normal(size=(len(src[sl]), dim)).astype(np.float32)
        x[dst[sl]] = y / np.linalg.norm(y, axis=1, keepdims=True)
    planted = np.sort(np.stack([src, dst], axis=1), axis=1).astype(np.int64)
    return x, planted


def synthetic_figures(start: int, n: int) -> pa.Table:
    """Metadata of rows start..start+n-1: 20 pages per document, one picture per page, no pixels."""
    i = np.arange(start, start + n)
    docs = [f"doc{d:07d}.pdf" for d in (i // 20).tolist()]
    cols = {
        "figure_id": pa.array([f"fig{k:08d}" for k in i.tolist()]),
        "doc": pa.array(docs),
        "doc_sha256": pa.array(docs),
        "page": pa.array((i % 20 + 1).astype(np.int32)),
        "x0": pa.array(np.full(n, 72, np.float32)), "y0": pa.array(np.full(n, 90, np.float32)),
        "x1": pa.array(np.full(n, 300, np.float32)), "y1": pa.array(np.full(n, 280, np.float32)),
        "width": pa.array(np.full(n, 256, np.int32)), "height": pa.array(np.full(n, 224, np.int32)),
        "image": pa.nulls(n, pa.binary()),
        "parent_id": pa.nulls(n, pa.string()),
        "flags": pa.array([[]] * n, type=pa.list_(pa.string())),
    }
    return pa.table(cols, schema=FIGURES_SCHEMA)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # Linux: KiB


def run(args: argparse.Namespace) -> dict[str, Any]:
    set_threads(args.threads)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-index-"))
    store_dir = root / "store"
    if store_dir.exists():
        shutil.rmtree(store_dir)
    result: dict[str, Any] = {"n": args.n, "dim": args.dim, "latent": args.latent, "spread": args.spread,
                              "noise": args.noise,
                              "k": args.k, "min_sim": args.min_sim,
                              "threads": args.threads or len(os.sched_getaffinity(0)), "dtype": args.dtype}
    try:
        t = time.perf_counter()
        x, planted = synthetic_vectors(args.n, args.dim, dup_frac=args.dup_frac, latent=args.latent,
                                       noise=args.noise, spread=args.spread, seed=args.seed)
        result["generate_s"] = round(time.perf_counter() - t, 1)

        t = time.perf_counter()
        store = FigureStore.create(store_dir, model_id="synthetic", dim=args.dim, dtype=args.dtype)
        for s in range(0, args.n, args.batch):
            e = min(args.n, s + args.batch)
            store.append(synthetic_figures(s, e - s), x[s:e], model_id="synthetic", run_id=f"batch-{s // args.batch}")
        result["store_write_s"] = round(time.perf_counter() - t, 1)
        result["store_bytes"] = sum(p.stat().st_size for p in (store_dir / "figures").glob("*.parquet"))
        # keep a sample of queries for the recall measurement, drop the rest of the vectors
        rng = np.random.default_rng(args.seed + 1)
        qpos = np.sort(rng.choice(args.n, min(args.recall_queries, args.n), replace=False))
        del x

        t_build = time.perf_counter()
        store = FigureStore.open(store_dir)
        index = sync_index(store, flat_max=args.flat_max, tune_min_sim=args.tune_min_sim, seed=args.seed)
        result["build_s"] = round(time.perf_counter() - t_build, 1)
        result["index"] = {**index.spec.to_dict(), "train_s": index.info.get("train_seconds"),
                           "add_s": index.info.get("last_add_seconds"), "tuning": index.info.get("tuning")}

        t = time.perf_counter()
        keys = RecordKeys.from_table(store.read_keys())
        parts = []
        for _, ids, vecs in store.iter_vectors(include_noise=False):
            parts.append(self_join(index, ids, vecs, keys, k=args.k, min_sim=args.min_sim, batch_size=args.query_batch))
        pairs = union_pairs(*parts)
        result["self_join_s"] = round(time.perf_counter() - t, 1)
        result["build_plus_search_s"] = round(result["build_s"] + result["self_join_s"], 1)
        result["pairs"] = len(pairs)

        found = pairs.a * args.n + pairs.b
        result["planted_pairs"] = len(planted)
        result["planted_found"] = round(float(np.isin(planted[:, 0] * args.n + planted[:, 1], found).mean()), 4) if len(planted) else None

        # recall@k of the index against exact search, queries = sampled stored vectors
        t = time.perf_counter()
        qv = _rows(store, qpos)
        _, approx = index.search(qv, args.k + 1)
        blocks = ((ids, vecs) for _, ids, vecs in store.iter_vectors(include_noise=False))
        _, exact = exact_knn_blocks(qv, blocks, args.k + 1)
        result[f"recall_at_{args.k}"] = round(recall_at_k(_without(approx, qpos, args.k), _without(exact, qpos, args.k)), 4)
        result["recall_queries"] = len(qpos)
        result["recall_eval_s"] = round(time.perf_counter() - t, 1)
        result["peak_rss_gb"] = round(peak_rss_gb(), 2)
        result["ok"] = bool(result["build_plus_search_s"] <= 600 and result[f"recall_at_{args.k}"] >= 0.95)
        return result
    finally:
        if not args.keep and not args.out:
            shutil.rmtree(root, ignore_errors=True)


def _rows(store: FigureStore, rows: np.ndarray) -> np.ndarray:
    """Vectors of the given row ids, reading one store file at a time."""
    out = np.zeros((len(rows), store.dim), np.float32)
    for _, ids, vecs in store.iter_vectors():
        hit = np.isin(rows, ids)
        if hit.any():
            out[hit] = vecs[np.searchsorted(ids, rows[hit])]
    return out


def _without(I: np.ndarray, qpos: np.ndarray, k: int) -> np.ndarray:
    """Top-k ids of each row without the query's own id."""
    out = np.full((len(I), k), -1, dtype=np.int64)
    for r, (row, q) in enumerate(zip(I, qpos)):
        rest = row[row != q][:k]
        out[r, :len(rest)] = rest
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="number of vectors")
    p.add_argument("--dim", type=int, default=256, help="vector dimension (the model's)")
    p.add_argument("--k", type=int, default=10, help="neighbours per query")
    p.add_argument("--min-sim", type=float, default=0.85, help="cosine floor of a candidate pair")
    p.add_argument("--dup-frac", type=float, default=0.01, help="share of rows that are planted near-duplicates")
    p.add_argument("--latent", type=int, default=32, help="intrinsic dimension of the synthetic vectors")
    p.add_argument("--spread", type=float, default=0.6, help="within-cluster spread in the latent space")
    p.add_argument("--noise", type=float, default=0.3, help="isotropic noise added in the full dimension")
    p.add_argument("--batch", type=int, default=100_000, help="rows per store file (ingest batch)")
    p.add_argument("--query-batch", type=int, default=16_384, help="queries per FAISS search call")
    p.add_argument("--recall-queries", type=int, default=2000, help="queries checked against exact search")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="stored vector dtype")
    p.add_argument("--flat-max", type=int, default=FLAT_MAX, help="largest store searched exactly")
    p.add_argument("--tune-min-sim", type=float, default=None,
                   help="tune nprobe for the recall of neighbours above this cosine (default: plain recall@k)")
    p.add_argument("--threads", type=int, default=None, help="FAISS threads (default: all CPUs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="keep the store here (default: a temporary folder, removed)")
    p.add_argument("--keep", action="store_true", help="keep the temporary store")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = run(parse_args(argv))
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
