"""The scan process's memory stage by stage (where its peak is, what kind of memory it is) and the machine's busy cores.

    python -m benchmarks.memory_by_stage CORPUS OUT [--code CHECKOUT] [--json FILE] [-- SCAN OPTIONS]

Runs `reusescan -v scan CORPUS --out OUT` (the code of CHECKOUT, default this one, in a fresh
Python process) and samples the scan process's /proc status every 0.5 s: its private memory
(`RssAnon`), the pages of Ray's object store it has mapped (`RssShmem`) and its mapped files
(`RssFile`: libraries, memory-mapped store files), whose sum is its resident size. Prints, per
stage of the scan (the `stage ...` lines it logs), the largest of each and of their sum, and the
process's peak (`VmHWM`), and how many of the machine's cores were busy in the stage on average
(from /proc/stat: run nothing else beside it). OUT holding a finished scan of CORPUS makes it a rescan: nothing is
extracted again, so it measures the matching stages and the report alone (a 1,000-paper rescan
takes ~12 minutes on 2 cores, a 5,000-paper one ~65). `bench_scale.py` gives the same table (`driver_by_stage`) beside
its timings, and the workers' peaks.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.bench_scale import by_stage, read_stages, sample

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose code scans")
    parser.add_argument("--json", type=Path, default=None, help="also write the samples and the table here")
    args, scan_options = parser.parse_known_args()  # after `--`: more `reusescan scan` options
    scan_options = [o for o in scan_options if o != "--"]
    code = args.code.resolve()
    started = time.monotonic()
    # run from the checkout: Ray workers put the driver's working directory first on their path
    proc = subprocess.Popen([sys.executable, "-m", "jobs", "-v", "scan", str(args.corpus.resolve()), "--out",
                             str(args.out.resolve()), "--no-progress", *scan_options],
                            cwd=code, env={**os.environ, "PYTHONPATH": str(code)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            errors="replace")
    samples: list[dict[str, float]] = []
    sampler = threading.Thread(target=sample, args=(proc.pid, started, samples), daemon=True)
    sampler.start()
    stages: list[tuple[float, str]] = [(0.0, "start (imports, Ray)")]
    assert proc.stderr is not None
    read_stages(proc.stderr, started, stages)
    if proc.wait():
        raise SystemExit(f"the scan failed ({proc.returncode})")
    sampler.join()
    rows = by_stage(samples, stages)
    for row in rows:
        print(f"{row['stage']:22s} {row['seconds']:8.1f} s  {row['cores_busy']:4.2f} cores busy  private "
              f"{row['RssAnon']:5d}  object store {row['RssShmem']:5d}  files {row['RssFile']:5d}  resident "
              f"{row['resident']:5d} MB")
    peak = max(s["VmHWM"] for s in samples) if samples else 0.0
    print(f"peak resident (VmHWM) {peak:.0f} MB")
    if args.json is not None:
        args.json.write_text(json.dumps({"stages": rows, "peak_mb": peak, "samples": samples}))


if __name__ == "__main__":
    main()
