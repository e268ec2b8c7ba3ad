"""How a scan scales: seconds per paper per stage, pixel-check speed, peak memory, old code against new.

    python benchmarks/bench_scale.py --papers 100 1000 5000 --no-old        # growth, this checkout only
    python benchmarks/bench_scale.py --papers 50 200 [--old /work/baseline] [--repeats 1] [--out bench-out/scale]
    python benchmarks/bench_scale.py --corpus PAPERS/ --truth TRUTH.csv --threshold 0.9274 --old OLD_CHECKOUT  # a real corpus, as a user scans it

For each size, generates a corpus (`reusescan make-corpus --no-images`, seed = size, reused
when already there) and scans it end to end on a local Ray (`reusescan scan` with its defaults:
every candidate pixel-checked, pairs reported at the model's threshold) once per variant and
repeat, interleaved: `new` is this
checkout, `old` the checkout given by `--old` (each scan runs in a fresh Python process
whose PYTHONPATH is that checkout). Reports per variant the medians over repeats of:
seconds per paper of each stage, candidate pairs per panel, pixel-check pairs/s, peak RSS
of the driver (its /proc/self/status VmHWM; and, sampled, the peaks of its private memory,
RssAnon, and of Ray's shared object-store pages it has mapped, RssShmem, which VmRSS counts
too; and stage by stage, `driver_by_stage`: the scan runs with `-v`, whose log names each stage as
it starts) and of the Ray workers (`ray::` processes,
sampled every 0.5 s: the largest one, with its task then, `worker_peak_role`, and the largest sum), store bytes per paper, the CPU
seconds of every process of the scan and where they went (`cpu_s_by_role`: the driver, Ray's
services, each worker by its task: a `ray::IDLE` worker's CPU goes to what it last ran); the
new/old ratios; and whether report.csv is the same for both variants (it must be).
Generating the corpus is not timed (it is printed apart: `make-corpus` takes ~0.27 s of CPU a
paper, rendered in one process per core: the same truth, text and images whatever the number of
processes, though not the same PDF bytes). Growth table and projection: docs/benchmarks.md#growth-with-the-corpus.
`--corpus DIR` scans an existing folder instead (papers = its input files); `--threshold T`
reports at T instead (0: every candidate, a heavy report); `--truth` adds `reusescan score
--contain` of each report.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIELDS = ("RssAnon", "RssShmem", "RssFile")  # what a process's resident size is made of
STAGE_LINE = re.compile(r"jobs\.clock: stage (.+)$")  # `reusescan -v scan` logs each stage as it starts


def _status_kb(path: str) -> dict[str, int]:
    """The kB-valued fields of a /proc/PID/status file (VmRSS, VmHWM, RssAnon, ...), read once; {} when gone."""
    out = {}
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if value.rstrip().endswith(" kB"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, user + system CPU seconds so far) of every process, from one read of /proc/PID/stat."""
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                out[int(pid)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
            except (OSError, IndexError, ValueError):
                continue
    return out


IDLE_TITLE = "ray::IDLE"


def role_of(pid: int, cmdline: bytes, scan_pid: int | None) -> str:
    """What a process of the scan is, for CPU accounting: "driver", a Ray worker's title (`ray::IDLE`,
    `ray::align_chunk_rows`, ...), else "ray services" (raylet, GCS, agents).

    A title is what the worker last said: one running Ray Data's extraction tasks (streaming
    generators) is titled `ray::IDLE` for most of them (py-spy on the real scan: 28 s of extraction
    under that title), so `WorkerSampler` counts a `ray::IDLE` worker's CPU to its last other title."""
    if pid == scan_pid:
        return "driver"
    if cmdline.startswith(b"ray::"):
        return cmdline.split(b"\0")[0].split(b" ")[0].decode("ascii", "replace")[:60]
    return "ray services"


class WorkerSampler(threading.Thread):
    """Peak RSS of this process's Ray workers (descendants whose cmdline starts with `ray::`; other
    people's Ray clusters on the machine are not counted), sampled until stopped (the scan process's
    own memory is `sample`'s). Also where the CPU went (`cpu_by_role`): each descendant's CPU seconds since
    the last sample, counted to what it was then (`role_of`: a worker's title is its task); a
    process's last half second before it exits is not seen."""

    def __init__(self, period: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.period, self.stop = period, threading.Event()
        self.peak_one_kb = self.peak_sum_kb = 0
        self.peak_one_role = ""  # what the largest worker ran when its peak was seen
        self.scan_pid: int | None = None  # its CPU counts to the driver
        self.seen: set[int] = set()
        self.root = os.getpid()
        self.cpu_by_role: dict[str, float] = {}
        self._cpu_at: dict[int, float] = {}
        self._worked_as: dict[int, str] = {}  # pid -> its last title other than `ray::IDLE`

    def _mine(self, pid: int, processes: dict[int, tuple[int, float]]) -> bool:
        for _ in range(64):
            pid = processes.get(pid, (0, 0.0))[0]
            if pid == self.root:
                return True
            if pid <= 1:
                return False
        return False

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            processes = _processes()
            for pid, (_, cpu) in processes.items():
                if not self._mine(pid, processes):
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        cmd = fh.read(64)
                except OSError:
                    continue
                self._count_cpu(pid, cmd, cpu)
                if not cmd.startswith(b"ray::"):
                    continue
                self.seen.add(pid)
                status = _status_kb(f"/proc/{pid}/status")
                total += status.get("VmRSS", 0)
                self._note_peak(pid, cmd, status.get("VmHWM", 0))
            self.peak_sum_kb = max(self.peak_sum_kb, total)
            self.stop.wait(self.period)

    def _task_of(self, pid: int, cmdline: bytes) -> str:
        """`role_of`, but a `ray::IDLE` worker is what it last ran (see `role_of`)."""
        role = role_of(pid, cmdline, self.scan_pid)
        return self._worked_as.get(pid, role) if role == IDLE_TITLE else role

    def _note_peak(self, pid: int, cmdline: bytes, peak_kb: int) -> None:
        """Keep the largest worker's peak and its task then."""
        if peak_kb > self.peak_one_kb:
            self.peak_one_kb, self.peak_one_role = peak_kb, self._task_of(pid, cmdline)

    def _count_cpu(self, pid: int, cmdline: bytes, cpu: float) -> None:
        before = self._cpu_at.get(pid, 0.0)
        if cpu < before:  # the pid was reused by a new process
            before = 0.0
            self._worked_as.pop(pid, None)
        role = self._task_of(pid, cmdline)
        if role.startswith("ray::") and role != IDLE_TITLE:
            self._worked_as[pid] = role
        self.cpu_by_role[role] = self.cpu_by_role.get(role, 0.0) + cpu - before
        self._cpu_at[pid] = cpu


def cpu_ticks() -> tuple[int, int]:
    """(busy, all) clock ticks of every core since boot, from /proc/stat (busy: user, nice, system, irq, softirq)."""
    with open("/proc/stat", encoding="ascii") as fh:
        ticks = [int(v) for v in fh.readline().split()[1:]]
    return ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6], sum(ticks)


def sample(pid: int, started: float, out: list[dict[str, float]], period: float = 0.5) -> None:
    """Append {t, RssAnon, RssShmem, RssFile, VmHWM (MB), cores busy since the last sample} of process `pid`
    every `period` s until it is gone."""
    cores = os.cpu_count() or 1
    busy_before, all_before = cpu_ticks()
    while True:
        status = _status_kb(f"/proc/{pid}/status")
        if not status:
            return
        busy, every = cpu_ticks()
        share = (busy - busy_before) / max(every - all_before, 1)
        busy_before, all_before = busy, every
        out.append({"t": time.monotonic() - started, "cores": cores * share,
                    **{k: status.get(k, 0) / 1024 for k in (*FIELDS, "VmHWM")}})
        time.sleep(period)


def read_stages(lines: Iterable[str], started: float, stages: list[tuple[float, str]],
                kept: list[str] | None = None) -> None:
    """Append (seconds since `started`, name) to `stages` for each stage a scan's `-v` log `lines` starts (and each line to `kept`)."""
    for line in lines:
        if kept is not None:
            kept.append(line)
        if found := STAGE_LINE.search(line.rstrip()):
            stages.append((time.monotonic() - started, found.group(1)))


def by_stage(samples: list[dict[str, float]], stages: list[tuple[float, str]]) -> list[dict[str, Any]]:
    """Per stage (start time, name; a stage run twice is two rows) the largest of each field and of their sum."""
    rows = []
    ends = [t for t, _ in stages[1:]] + [float("inf")]
    for (start, name), end in zip(stages, ends):
        inside = [s for s in samples if start <= s["t"] < end]
        if not inside:
            continue
        row: dict[str, Any] = {"stage": name, "seconds": round(min(end, samples[-1]["t"]) - start, 1)}
        row.update({k: round(max(s[k] for s in inside)) for k in FIELDS})
        row["resident"] = round(max(sum(s[k] for k in FIELDS) for s in inside))
        row["cores_busy"] = round(sum(s["cores"] for s in inside) / len(inside), 2)
        rows.append(row)
    return rows


def parse_summary(output: str) -> dict[str, Any]:
    """Counts and stage seconds from `reusescan scan`'s closing lines (the same wording in every release)."""
    counts = re.search(r"documents (\d+) .*panels (\d+) .*candidates (\d+), pairs (\d+)", output)
    if counts is None:
        raise SystemExit("no summary line in the scan's output:\n" + output[-3000:])
    timing = re.search(r"^time: (.*)$", output, re.M)
    seconds = {k.strip(): float(v) for k, v in re.findall(r"([^,]+?) ([\d.]+)s(?:,|$)", timing.group(1))} if timing else {}
    documents, panels, candidates, pairs = map(int, counts.groups())
    return {"documents": documents, "panels": panels, "candidates": candidates, "pairs": pairs, "seconds": seconds}


def child(corpus: Path, out: Path, threshold: float | None) -> None:
    """One `reusescan scan` of the code on PYTHONPATH (old or new, same command line); prints one JSON line."""
    sampler = WorkerSampler()
    started = time.monotonic()
    at = [] if threshold is None else ["--threshold", str(threshold)]
    # -v: the scan logs each stage as it starts, which places each memory sample of the scan process in its stage
    proc = subprocess.Popen([sys.executable, "-m", "jobs", "-v", "scan", str(corpus), "--out", str(out), *at,
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            encoding="utf-8", errors="replace")  # a stray byte in a log line must not stop the reader
    sampler.scan_pid = proc.pid
    sampler.start()
    samples: list[dict[str, float]] = []
    memory = threading.Thread(target=sample, args=(proc.pid, started, samples), daemon=True)
    memory.start()
    stages: list[tuple[float, str]] = [(0.0, "start (imports, Ray)")]
    logged: list[str] = []

    reader = threading.Thread(target=read_stages, args=(proc.stderr, started, stages, logged), daemon=True)
    reader.start()
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    proc.wait()
    wall = time.monotonic() - started
    reader.join()
    memory.join()
    stderr = "".join(logged)
    sampler.stop.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"scan failed ({proc.returncode}):\n{stderr[-3000:]}")
    store_bytes = sum(p.stat().st_size for p in (out / "store").rglob("*") if p.is_file())
    print("RESULT " + json.dumps({
        **parse_summary(stdout + stderr), "wall": wall,
        "driver_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,  # the scan's own process
        "driver_private_peak_mb": max((s["RssAnon"] for s in samples), default=0.0),
        "driver_shared_peak_mb": max((s["RssShmem"] for s in samples), default=0.0),
        "worker_peak_mb": sampler.peak_one_kb / 1024, "worker_peak_role": sampler.peak_one_role,
        "workers_sum_peak_mb": sampler.peak_sum_kb / 1024,
        "workers_seen": len(sampler.seen), "store_bytes": store_bytes,
        "cpu_s": round(sum(sampler.cpu_by_role.values()), 1),  # every process of the scan, as sampled
        "cpu_s_by_role": {k: round(v, 1) for k, v in sorted(sampler.cpu_by_role.items(), key=lambda kv: -kv[1])},
        "driver_by_stage": by_stage(samples, stages),  # the scan process's memory (MB) stage by stage
    }), flush=True)


def count_inputs(folder: Path) -> int:
    """How many inputs a scan of `folder` takes (this checkout's discovery; children import their own)."""
    sys.path.insert(0, str(REPO))
    from scanner.discover import find_inputs

    return len(find_inputs(folder))


def make_corpus(out: Path, papers: int) -> Path:
    if not (out / "pdf").exists():
        subprocess.run([sys.executable, "-m", "jobs", "make-corpus", str(out), "--docs", str(papers),
                        "--reuse", str(max(1, papers // 2)), "--seed", str(papers), "--no-images",
                        "--workers", str(os.cpu_count() or 1)],
                       check=True, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=sys.stderr)
    return out / "pdf"


def scan(code: Path, corpus: Path, out: Path, threshold: float | None, truth: Path | None) -> dict[str, Any]:
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)
    # run from the checkout: Ray workers put the driver's working directory first on their path, so
    # from anywhere else an old release's workers would import this checkout's extraction code
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(corpus.resolve()),
                           str(out.resolve()), *([] if threshold is None else ["--threshold", str(threshold)])],
                          env={**os.environ, "PYTHONPATH": str(code)}, cwd=code, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"scan with {code} failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
    result["report_sha256"] = hashlib.sha256((out / "report.csv").read_bytes()).hexdigest()
    if truth is not None:  # scored by this checkout's `reusescan score`, the same for both variants
        scored = subprocess.run([sys.executable, "-m", "jobs", "score", str(out / "report.csv"), str(truth), "--contain",
                                 "--json"], env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                                check=True)
        metrics = json.loads(scored.stdout)
        result["score"] = {k: metrics[k] for k in ("precision", "recall", "average_precision", "recall_at_p90")}
    return result


def summarise(runs: list[dict[str, Any]], papers: int) -> dict[str, Any]:
    def med(f: Any) -> float:
        return round(statistics.median(f(r) for r in runs), 4)

    stages = sorted({s for r in runs for s in r["seconds"]})
    first = runs[0]
    pixel = med(lambda r: r["seconds"].get("pixel check", 0.0))
    return {
        "runs": len(runs), "panels": first["panels"], "candidates": first["candidates"],
        "candidates_per_panel": round(first["candidates"] / max(1, first["panels"]), 2),
        "s_per_paper": {s: med(lambda r, s=s: r["seconds"].get(s, 0.0) / papers) for s in stages},
        "pixel_check_pairs_per_s": round(first["candidates"] / pixel, 1) if pixel else None,
        "driver_peak_mb": med(lambda r: r["driver_peak_mb"]),
        "driver_private_peak_mb": med(lambda r: r["driver_private_peak_mb"]),
        "driver_shared_peak_mb": med(lambda r: r["driver_shared_peak_mb"]),
        "worker_peak_mb": med(lambda r: r["worker_peak_mb"]),
        "worker_peak_roles": sorted({r["worker_peak_role"] for r in runs}),
        "workers_sum_peak_mb": med(lambda r: r["workers_sum_peak_mb"]),
        "store_kb_per_paper": round(first["store_bytes"] / papers / 1024, 1),
        "cpu_s": med(lambda r: r["cpu_s"]),
        "cpu_s_by_role": {k: med(lambda r, k=k: r["cpu_s_by_role"].get(k, 0.0)) for k in first["cpu_s_by_role"]},
        "report_sha256": sorted({r["report_sha256"] for r in runs}),
        "driver_by_stage": first["driver_by_stage"],  # the first run's: stages are not matched across runs
        **({"score": first["score"]} if "score" in first else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--old", type=Path, default=Path("/work/baseline"), help="checkout of the code to compare with")
    parser.add_argument("--no-old", action="store_true", help="scan with this checkout only")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "scale")
    parser.add_argument("--corpus", type=Path, default=None, help="scan this folder instead of generated corpora")
    parser.add_argument("--truth", type=Path, default=None, help="the corpus's truth.csv: score each report")
    parser.add_argument("--threshold", type=float, default=None, help="report threshold of the scans (default: the model's)")
    parser.add_argument("--child", nargs=2, type=Path, metavar=("CORPUS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.threshold)
        return
    variants = {"new": REPO} if args.no_old else {"old": args.old.resolve(), "new": REPO}
    results: dict[str, Any] = {}
    sizes = [count_inputs(args.corpus.resolve())] if args.corpus else args.papers
    for papers in sizes:
        corpus = args.corpus.resolve() if args.corpus else make_corpus(args.out / f"corpus-{papers}", papers)
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for repeat in range(args.repeats):
            for name, code in variants.items():
                print(f"[{papers} papers] {name} scan {repeat + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
                runs[name].append(scan(code, corpus, args.out / f"scan-{papers}-{name}", args.threshold, args.truth))
                print(json.dumps(runs[name][-1]), file=sys.stderr, flush=True)
        row: dict[str, Any] = {name: summarise(r, papers) for name, r in runs.items()}
        if "old" in row:
            old, new = row["old"], row["new"]
            row["new_over_old"] = {
                "total_s": round(new["s_per_paper"]["total"] / old["s_per_paper"]["total"], 3),
                "pixel_check_s": round(new["s_per_paper"].get("pixel check", 0) / max(1e-9, old["s_per_paper"].get("pixel check", 0)), 3),
                "driver_peak": round(new["driver_peak_mb"] / old["driver_peak_mb"], 3),
                "worker_peak": round(new["worker_peak_mb"] / max(1e-9, old["worker_peak_mb"]), 3),
                "store_size": round(new["store_kb_per_paper"] / old["store_kb_per_paper"], 3),
            }
            row["reports_identical"] = old["report_sha256"] == new["report_sha256"] and len(new["report_sha256"]) == 1
        results[str(papers)] = row
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
