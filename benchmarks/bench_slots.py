"""Extraction + embedding wall time under different Ray CPU slots per extraction task and per embedding actor.

    python benchmarks/bench_slots.py PAPERS/ [--docs 106] [--runs 2] [--slots 1,1 0.5,0.5 1,0]

Runs `jobs.pipeline.run_extract_and_embed` (the scan's first stage, Ray Data on a local Ray of
`--cpus` CPUs, the shipped model) over the first `--docs` inputs of PAPERS once per variant and
round, rounds interleaved; a variant `E,A` gives each extraction task E CPU slots and each
embedding actor A (`PipelineOptions.cpus_per_extract`, `cpus_per_actor`). Each run is a fresh
Python process with a fresh Ray, so Ray's start and the model's load are in every time alike.
Prints per variant the median wall seconds, the rows produced (equal for all) and the ratio to
the first variant. How `PipelineOptions`' defaults were chosen: docs/benchmarks.md#cpu-slots-of-extraction-and-embedding.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(folder: Path, docs: int, cpus: int, extract: float, actor: float) -> None:
    """One run in this process: prints {"rows", "wall_s"} as JSON."""
    sys.path.insert(0, str(REPO))
    from jobs.pipeline import PipelineOptions, run_extract_and_embed
    from jobs.ray_runtime import ray_session
    from scanner.discover import find_inputs

    paths = sorted(find_inputs(folder))[:docs]
    rows = 0
    with ray_session(num_cpus=cpus, progress=False):
        started = time.monotonic()
        for batch in run_extract_and_embed(paths, folder, PipelineOptions(cpus_per_extract=extract,
                                                                          cpus_per_actor=actor)):
            rows += batch.num_rows
        wall = time.monotonic() - started
    print(json.dumps({"rows": rows, "wall_s": round(wall, 2)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--docs", type=int, default=106)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--slots", nargs="+", default=["1,1", "0.5,0.5"], help="E,A: CPU slots per extraction task, per actor")
    parser.add_argument("--child", nargs=2, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.folder, args.docs, args.cpus, *args.child)
        return
    walls: dict[str, list[float]] = {v: [] for v in args.slots}
    rows: dict[str, set[int]] = {v: set() for v in args.slots}
    for r in range(args.runs):
        for variant in args.slots:
            extract, actor = variant.split(",")
            out = subprocess.run([sys.executable, __file__, str(args.folder), "--docs", str(args.docs), "--cpus",
                                  str(args.cpus), "--child", extract, actor], capture_output=True, text=True, check=True)
            found = json.loads(out.stdout.strip().splitlines()[-1])
            walls[variant].append(found["wall_s"])
            rows[variant].add(found["rows"])
            print(f"round {r + 1}: slots {variant}: {found['wall_s']} s, {found['rows']} rows", file=sys.stderr)
    first = statistics.median(walls[args.slots[0]])
    print(json.dumps({v: {"median_wall_s": statistics.median(w), "walls": w, "rows": sorted(rows[v]),
                          "over_first": round(statistics.median(w) / first, 3)} for v, w in walls.items()}, indent=2))


if __name__ == "__main__":
    main()
