"""The keypoint search's cost a query on a scanned store: one group of queries against the whole index.

    python benchmarks/bench_keypoint_search.py STORE [--shard-size N] [--queries 262144] [--plain]

Finds every non-noise panel's ORB descriptors as the scan's keypoint stage does, builds its index
(sharded past `--shard-size` descriptors, as `KeypointOptions.shard_size`), then searches the first
`--queries` query descriptors (the first chunk's own, then its mirror images') once and prints: the
descriptors, lists and shards, the mean number of descriptors in the lists a query reads (what its
search costs in distances: flat with the corpus if the lists are), and the milliseconds a thousand
queries take to find their lists and to be searched (wall and CPU). `--plain` searches an unsharded
index in the queries' own order (`IndexBinaryIVF.search`), to compare with the list order.
Where `bench_keypoint_index.py` times the whole stage, this isolates the search's cost a query,
which is what must not grow with the corpus.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from index import keypoints as kp  # noqa: E402
from index.candidates import RecordKeys  # noqa: E402
from index.store import FigureStore  # noqa: E402
from jobs.pixel_check import read_greys  # noqa: E402


def per_thousand(seconds: float, queries: int) -> float:
    return round(1000 * seconds / max(1, queries) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path)
    parser.add_argument("--shard-size", type=int, default=kp.KeypointOptions().shard_size)
    parser.add_argument("--queries", type=int, default=kp.SEARCH_GROUP)
    parser.add_argument("--plain", action="store_true", help="an unsharded index searched in the queries' own order")
    args = parser.parse_args()
    store = FigureStore.open(args.store)
    keys = RecordKeys.from_table(store.read_keys())
    ids = keys.row_id[~keys.noise]
    options = replace(kp.KeypointOptions(), shard_size=args.shard_size)
    with tempfile.TemporaryDirectory(prefix="bench-keypoint-search-") as folder:
        spool = kp.spool_descriptors(ids, lambda part: read_greys(store, part), Path(folder), options,
                                     kp.CHUNK_PANELS, lambda n: None)
        index = spool.index(options, Path(folder))
        sharded = isinstance(index, kp.ShardedIndex)
        quantizer = index.template.quantizer if sharded else index.quantizer
        sizes = np.zeros(quantizer.ntotal, np.int64)
        for block in spool.own_blocks():
            sizes += np.bincount(kp.nearest_list(quantizer, block), minlength=quantizer.ntotal)
        chunk = next(iter(spool.chunks()))
        queries = np.concatenate([chunk.own, chunk.mirror])[:args.queries]
        wall, cpu = time.perf_counter(), time.process_time()
        _, lists = kp.lists_in_order(quantizer, queries, options.nprobe)
        lists_wall, lists_cpu = time.perf_counter() - wall, time.process_time() - cpu
        wall, cpu = time.perf_counter(), time.process_time()
        plain = args.plain and not sharded
        (index.search if plain else kp.search_function(index))(queries, options.neighbours)
        search_wall, search_cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"panels {len(ids)}, descriptors {spool.total}, lists {quantizer.ntotal}, "
          f"shards {len(index.files) if sharded else 1}, queries {len(queries)}"
          f"{' (own order)' if args.plain and not sharded else ''}")
    print(f"descriptors a query reads: {np.where(lists >= 0, sizes[lists], 0).sum(axis=1).mean():.0f} (a list: mean {sizes.mean():.0f}, "
          f"largest {sizes.max()})")
    print(f"ms a thousand queries: lists {per_thousand(lists_wall, len(queries))} wall / "
          f"{per_thousand(lists_cpu, len(queries))} CPU; search, lists included: {per_thousand(search_wall, len(queries))} wall / "
          f"{per_thousand(search_cpu, len(queries))} CPU")


if __name__ == "__main__":
    main()
