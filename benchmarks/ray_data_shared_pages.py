"""Does Ray Data alone make its driver map object-store pages? The scan's extraction stage, without the scan.

    python benchmarks/ray_data_shared_pages.py DOCUMENTS [MB]

Runs the shape of `jobs.pipeline.run_extract_and_embed` on made-up data: `ray.data.from_items` of
DOCUMENTS paths (one block each), a task a document returning MB megabytes (the extracted images),
an actor pool of one returning a one-row table a batch of 8 (`jobs.staging.stage_batch`'s row count),
and `iter_batches` in the driver, which reads nothing else. Prints the driver's private memory and the
object-store pages it has mapped (`RssAnon`, `RssShmem`, MB) after `from_items` and at the end.
Session 21, the probe this was made from: 1,000 documents of 1 MB left 5 MB mapped, 4,000 left 29 MB (the scan: 15 MB at 1,000
papers, 316 MB at 5,000), so the growth is Ray Data's own traffic, not the scan's code.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pyarrow as pa
import ray
from ray.data import ActorPoolStrategy


def driver_memory_mb() -> dict[str, int]:
    """This process's private memory and mapped object-store pages, MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        fields = dict(line.split(":", 1) for line in fh)
    return {k: int(fields[k].split()[0]) // 1024 for k in ("RssAnon", "RssShmem")}


class OneRow:
    """What the embedding actors return to the driver: a batch's row count."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        return pa.table({"rows": pa.array([batch.num_rows], pa.int64())})


def main() -> None:
    documents, megabytes = int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)

    def extracted(batch: pa.Table) -> pa.Table:
        return pa.table({"blob": pa.array([np.random.bytes(int(megabytes * 1e6))], pa.binary())})

    ds = ray.data.from_items([{"path": f"doc_{i:06d}.pdf"} for i in range(documents)], override_num_blocks=documents)
    print("after from_items", driver_memory_mb(), flush=True)
    ds = ds.map_batches(extracted, batch_size=1, batch_format="pyarrow", max_calls=50)
    ds = ds.map_batches(OneRow, batch_size=8, batch_format="pyarrow", compute=ActorPoolStrategy(size=1))
    started = time.monotonic()
    for _ in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        pass
    print(f"end: {documents} documents of {megabytes} MB in {time.monotonic() - started:.0f} s", driver_memory_mb())


if __name__ == "__main__":
    main()
