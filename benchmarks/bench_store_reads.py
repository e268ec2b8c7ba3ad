"""What smaller Parquet row groups would buy the store's reads by row id, and cost its whole-column reads.

    python benchmarks/bench_store_reads.py STORE COPY [--group-rows 64] [--ids 8 64 512 4096] [--column pose_grey]

Writes COPY once (reused when there): STORE's files rewritten in row groups of `--group-rows` rows
(the store writes one group a file, `index.store._write_parquet_atomic`), the manifest's sizes set to
the new files'. A read by id (`FigureStore.read_table(row_ids=...)`) could then decode only the
groups whose row ids hold some of the ids; this script reads both stores interleaved and prints the
median seconds over `--runs` and the ratio COPY / STORE of:
- reading `--ids` random row ids of `--column`, as the pixel and pose checks read a chunk's panels
  and the report its pairs' (a new draw each run, the same in both stores); in COPY only the groups
  holding them are read (`pq.ParquetFile.read_row_groups`, chosen by the `row_id` statistics);
- reading whole columns, as matching reads the store's keys and vectors (`read_keys`, `dense_vectors`).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.store import MANIFEST, PAGE_ROWS, FigureStore  # noqa: E402


def regrouped_copy(store: Path, copy: Path, group_rows: int) -> None:
    """`store` with every file rewritten in row groups of `group_rows` rows, otherwise as the store writes it."""
    manifest = json.loads((store / MANIFEST).read_text(encoding="utf-8"))
    copy.mkdir(parents=True)
    for name in (p.name for p in store.iterdir() if p.is_file() and p.name != MANIFEST):
        shutil.copy2(store / name, copy / name)
    for entry in manifest["files"]:
        target = copy / entry["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pq.read_table(store / entry["file"]), target, compression="zstd", row_group_size=group_rows,
                       write_page_checksum=True, write_batch_size=PAGE_ROWS)
        entry["bytes"] = target.stat().st_size
    (copy / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


def groups_holding(meta: pq.FileMetaData, row_ids: np.ndarray) -> list[int]:
    """The row groups of a store file whose `row_id` range holds one of `row_ids` (sorted)."""
    column = next(c for c in range(meta.num_columns) if meta.row_group(0).column(c).path_in_schema == "row_id")
    groups = []
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(column).statistics
        first = np.searchsorted(row_ids, stats.min)
        if first < len(row_ids) and row_ids[first] <= stats.max:
            groups.append(g)
    return groups


def read_by_groups(store: Path, column: str, row_ids: np.ndarray) -> pa.Table:
    """The rows `row_ids` (sorted) of `column`, reading only the row groups that hold them."""
    manifest = json.loads((store / MANIFEST).read_text(encoding="utf-8"))
    kept = []
    for entry in manifest["files"]:
        first, rows = entry["first_row_id"], entry["rows"]
        inside = row_ids[(row_ids >= first) & (row_ids < first + rows)]
        if len(inside):
            parquet = pq.ParquetFile(store / entry["file"], page_checksum_verification=True)
            table = parquet.read_row_groups(groups_holding(parquet.metadata, inside), columns=["row_id", column],
                                            use_threads=False)
            kept.append(table.filter(pa.array(np.isin(table.column("row_id").to_numpy(), inside))))
    return pa.concat_tables(kept)


def timed(read: Callable[[], object], times: list[float]) -> None:
    """Run `read`, append its seconds to `times`."""
    started = time.perf_counter()
    read()
    times.append(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path)
    parser.add_argument("copy", type=Path)
    parser.add_argument("--group-rows", type=int, default=64)
    parser.add_argument("--ids", type=int, nargs="+", default=[8, 64, 512, 4096])
    parser.add_argument("--column", default="pose_grey")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not args.copy.exists():
        started = time.perf_counter()
        regrouped_copy(args.store, args.copy, args.group_rows)
        print(f"wrote {args.copy} in {time.perf_counter() - started:.0f} s")
    old, new = FigureStore.open(args.store), FigureStore.open(args.copy)
    rows = old.read_table(["row_id"]).column("row_id").to_numpy()
    print(f"{len(rows)} rows in {len(old.files)} files; groups of {args.group_rows} rows against one a file")
    rng = np.random.default_rng(0)
    for count in args.ids:
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(args.runs):
            ids = np.sort(rng.choice(rows, size=min(count, len(rows)), replace=False))
            timed(lambda ids=ids: old.read_table(["row_id", args.column], row_ids=ids.tolist()), times[0])
            timed(lambda ids=ids: read_by_groups(args.copy, args.column, ids), times[1])
        report(f"{count} ids of {args.column}", times)
    for name in ("read_keys", "dense_vectors"):
        times = ([], [])
        for _ in range(args.runs):
            timed(getattr(old, name), times[0])
            timed(getattr(new, name), times[1])
        report(name, times)


def report(what: str, times: tuple[list[float], list[float]]) -> None:
    one, groups = statistics.median(times[0]), statistics.median(times[1])
    print(f"{what}: one group a file {one:.3f} s, small groups {groups:.3f} s, ratio {groups / one:.2f}")


if __name__ == "__main__":
    main()
