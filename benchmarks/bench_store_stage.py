"""Peak memory of an ingest's store stage, on a synthetic staging area (no Ray, no PDFs, no model).

    python benchmarks/bench_store_stage.py make DIR --rows 10000 [--seed 0]
    python benchmarks/bench_store_stage.py run DIR [--digest]

`make` fills DIR/store/staging with batches shaped like the ones `jobs.pipeline.run_extract_and_embed`
streams out of Ray: documents of about 10 panels plus their `doc` row, taken by three concurrent
extraction streams and cut into embedding batches of 32 rows (one staged file each); random bytes of
realistic sizes in the heavy columns (PNG 100-340 kB, `pixels` 21 kB, `pose_grey` 28 kB, a 256-d
vector); one logo image recurring in every 20th document, so boilerplate is flagged.

`run` (in a fresh process) runs what `jobs.ingest.ingest` runs once extraction is over —
`StagingArea.complete_documents(light=True)`, `flag_boilerplate_table`, `_store_records` — into a new
DIR/store (the staging area is kept, so `run` can be repeated), sampling /proc/self/status every
10 ms. Prints one JSON line: rows, seconds, peak VmRSS / RssAnon / RssShmem and VmHWM (MB), the
baseline before the stage, Arrow's allocator and its peak, and with `--digest` a SHA-256 of the stored rows (every column but the
run id, in row-id order) to compare two versions of the code.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from index.store import FIGURES_DIR, MANIFEST, PIXELS_COLUMN, POSE_COLUMN, FigureStore
from jobs.ingest import _store_records
from jobs.pipeline import EXTRACT_SCHEMA, ROW_DOC, ROW_RECORD
from jobs.staging import STAGING_DIRNAME, StagingArea
from scanner.noise import flag_boilerplate_table

DIM = 256
EMBED_BATCH = 32
STREAMS = 3
MODEL_ID = "synthetic-model"


def _doc_rows(i: int, rng: np.random.Generator, logo: bytes) -> list[dict[str, object]]:
    doc, sha = f"papers/paper-{i:05d}.pdf", hashlib.sha256(str(i).encode()).hexdigest()
    n = int(rng.integers(6, 15))
    rows: list[dict[str, object]] = []
    for k in range(n):
        image = logo if (k == 0 and i % 20 == 0) else rng.bytes(int(rng.integers(100_000, 340_000)))
        rows.append({"figure_id": f"{sha[:12]}-{k}", "doc": doc, "doc_sha256": sha, "page": 1 + k // 4,
                     "x0": 10.0 * k, "y0": 20.0, "x1": 10.0 * k + 100, "y1": 120.0, "width": 300, "height": 280,
                     "image": image, "parent_id": None, "flags": [], "row_kind": ROW_RECORD,
                     "vector": rng.standard_normal(DIM).astype(np.float32).tolist(), "model_id": MODEL_ID,
                     PIXELS_COLUMN: rng.bytes(21_000), POSE_COLUMN: rng.bytes(28_000)})
    rows.append({"doc": doc, "doc_sha256": sha, "row_kind": ROW_DOC, "pages": 1 + n // 4, "seconds": 0.5,
                 "records": n, "flags": [], "model_id": MODEL_ID})
    return rows


STAGED_SCHEMA = (EXTRACT_SCHEMA.append(pa.field("vector", pa.list_(pa.float32())))
                 .append(pa.field("model_id", pa.string())).append(pa.field(PIXELS_COLUMN, pa.binary()))
                 .append(pa.field(POSE_COLUMN, pa.binary())))


def make(folder: Path, rows: int, seed: int) -> None:
    """A staging area of about `rows` panel rows under folder/store/staging."""
    shutil.rmtree(folder, ignore_errors=True)
    area = StagingArea(folder / "store" / STAGING_DIRNAME)
    rng = np.random.default_rng(seed)
    logo = rng.bytes(4_000)
    pending: list[dict[str, object]] = []
    streams: list[list[dict[str, object]]] = [[] for _ in range(STREAMS)]
    made, doc = 0, 0
    while made < rows or any(streams) or pending:
        for s in range(STREAMS):  # each extraction stream hands over one document's rows at a time
            if not streams[s] and made < rows:
                streams[s] = _doc_rows(doc, rng, logo)
                made += len(streams[s]) - 1
                doc += 1
        s = int(rng.integers(STREAMS))
        pending += streams[s]
        streams[s] = []
        while len(pending) >= EMBED_BATCH or (pending and made >= rows and not any(streams)):
            batch, pending = pending[:EMBED_BATCH], pending[EMBED_BATCH:]
            area.write(pa.Table.from_pylist([{c: r.get(c) for c in STAGED_SCHEMA.names} for r in batch],
                                            schema=STAGED_SCHEMA))
    print(json.dumps({"documents": doc, "rows": made, "staged_files": len(list(area.root.glob("batch-*")))}))


class Sampler(threading.Thread):
    """Peaks of VmRSS, RssAnon and RssShmem (kB) of this process, sampled every `every` s."""

    FIELDS = ("VmRSS", "RssAnon", "RssShmem", "VmHWM")

    def __init__(self, every: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.every, self.peak, self._done = every, dict.fromkeys(self.FIELDS, 0), threading.Event()

    @classmethod
    def status(cls) -> dict[str, int]:
        out = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in cls.FIELDS:
                out[key] = int(value.split()[0])
        return out

    def run(self) -> None:
        while not self._done.is_set():
            for k, v in self.status().items():
                self.peak[k] = max(self.peak[k], v)
            time.sleep(self.every)

    def stop(self) -> dict[str, int]:
        self._done.set()
        self.join()
        for k, v in self.status().items():
            self.peak[k] = max(self.peak[k], v)
        return self.peak


def store_stage(store_dir: Path, run_id: str = "run-1") -> int:
    """What `jobs.ingest.ingest` does between extraction and clearing the staging area; the panels stored."""
    staging = StagingArea(store_dir / STAGING_DIRNAME)
    table, _ = staging.complete_documents(light=True)
    records = table.filter(pc.equal(table.column("row_kind"), ROW_RECORD))
    records = flag_boilerplate_table(records)
    _store_records(store_dir, records, run_id, staging)
    return int(records.num_rows)


def digest(store_dir: Path) -> str:
    """SHA-256 of every stored row (all columns but run_id), file by file in row-id order."""
    store = FigureStore.open(store_dir)
    h = hashlib.sha256()
    for rel in store.files:
        t = store.read_table([c for c in store.schema.names if c != "run_id"], files=[rel])
        for name in t.column_names:
            h.update(name.encode())
            h.update(repr(t.column(name).to_pylist()).encode())
    h.update(repr([(e["file"], e["rows"], e["first_row_id"], e["noise"]) for e in store.manifest["files"]]).encode())
    return h.hexdigest()


def run(folder: Path, with_digest: bool) -> None:
    store_dir = folder / "store"
    for stale in (store_dir / FIGURES_DIR, store_dir / "regions"):
        shutil.rmtree(stale, ignore_errors=True)
    (store_dir / MANIFEST).unlink(missing_ok=True)
    base = Sampler.status()
    sampler = Sampler()
    sampler.start()
    started = time.monotonic()
    n = store_stage(store_dir)
    seconds = time.monotonic() - started
    peak = sampler.stop()
    after = Sampler.status()
    out: dict[str, object] = {"rows": n, "seconds": round(seconds, 1),
                              **{f"peak_{k}_MB": round(v / 1024) for k, v in peak.items()},
                              **{f"base_{k}_MB": round(v / 1024) for k, v in base.items() if k != "VmHWM"},
                              **{f"after_{k}_MB": round(v / 1024) for k, v in after.items() if k != "VmHWM"},
                              "files": len(FigureStore.open(store_dir).files),
                              # Arrow's own allocations (ARROW_DEFAULT_MEMORY_POOL picks the allocator)
                              "arrow_pool": pa.default_memory_pool().backend_name,
                              "arrow_pool_peak_MB": round(pa.default_memory_pool().max_memory() / 2**20)}
    if with_digest:
        out["digest"] = digest(store_dir)
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_make = sub.add_parser("make")
    p_make.add_argument("dir", type=Path)
    p_make.add_argument("--rows", type=int, default=1000)
    p_make.add_argument("--seed", type=int, default=0)
    p_run = sub.add_parser("run")
    p_run.add_argument("dir", type=Path)
    p_run.add_argument("--digest", action="store_true")
    args = parser.parse_args()
    if args.cmd == "make":
        make(args.dir, args.rows, args.seed)
    else:
        run(args.dir, args.digest)


if __name__ == "__main__":
    main()
