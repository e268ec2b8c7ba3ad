"""What one night costs against a large store: a nightly run of new papers, time per stage and peak memory.

    python benchmarks/fake_store.py SOURCE_STORE STORE --rows 200000      # once: the large old store
    python benchmarks/bench_nightly.py INCOMING STORE [--date 2026-11-26] [--copy] [--threshold T]

Runs `jobs.nightly.run_nightly` on INCOMING (e.g. `bench_scale.py`'s corpus of 100 papers, so
the same papers' scan alone is the comparison) at `--threshold` (default 0) on a local Ray, and prints one
JSON line: the store's rows before, the run's seconds per stage, candidates, peak RSS of the
driver (VmHWM) and of the Ray workers (sampled, as `bench_scale.py` does). `--copy` runs on a
copy of STORE (hard links for the immutable Parquet files), so the large store can be reused.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from benchmarks.bench_scale import WorkerSampler, _status_kb
from index.store import FigureStore
from jobs.ingest import has_store


def copy_store(src: Path, dst: Path) -> None:
    """A writable copy of a store: store files hard-linked (they are never rewritten), the rest copied."""
    if dst.exists():
        shutil.rmtree(dst)

    def link_or_copy(a: str, b: str) -> None:
        if a.endswith(".parquet"):
            os.link(a, b)
        else:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link_or_copy)


def main() -> None:
    from jobs.match import MatchOptions
    from jobs.nightly import run_nightly
    from jobs.options import RunOptions

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("incoming", type=Path)
    parser.add_argument("store", type=Path)
    parser.add_argument("--date", default="2026-11-26")
    parser.add_argument("--copy", action="store_true", help="run on a copy of STORE (STORE-night)")
    parser.add_argument("--threshold", type=float, default=0.0, help="report threshold (0: every candidate reported)")
    args = parser.parse_args()
    store_dir = args.store
    if args.copy:
        store_dir = args.store.with_name(args.store.name + "-night")
        copy_store(args.store, store_dir)
    before = FigureStore.open(store_dir).num_rows if has_store(store_dir) else 0  # an empty store: the papers alone
    sampler = WorkerSampler()
    sampler.start()
    started = time.monotonic()
    summary = run_nightly(args.incoming, store_dir, args.date,
                          RunOptions(match=MatchOptions(threshold=args.threshold), progress=False))
    wall = time.monotonic() - started
    sampler.stop.set()
    sampler.join()
    print(json.dumps({
        "store_rows_before": before, "new_documents": summary.new_documents, "panels": summary.panels,
        "candidates": summary.candidates, "pairs": summary.pairs, "seconds": summary.seconds, "wall": wall,
        "driver_peak_mb": _status_kb("/proc/self/status").get("VmHWM", 0) / 1024,
        "worker_peak_mb": sampler.peak_one_kb / 1024, "workers_sum_peak_mb": sampler.peak_sum_kb / 1024,
    }), flush=True)


if __name__ == "__main__":
    main()
