"""Does Ray Data make its driver map object-store pages? The scan's extraction stage, without the scan.

    python benchmarks/ray_data_shared_pages.py DOCUMENTS [MB] [--read-every-block]

Runs the shape of `jobs.pipeline.run_extract_and_embed` on made-up data: `ray.data.from_items` of
DOCUMENTS paths (one block each), a task a document returning MB megabytes (the extracted images),
an actor pool of one returning a batch of 8 as 8 rows of nulls (`jobs.staging.stage_batch`'s row
count), and the driver taking the blocks with `jobs.pipeline.output_tables` (which counts blocks of
nulls from Ray's metadata) or, with --read-every-block, `iter_batches` (which reads every block, as
the scan did until session 22). Prints the driver's private memory and the object-store pages it has
mapped (`RssAnon`, `RssShmem`, MB) after `from_items` and at the end.
Session 21, reading every block: 1,000 documents of 1 MB left 5 MB mapped, 4,000 left 29 MB (the
scan: 15 MB at 1,000 papers, 316 MB at 5,000). Session 22, 2,000 documents: 1 MB with
`output_tables`, 15 MB with --read-every-block (the scan at 5,000 papers: 3 MB).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray
from ray.data import ActorPoolStrategy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_scale import _status_kb  # noqa: E402
from jobs.pipeline import NULL_ROWS, output_tables  # noqa: E402


def driver_memory_mb() -> dict[str, int]:
    """This process's private memory and mapped object-store pages, MB."""
    status = _status_kb("/proc/self/status")
    return {k: status.get(k, 0) // 1024 for k in ("RssAnon", "RssShmem")}


class RowCount:
    """What the embedding actors return to the driver: a batch's row count, as rows of nulls."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        return pa.table({NULL_ROWS: pa.nulls(batch.num_rows)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("documents", type=int)
    parser.add_argument("megabytes", type=float, nargs="?", default=1.0, help="of made-up images a document")
    parser.add_argument("--read-every-block", action="store_true", help="iter_batches, not output_tables")
    args = parser.parse_args()
    documents, megabytes, read_every_block = args.documents, args.megabytes, args.read_every_block
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)

    def extracted(batch: pa.Table) -> pa.Table:
        return pa.table({"blob": pa.array([np.random.bytes(int(megabytes * 1e6))], pa.binary())})

    ds = ray.data.from_items([{"path": f"doc_{i:06d}.pdf"} for i in range(documents)], override_num_blocks=documents)
    print("after from_items", driver_memory_mb(), flush=True)
    ds = ds.map_batches(extracted, batch_size=1, batch_format="pyarrow", max_calls=50)
    ds = ds.map_batches(RowCount, batch_size=8, batch_format="pyarrow", compute=ActorPoolStrategy(size=1))
    started = time.monotonic()
    blocks = ds.iter_batches(batch_size=None, batch_format="pyarrow") if read_every_block else output_tables(ds)
    rows = sum(block.num_rows for block in blocks)
    print(f"end: {documents} documents of {megabytes} MB, {rows} rows, {'every block read' if read_every_block else 'output_tables'}, "
          f"in {time.monotonic() - started:.0f} s", driver_memory_mb())


if __name__ == "__main__":
    main()
