"""How long `reusescan query` takes against a store of 200,000 panels.

Fabricates a valid store fast: `--real` generated panels (all generator kinds) extracted,
embedded with the shipped model and given their pixel-check features exactly as a scan
stores them, plus synthetic rows up to `--n` (vectors and metadata from
`bench_index.synthetic_vectors` / `synthetic_figures`, no pixels), written in the scan's
4,096-row store files and indexed with `sync_index` (an IVF index at this size). The
synthetic vectors lie away from the model's embeddings, so every query's candidates are
real panels the pixel check really aligns: the per-pair cost is the real one.

Then it times, `--repeats` times each, a query with a planted copy (an off-centre crop
of 80 % of each side, mirrored) of a stored panel:

* `cli`: `python -m jobs query Q --store STORE` as a subprocess (start-up, imports,
  model load, extraction, embedding, index load, search, head, pixel check, table);
* `warm`: `run_query` in this process with the model and index already loaded (what
  the review app does for a dropped file);

and checks that the planted source came first, with the mirror as its transform, and
whether its score reached the model's threshold (a crop of some kinds stays below it).

    .venv/bin/python benchmarks/bench_query.py --n 200000 --repeats 5 --out bench-out/query
    .venv/bin/python benchmarks/bench_query.py --n 200000 --repeats 5 --out bench-out/query --reuse  # again

Prints one JSON object (medians in seconds). What it does not fabricate: pixel features
of the synthetic rows; on a real store each candidate's store file (4,096 rows, about
86 MB of pixel features) is read for the pixel check, which the `warm` and `cli`
numbers here do not include beyond the real panels' one file.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_index import synthetic_figures, synthetic_vectors  # noqa: E402

from embedder.fusion import PixelFusion  # noqa: E402
from embedder.inference import Embedder  # noqa: E402
from embedder.verify import pixel_features  # noqa: E402
from index.faiss_index import sync_index  # noqa: E402
from index.store import FigureStore  # noqa: E402
from jobs.query import QueryOptions, load_index, run_query  # noqa: E402
from jobs.scoring import model_id_of  # noqa: E402
from jobs.staging import STORE_FILE_ROWS  # noqa: E402
from scanner.extract import extract_document  # noqa: E402
from training.synth import KINDS, generate  # noqa: E402


def real_image(i: int) -> Image.Image:
    """Generated panel number `i` (every kind in turn, sizes 160-300 px)."""
    rng = np.random.default_rng([i, 7])
    size = (int(rng.integers(160, 301)), int(rng.integers(160, 301)))
    return generate(KINDS[i % len(KINDS)], seed=5000 + i, size=size)


def planted_copy(img: Image.Image) -> Image.Image:
    """An off-centre crop keeping 80 % of each side, mirrored left-right."""
    w, h = img.size
    crop = img.crop((int(0.05 * w), int(0.15 * h), int(0.85 * w), int(0.95 * h)))
    return Image.fromarray(np.asarray(crop)[:, ::-1].copy())


def fabricate(store_dir: Path, corpus: Path, n: int, real: int, embedder: Embedder, seed: int) -> dict[str, float]:
    """Write the store (synthetic rows first, then the real panels) and index it; seconds per step."""
    seconds: dict[str, float] = {}
    model_id = model_id_of(None)
    t = time.perf_counter()
    corpus.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(real):
        name = f"real{i:04d}.png"
        real_image(i).save(corpus / name)
        records += extract_document(corpus / name, corpus).records
    images = [Image.open(io.BytesIO(r.image)).convert("RGB") for r in records]
    vectors = embedder.embed(images)
    fusion = PixelFusion.from_meta(embedder.meta)
    assert fusion is not None
    pixels = [pixel_features(im, fusion.align) for im in images]
    seconds["real panels"] = time.perf_counter() - t
    t = time.perf_counter()
    synthetic = n - len(records)
    x, _ = synthetic_vectors(synthetic, embedder.dim, dup_frac=0.0, seed=seed)
    store = FigureStore.create(store_dir, model_id=model_id, dim=embedder.dim)
    for s in range(0, synthetic, STORE_FILE_ROWS):
        e = min(synthetic, s + STORE_FILE_ROWS)
        store.append(synthetic_figures(s, e - s), x[s:e], model_id=model_id, run_id="synthetic")
    store.append(records, vectors, model_id=model_id, run_id="real", pixels=pixels)
    seconds["store"] = time.perf_counter() - t
    t = time.perf_counter()
    sync_index(store)
    seconds["index"] = time.perf_counter() - t
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="stored panels")
    parser.add_argument("--real", type=int, default=120, help="of which real generated panels")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--queries", type=int, default=3, help="distinct planted copies, cycled over the repeats")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="work folder (default: a temporary one, removed)")
    parser.add_argument("--reuse", action="store_true", help="query the store already in --out (same --n/--real)")
    args = parser.parse_args()
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-query-"))
    try:
        embedder = Embedder.load()
        store_dir = root / "store"
        if args.reuse and (store_dir / "manifest.json").exists():
            build: dict[str, float] = {}
        else:
            if store_dir.exists():
                shutil.rmtree(store_dir)
            build = fabricate(store_dir, root / "corpus", args.n, args.real, embedder, args.seed)
        store = FigureStore.open(store_dir)
        picks = [(i * 37 + 11) % args.real for i in range(args.queries)]
        queries = []
        for i in picks:
            q = root / f"query-{i}.png"
            planted_copy(real_image(i)).save(q)
            queries.append((q, f"real{i:04d}.png"))
        index = load_index(store, include_noise=False)
        warm, cli, found, reported, candidates = [], [], 0, 0, []
        per_query: dict[str, Any] = {}
        for r in range(args.repeats):
            q, source = queries[r % len(queries)]
            t = time.perf_counter()
            result = run_query(q, store_dir, QueryOptions(), embedder=embedder, index_cache=lambda _s: index)
            warm.append(time.perf_counter() - t)
            best = result.candidates[0] if result.candidates else None
            first = best is not None and best.row["doc"] == source and best.alignment is not None \
                and best.alignment.transform == "flip_h"
            found += int(first)
            reported += int(first and best is not None and best.score >= result.threshold)
            per_query[source] = {"first": first, "score": round(best.score, 4) if best else None}
            candidates.append(len(result.candidates))
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "jobs", "query", str(q), "--store", str(store_dir)],
                                  capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
                                  env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
            cli.append(time.perf_counter() - t)
            if proc.returncode != 0:
                raise SystemExit(f"query failed: {proc.stderr[-2000:]}")
        out: dict[str, Any] = {
            "n": store.num_rows, "real": args.real, "index": store.manifest["index"]["factory"],
            "build_s": {k: round(v, 1) for k, v in build.items()},
            "store_mb": round(sum(p.stat().st_size for p in (store_dir / "figures").glob("*.parquet")) / 1e6, 1),
            "repeats": args.repeats, "planted_found_first": f"{found}/{args.repeats}",
            "planted_first_and_above_threshold": f"{reported}/{args.repeats}", "per_query": per_query,
            "candidates_median": statistics.median(candidates),
            "warm_median_s": round(statistics.median(warm), 2), "warm_s": [round(v, 2) for v in warm],
            "cli_median_s": round(statistics.median(cli), 2), "cli_s": [round(v, 2) for v in cli],
            "last_warm_stages_s": {k: round(v, 2) for k, v in result.seconds.items()},
            "load_average": os.getloadavg()[0],
        }
        print(json.dumps(out, indent=1))
    finally:
        if not args.out:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
