"""Memory of a scan's per-candidate results in the driver: Python objects against rows of a structured array.

    python benchmarks/bench_pair_results.py [--pairs 358620]

Makes `--pairs` pixel-check placements (`embedder.verify.Alignment`) and pose-check poses
(`embedder.pose.Pose`) the way the driver receives them — unpickled a task's worth at a time (96 and
512 pairs), as `ray.get` does — once as objects, once packed into rows (`pack_alignments`,
`pack_poses`), and prints what each holds (`tracemalloc`, which numpy reports to too), in MB and bytes a pair.
"""
from __future__ import annotations

import argparse
import json
import pickle
import tracemalloc
from collections.abc import Callable

import numpy as np

from embedder.pose import Pose, pack_poses
from embedder.verify import Alignment, pack_alignments


def received(make: Callable[[int], object], n: int, task: int, pack: Callable[[list], np.ndarray] | None) -> list:
    """`n` results made by `make(i)`, unpickled `task` at a time; packed per task when `pack` is given."""
    out: list = []
    for start in range(0, n, task):
        part = pickle.loads(pickle.dumps([make(i) for i in range(start, min(n, start + task))]))
        if pack is None:
            out += part
        else:
            out.append(pack(part))
    return out


def held_mb(build: Callable[[], object]) -> float:
    """MB that what `build()` returns holds once built."""
    tracemalloc.start()
    kept = build()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return held / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=358_620)
    n = parser.parse_args().pairs

    def alignment(i: int) -> Alignment:
        return Alignment(0.5 + i * 1e-7, 0.3 + i * 1e-7, "rot90", 3.0 + i * 1e-6, 0.8, True)

    def pose(i: int) -> Pose:
        return Pose(12, 40, 1.1 + i * 1e-7, 3.0, False, 0.5, 0.6, 0.7 + i * 1e-8, 0.3, (0.1, 0.2, 0.3, 0.4),
                    (0.1, 0.2, 0.3, 0.4 + i * 1e-8))

    out: dict[str, object] = {"pairs": n}
    for name, make, task, pack in (("alignment", alignment, 96, pack_alignments), ("pose", pose, 512, pack_poses)):
        objects = held_mb(lambda: received(make, n, task, None))  # noqa: B023 (called at once)
        rows = held_mb(lambda: np.concatenate(received(make, n, task, pack)))  # noqa: B023
        out[name] = {"objects_mb": round(objects, 1), "rows_mb": round(rows, 1),
                     "objects_bytes_a_pair": round(objects * 2**20 / n), "rows_bytes_a_pair": round(rows * 2**20 / n)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
