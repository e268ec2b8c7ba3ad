"""The keypoint-candidate stage alone on a scanned store, this checkout against another: time, index build, pairs.

    python benchmarks/bench_keypoint_index.py STORE --old CHECKOUT [--runs 2] [--out DIR] [--probe 2000]

Runs `index.keypoints.keypoint_pairs` over the store's non-noise panels as a scan does (its
`keypoint candidates` stage, with the shipped `KeypointOptions`), once per variant and run,
each in a fresh Python process whose PYTHONPATH is that checkout, the order of the variants
alternating from run to run (the first scan of a store pays for a cold page cache). Prints per
variant the median wall and CPU seconds of the stage and of building its descriptor index
(training and adding; a sharded one's writing too), how much the private memory grew while it was
built (`index_mb`: a rough figure, since freed pages are reused; a sharded index keeps its
quantizer and the pages its last shard freed, its shards being on disk) and the run's
peak resident size (`peak_mb`; with `--probe`, the probe's exact index counts in it), the candidate pairs it gives, how many of the old variant's pairs the new
one keeps (and the other way round), and the index's recall: of `--probe` indexed descriptors,
the share of their 7 nearest other descriptors (an exact search's) that the index finds among its
own 7 (not timed). CHECKOUT must have `index.keypoints.DescriptorSpool` (5d7c52a or later).
A store of a generated corpus (`bench_scale.py`) or of real papers.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def recall_of_nearest(index: Any, own: Any, probe: int) -> float:
    """Share of `probe` indexed descriptors' 7 nearest others (exact) that `index` finds among its own 7."""
    import faiss

    rows = np.sort(np.random.default_rng(1).permutation(own.total)[:probe])
    queries = own.own_rows(rows)
    exact = faiss.IndexBinaryFlat(8 * queries.shape[1])
    for block in own.own_blocks():
        exact.add(block)
    _, truth = exact.search(queries, 8)
    _, found = index.search(queries, 8)
    # each query's own id is taken out, not the first hit: a duplicate descriptor ties with it at distance 0
    return float(np.mean([len((set(t) - {q}) & (set(f) - {q})) / max(1, len(set(t) - {q}))
                          for q, t, f in zip(rows.tolist(), truth.tolist(), found.tolist())]))


def private_mb() -> float:
    """This process's private resident memory (RssAnon), MB: what the index holds once built is its growth."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(store_path: Path, out: Path, probe: int) -> None:
    """One run of the stage in this process (this process's PYTHONPATH decides the code)."""
    import index.keypoints as kp
    from index.candidates import RecordKeys
    from index.store import FigureStore
    from jobs.pixel_check import read_greys

    store = FigureStore.open(store_path)
    keys = RecordKeys.from_table(store.read_keys())
    vectors = store.dense_vectors()
    ids = keys.row_id[~keys.noise]
    build: dict[str, float] = {}
    plain_index = kp.DescriptorSpool.index

    def timed_index(self: Any, *args: Any) -> Any:  # the index's training and adding, timed apart
        wall, cpu, held = time.perf_counter(), time.process_time(), private_mb()
        index = plain_index(self, *args)
        build.update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu, descriptors=float(self.total),
                     mb=private_mb() - held)
        wall, cpu = time.perf_counter(), time.process_time()
        if probe:
            build["recall"] = recall_of_nearest(index, self, probe)
        build.update(probe_wall=time.perf_counter() - wall, probe_cpu=time.process_time() - cpu)
        return index

    kp.DescriptorSpool.index = timed_index  # type: ignore[method-assign]
    wall, cpu = time.perf_counter(), time.process_time()
    pairs = kp.keypoint_pairs(ids, lambda part: read_greys(store, part), vectors)
    result = {"panels": len(ids), "pairs": len(pairs), "wall": time.perf_counter() - wall - build.get("probe_wall", 0.0),
              "cpu": time.process_time() - cpu - build.get("probe_cpu", 0.0), "index_wall": build.get("wall", 0.0),
              "index_cpu": build.get("cpu", 0.0), "descriptors": int(build.get("descriptors", 0)),
              "recall_at_7": build.get("recall"), "index_mb": build.get("mb", 0.0),
              "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    np.savez(out, a=pairs.a, b=pairs.b)
    print("RESULT " + json.dumps(result))


def run(code: Path, store: Path, out: Path, probe: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(store.resolve()), "--child",
                           str(out.resolve()), "--probe", str(probe)], env={**os.environ, "PYTHONPATH": str(code)},
                          cwd=code, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"the keypoint stage with {code} failed ({proc.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


def pair_set(path: Path) -> set[tuple[int, int]]:
    with np.load(path) as z:
        return set(zip(z["a"].tolist(), z["b"].tolist()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path)
    parser.add_argument("--old", type=Path, help="checkout of the code to compare with")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--probe", type=int, default=2000, help="descriptors whose nearest neighbours measure recall")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "keypoint-index")
    parser.add_argument("--child", type=Path, metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.store, args.child, args.probe)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    variants = {"new": REPO, **({"old": args.old.resolve()} if args.old else {})}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for n in range(args.runs):
        for name, code in sorted(variants.items(), reverse=n % 2 == 0):  # old first, then new first, ...
            runs[name].append(run(code, args.store, args.out / f"{name}.npz", args.probe))
            print(f"run {n + 1} {name}: {json.dumps(runs[name][-1])}", file=sys.stderr, flush=True)
    summary: dict[str, Any] = {}
    medians = {name: {k: statistics.median(r[k] for r in results) for k in ("wall", "cpu", "index_wall", "index_cpu")}
               for name, results in runs.items()}
    for name, results in runs.items():
        summary[name] = {**{k: round(v, 1) for k, v in medians[name].items()}, "panels": results[0]["panels"],
                         "descriptors": results[0]["descriptors"], "pairs": results[0]["pairs"],
                         "recall_at_7": results[0]["recall_at_7"],
                         "index_mb": round(statistics.median(r.get("index_mb", 0.0) for r in results), 1),
                         "peak_mb": round(statistics.median(r.get("peak_mb", 0.0) for r in results), 1)}
    if "old" in variants:
        old, new = pair_set(args.out / "old.npz"), pair_set(args.out / "new.npz")
        summary["old_pairs_kept"] = round(len(old & new) / max(1, len(old)), 4)
        summary["new_pairs_in_old"] = round(len(old & new) / max(1, len(new)), 4)
        summary["wall_new_over_old"] = round(medians["new"]["wall"] / medians["old"]["wall"], 3)
        summary["index_wall_new_over_old"] = round(medians["new"]["index_wall"] / max(1e-9, medians["old"]["index_wall"]), 3)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
