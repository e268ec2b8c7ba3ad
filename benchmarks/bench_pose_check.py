"""The pose check over a scanned store's k-NN pairs, in panel-local order against the order the k-NN gives.

    python benchmarks/bench_pose_check.py STORE [--pairs N] [--runs 2] [--cpus 2]

Starts a local Ray of `--cpus` CPUs, takes the store's k-NN candidate pairs (`self_join`, k 10,
floor 0.3, as `bench_pixel_check.py --scan` does; the first `--pairs` of them in the k-NN's order)
and runs `jobs.pose_check.pose_check` on them as a scan does, with the pairs in panel-local order
(`local_order=True`, a scan's) and in the order given, `--runs` rounds alternating. Prints per order
the median wall seconds and pairs/s, the distinct panels a task of `POSE_TASK_PAIRS` pairs meets a
pair, and whether both orders gave the same poses.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_pixel_check import _scan_pairs, panels_per_pair  # noqa: E402

from index.store import FigureStore  # noqa: E402
from jobs.pixel_check import panel_local_order  # noqa: E402
from jobs.pose_check import POSE_TASK_PAIRS, pose_check  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path)
    parser.add_argument("--pairs", type=int, default=None, help="the first N k-NN pairs (default: all)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    a, b = _scan_pairs(args.store, "candidates")
    a, b = a[:args.pairs], b[:args.pairs]
    local = panel_local_order(a, b)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    seconds: dict[str, list[float]] = {"panel-local": [], "k-NN order": []}
    poses: dict[str, list[tuple[float, float, int]]] = {}
    try:
        for _ in range(args.runs):
            for name in seconds:
                started = time.perf_counter()
                found = pose_check(FigureStore.open(args.store), a, b, local_order=name == "panel-local")
                seconds[name].append(time.perf_counter() - started)
                poses[name] = list(zip(found["correlation"].tolist(), found["detail"].tolist(),
                                       found["inliers"].tolist()))
    finally:
        ray.shutdown()
    out: dict[str, object] = {"pairs": len(a), "runs": args.runs}
    for name, times in seconds.items():
        x, y = (a[local], b[local]) if name == "panel-local" else (a, b)
        out[name] = {"seconds_median": round(statistics.median(times), 1), "seconds": [round(t, 1) for t in times],
                     "pairs_per_s": round(len(a) / statistics.median(times), 1),
                     "panels_per_pair_in_a_task": round(panels_per_pair(x, y, POSE_TASK_PAIRS), 3)}
    out["speedup"] = round(statistics.median(seconds["k-NN order"]) / statistics.median(seconds["panel-local"]), 2)
    out["same_poses"] = poses["panel-local"] == poses["k-NN order"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
