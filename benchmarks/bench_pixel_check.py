"""Speed of the pixel check (`embedder.verify.align_pair`) on one thread, and what each part costs.

    python benchmarks/bench_pixel_check.py [--pairs 200] [--runs 3] [--kernels]
    python benchmarks/bench_pixel_check.py --store OUT/store [--pairs 300] [--baseline 11c4050]
    python benchmarks/bench_pixel_check.py --scan OUT [--truth TRUTH.csv] [--tasks 12] [--workers 2] [--baseline REV]

Times `align_pair` on the calibration pairs `reusescan calibrate` uses (altered copies,
other fields of the same specimen, other specimens; 80-200 px), or with `--store` on
real-paper panels: k-NN candidate pairs of a scanned store, taken as a scan takes them
(`self_join`, k 10, floor 0.3) and sampled, their luminances read from the store's
`pixels` column or computed from its images. Variants, interleaved over `--runs` rounds:
as shipped (with the cascade's coarse screen), without the screen, without the stretch
pass, with direct convolution only (no FFT), and with `--baseline REV` the search of that
git revision (`embedder/verify.py` loaded from `git show REV:...`, the code before the
cascade and the batched correlations). Prints the median milliseconds per pair, pairs/s
on one thread and each variant's speed-up over the baseline, and how closely the shipped
results agree with the baseline's (largest difference of correlation and detail, pairs
screened). `--kernels` also times the two ways of correlating a container with templates
(direct `conv2d`, FFT) at the sizes the search uses, which is how
`embedder.verify.FFT_MIN_PIXELS` was chosen. `--features` times what a scan does per pair
before and after the stored pixel features: `align_encoded` on the two PNGs (decode, then
the search) against `align_pair` on their `pixel_features` (checked equal).

`--scan OUT` (a scanned output folder: OUT/store, OUT/report.csv) measures throughput as a
scan gets it: the store's k-NN candidate pairs in the order a scan checks them (mostly
unrelated pairs, a few true ones; `--order panel`, the default, is a scan's panel-local order,
`--order candidates` the k-NN's own, grouped by first panel), cut into tasks of `jobs.pixel_check.PIXEL_CHECK_TASK_PAIRS`
consecutive pairs, `--tasks` of them picked at random; each task runs
`jobs.pixel_check.align_chunk` (its panels unpacked afresh from the stored features, one thread)
in a pool of `--workers` processes. With `--truth`, the report rows that match a truth pair
are timed too, as tasks of their own. Prints, per variant (this checkout, `--baseline REV`)
and over `--runs` interleaved rounds: the median pairs/s of the pool (wall clock, all workers)
and CPU ms a pair, and whether the two variants' alignments are identical. `--scan OUT
--locality` only prints how many distinct panels a pixel-check task and a pose-check task meet
a pair, in both orders (what a task does once per panel, it does that often a pair).
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import embedder.verify as verify  # noqa: E402
from embedder.verify import (  # noqa: E402
    AlignConfig,
    PanelPixels,
    align_pair,
    correlate_direct,
    correlate_fft,
    panel_pixels,
    pixel_features,
)
from training.fusion import calibration_pairs  # noqa: E402


def load_revision(rev: str) -> ModuleType:
    """`embedder/verify.py` of git revision `rev`, imported as its own module (the baseline search)."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:embedder/verify.py"], check=True,
                            capture_output=True, text=True).stdout
    name = f"verify_{rev.replace('/', '_')}"
    module = ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    exec(compile(source, f"{rev}:embedder/verify.py", "exec"), module.__dict__)  # noqa: S102
    return module


def calibration_panels(n_pairs: int) -> list[tuple[Any, Any]]:
    """The first `n_pairs` calibration pairs (seed 0) as PIL images."""
    return [(p.a, p.b) for p in calibration_pairs(n_pairs, seed=0)]


def store_panels(store_dir: Path, n_pairs: int, seed: int = 0) -> list[tuple[PanelPixels, PanelPixels]]:
    """`n_pairs` k-NN candidate pairs of a scanned store (as a scan takes them), as `PanelPixels`."""
    from PIL import Image

    from index.candidates import RecordKeys, self_join
    from index.faiss_index import sync_index
    from index.store import PIXELS_COLUMN, FigureStore

    store = FigureStore.open(store_dir)
    index = sync_index(store, include_noise=False)
    keys = RecordKeys.from_table(store.read_keys())
    vectors = store.dense_vectors()
    ids = keys.row_id[~keys.noise]
    pairs = self_join(cast(Any, index), ids, vectors[ids], keys, k=10, min_sim=0.3, exclude_noise=True)
    pick = np.random.default_rng(seed).permutation(len(pairs))[:n_pairs]
    a, b = pairs.a[pick], pairs.b[pick]
    rows = np.union1d(a, b).tolist()
    config = AlignConfig()
    columns = ["row_id", "image"] + ([PIXELS_COLUMN] if PIXELS_COLUMN in store.schema.names else [])
    table = store.read_table(columns, row_ids=rows).to_pylist()
    panels: dict[int, PanelPixels] = {}
    for row in table:
        found = panel_pixels(row.get(PIXELS_COLUMN), config)
        if found is None:
            with Image.open(io.BytesIO(row["image"])) as im:
                found = PanelPixels.from_bytes(pixel_features(im.convert("RGB"), config))
        panels[row["row_id"]] = found
    return [(panels[x], panels[y]) for x, y in zip(a.tolist(), b.tolist())]


def time_configs(pairs: Sequence[tuple[Any, Any]], runs: int, baseline: str | None = None) -> dict[str, Any]:
    """Median ms per pair of each variant over `runs` interleaved rounds, and the shipped results against
    the baseline's."""
    shipped = AlignConfig()
    variants: dict[str, Callable[[Any, Any], Any]] = {
        "shipped": lambda a, b: align_pair(a, b, shipped),
        "without screen": lambda a, b: align_pair(a, b, replace(shipped, screen=0.0)),
        "without stretch pass": lambda a, b: align_pair(a, b, replace(shipped, aspects=(1.0,))),
        "direct conv only": lambda a, b: _direct_only(a, b, shipped),
    }
    old: ModuleType | None = None
    if baseline is not None:
        old = load_revision(baseline)
        old_config = old.AlignConfig()
        old_pairs = [tuple(old.PanelPixels(p.greys) if isinstance(p, PanelPixels) else p for p in pair)
                     for pair in pairs]
        variants[f"baseline {baseline}"] = lambda a, b: None  # timed on old_pairs below
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    results: dict[str, list[Any]] = {}
    for _ in range(runs):
        for name, fn in variants.items():
            started = time.perf_counter()
            if old is not None and name.startswith("baseline"):
                found = [old.align_pair(a, b, old_config) for a, b in old_pairs]
            else:
                found = [fn(a, b) for a, b in pairs]
            seconds[name].append(time.perf_counter() - started)
            results[name] = found
    ms = {name: round(statistics.median(s) / len(pairs) * 1000, 2) for name, s in seconds.items()}
    out: dict[str, Any] = {"ms_per_pair_median": ms,
                           "pairs_per_s_one_thread": {k: round(1000 / v, 1) for k, v in ms.items()}}
    if old is not None:
        base = ms[f"baseline {baseline}"]
        out["speedup_over_baseline"] = {k: round(base / v, 2) for k, v in ms.items()}
        out["agreement_with_baseline"] = {name: _agreement(results[f"baseline {baseline}"], results[name])
                                          for name in ("shipped", "without screen")}
    return out


def _agreement(old: Sequence[Any], new: Sequence[Any]) -> dict[str, float]:
    """How far the new results are from the baseline's: largest |difference| of correlation and detail,
    and the share of pairs with the same transform."""
    return {"max_abs_correlation": round(max(abs(o.correlation - n.correlation) for o, n in zip(old, new)), 6),
            "max_abs_detail": round(max(abs(o.detail - n.detail) for o, n in zip(old, new)), 6),
            "same_transform": round(sum(o.transform == n.transform for o, n in zip(old, new)) / len(old), 3)}


def _direct_only(a: Any, b: Any, config: AlignConfig) -> Any:
    saved = verify.FFT_MIN_BATCHED_PIXELS
    verify.FFT_MIN_BATCHED_PIXELS = 10**12
    try:
        return align_pair(a, b, config)
    finally:
        verify.FFT_MIN_BATCHED_PIXELS = saved


def time_features(n_pairs: int, runs: int) -> dict[str, object]:
    import io

    from embedder.verify import align_encoded, panel_pixels, pixel_features

    def png(image: object) -> bytes:
        buf = io.BytesIO()
        image.save(buf, format="PNG")  # type: ignore[attr-defined]
        return buf.getvalue()

    config = AlignConfig()
    pairs = [(png(p.a), png(p.b)) for p in calibration_pairs(n_pairs, seed=0)]
    features = [(panel_pixels(pixel_features(p.a.convert("RGB"), config), config),
                 panel_pixels(pixel_features(p.b.convert("RGB"), config), config)) for p in calibration_pairs(n_pairs, seed=0)]
    seconds: dict[str, list[float]] = {"encoded images": [], "stored features": []}
    same = True
    for _ in range(runs):
        started = time.perf_counter()
        from_images = [align_encoded(a, b, config) for a, b in pairs]
        seconds["encoded images"].append(time.perf_counter() - started)
        started = time.perf_counter()
        from_features = [align_pair(a, b, config) for a, b in features]  # type: ignore[arg-type]
        seconds["stored features"].append(time.perf_counter() - started)
        same = same and from_images == from_features
    return {"identical": same, **{name: round(statistics.median(s) / n_pairs * 1000, 1) for name, s in seconds.items()}}


def time_kernels(repeats: int = 20) -> list[dict[str, object]]:
    out = []
    for H, W, h, w, n in [(32, 32, 25, 25, 40), (64, 64, 51, 51, 9), (64, 48, 40, 30, 9),
                          (128, 128, 102, 102, 9), (128, 96, 80, 60, 9)]:
        container, templates = torch.rand(H, W), torch.rand(n, h, w)
        row: dict[str, object] = {"container": [H, W], "template": [h, w], "templates": n}
        for name, correlate in (("conv2d_ms", correlate_direct), ("fft_ms", correlate_fft)):
            correlate(container, templates)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                correlate(container, templates)
                times.append(time.perf_counter() - started)
            row[name] = round(statistics.median(times) * 1000, 3)
        out.append(row)
    return out


# ------------------------------------------------------------------ throughput in scan order
_WORKER: dict[str, Any] = {}  # the chunk and the variants' align functions, set once per pool process


def _scan_pairs(store_dir: Path, order: str = "panel") -> tuple[np.ndarray, np.ndarray]:
    """The store's k-NN candidate pairs (row ids), in the order they come from the k-NN (`order` "candidates",
    grouped by their first panel) or in the order a scan checks them (`order` "panel":
    `jobs.pixel_check.panel_local_order`)."""
    from index.candidates import RecordKeys, self_join
    from index.faiss_index import sync_index
    from index.store import FigureStore

    store = FigureStore.open(store_dir)
    index = sync_index(store, include_noise=False)
    keys = RecordKeys.from_table(store.read_keys())
    ids = keys.row_id[~keys.noise]
    pairs = self_join(cast(Any, index), ids, store.dense_vectors()[ids], keys, k=10, min_sim=0.3, exclude_noise=True)
    a, b = np.asarray(pairs.a), np.asarray(pairs.b)
    if order == "panel":
        from jobs.pixel_check import panel_local_order

        taken = panel_local_order(a, b)
        a, b = a[taken], b[taken]
    return a, b


def panels_per_pair(a: np.ndarray, b: np.ndarray, step: int) -> float:
    """Mean over slices of `step` consecutive pairs of the distinct panels a slice meets per pair."""
    return float(np.mean([len(np.union1d(a[i:i + step], b[i:i + step])) / len(a[i:i + step])
                          for i in range(0, len(a), step)]))


def locality(store_dir: Path) -> dict[str, Any]:
    """Distinct panels a pair of each task meets, candidate order against panel-local order (`--locality`)."""
    from jobs.pixel_check import PIXEL_CHECK_TASK_PAIRS
    from jobs.pose_check import POSE_TASK_PAIRS

    a, b = _scan_pairs(store_dir, "candidates")
    out: dict[str, Any] = {"pairs": len(a), "panels": len(np.union1d(a, b))}
    for order in ("candidates", "panel"):
        x, y = (a, b) if order == "candidates" else _scan_pairs(store_dir, order)
        out[order] = {f"{name} ({step} pairs)": round(panels_per_pair(x, y, step), 3)
                      for name, step in (("pixel task", PIXEL_CHECK_TASK_PAIRS), ("pose task", POSE_TASK_PAIRS))}
    return out


def _true_pairs(scan: Path, truth: Path) -> tuple[np.ndarray, np.ndarray]:
    """Row ids of the report rows that match a truth pair (`reusescan score --contain`'s matching)."""
    import pandas as pd

    from index.store import FigureStore
    from training.scoring import label_rows

    report = pd.read_csv(scan / "report.csv")
    true = report[label_rows(report, truth, contain=True) == 1]
    keys = FigureStore.open(scan / "store").read_keys().to_pydict()
    row_of = dict(zip(keys["figure_id"], keys["row_id"]))
    return (np.array([row_of[f] for f in true.figure_id_a], dtype=np.int64),
            np.array([row_of[f] for f in true.figure_id_b], dtype=np.int64))


def _init_worker(chunk: Any, baseline: str | None) -> None:
    from jobs.pixel_check import align_chunk

    torch.set_num_threads(1)  # as a scan's Ray task runs it (embedder.verify.single_thread)
    _WORKER["chunk"] = chunk
    _WORKER["this checkout"] = align_chunk
    if baseline is not None:
        old = load_revision(baseline)
        _WORKER[f"baseline {baseline}"] = lambda c, a, b, config: _align_chunk_with(old, c, a, b)


def _align_chunk_with(module: ModuleType, chunk: Any, a: np.ndarray, b: np.ndarray) -> list[Any]:
    """`jobs.pixel_check.align_chunk` with another revision's search: each panel unpacked once per task."""
    panels: dict[int, Any] = {}
    out = []
    for x, y in zip(a.tolist(), b.tolist()):
        for r in (x, y):
            if r not in panels:
                panels[r] = module.PanelPixels.from_bytes(chunk.entry(r)[0])
        out.append(module.align_pair(panels[x], panels[y], module.AlignConfig()))
    return out


def _run_task(job: tuple[str, np.ndarray, np.ndarray]) -> tuple[float, list[tuple[float, float, str]]]:
    """One task of a variant in a pool process -> (CPU seconds, (correlation, detail, transform) per pair)."""
    variant, a, b = job
    started = time.process_time()
    found = _WORKER[variant](_WORKER["chunk"], a, b, AlignConfig())
    return time.process_time() - started, [(x.correlation, x.detail, x.transform) for x in found]


def time_scan(scan: Path, truth: Path | None, n_tasks: int, workers: int, runs: int, baseline: str | None,
              seed: int, order: str = "panel") -> dict[str, Any]:
    """Pairs/s of the pixel check on a scan's candidates as the scan runs it (module docstring, `--scan`)."""
    import multiprocessing
    import os

    from index.store import FigureStore
    from jobs.pixel_check import PIXEL_CHECK_TASK_PAIRS, read_chunk_pixels

    load_before = os.getloadavg()
    a, b = _scan_pairs(scan / "store", order)
    starts = np.arange(0, len(a), PIXEL_CHECK_TASK_PAIRS)
    picked = np.sort(np.random.default_rng(seed).permutation(starts)[:n_tasks])
    sets = {"candidates": [(a[i:i + PIXEL_CHECK_TASK_PAIRS], b[i:i + PIXEL_CHECK_TASK_PAIRS]) for i in picked]}
    if truth is not None:
        ta, tb = _true_pairs(scan, truth)
        sets["true pairs"] = [(ta[i:i + 8], tb[i:i + 8]) for i in range(0, len(ta), 8)]  # spread over the workers
    rows = np.unique(np.concatenate([x for tasks in sets.values() for pair in tasks for x in pair]))
    chunk = read_chunk_pixels(FigureStore.open(scan / "store"), rows.tolist(), AlignConfig())
    variants = ["this checkout"] + ([f"baseline {baseline}"] if baseline else [])
    wall: dict[tuple[str, str], list[float]] = {(s, v): [] for s in sets for v in variants}
    cpu: dict[tuple[str, str], list[float]] = {(s, v): [] for s in sets for v in variants}
    found: dict[tuple[str, str], list[Any]] = {}
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(chunk, baseline)) as pool:
        pool.map(_run_task, [(v, *sets["candidates"][0]) for v in variants for _ in range(workers)])  # warm up
        for _ in range(runs):
            for name, tasks in sets.items():
                for v in variants:
                    started = time.perf_counter()
                    done = pool.map(_run_task, [(v, x, y) for x, y in tasks], chunksize=1)
                    wall[(name, v)].append(time.perf_counter() - started)
                    cpu[(name, v)].append(sum(c for c, _ in done))
                    found[(name, v)] = [r for _, part in done for r in part]
    out: dict[str, Any] = {"tasks": n_tasks, "workers": workers, "order": order, "candidate pairs in the scan": len(a),
                           "load average before": load_before}
    for name, tasks in sets.items():
        n = sum(len(x) for x, _ in tasks)
        entry: dict[str, Any] = {"pairs": n}
        for v in variants:
            entry[v] = {"pairs_per_s_wall": round(n / statistics.median(wall[(name, v)]), 1),
                        "cpu_ms_per_pair": round(statistics.median(cpu[(name, v)]) / n * 1000, 2),
                        "pairs_per_s_per_core_cpu": round(n / statistics.median(cpu[(name, v)]), 1)}
        if baseline:
            new, old = found[(name, "this checkout")], found[(name, f"baseline {baseline}")]
            entry["speedup_wall"] = round(entry["this checkout"]["pairs_per_s_wall"]
                                          / entry[f"baseline {baseline}"]["pairs_per_s_wall"], 2)
            entry["identical_to_baseline"] = f"{sum(x == y for x, y in zip(new, old))}/{len(new)}"
            entry["max_abs_correlation_vs_baseline"] = round(max(abs(x[0] - y[0]) for x, y in zip(new, old)), 6)
        out[name] = entry
    out["load average after"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kernels", action="store_true")
    parser.add_argument("--features", action="store_true", help="PNG decode + search against stored features")
    parser.add_argument("--store", type=Path, help="time real-paper candidate pairs of this scanned store")
    parser.add_argument("--seed", type=int, default=0, help="which candidate pairs of --store are sampled")
    parser.add_argument("--baseline", help="also time the search of this git revision (e.g. 11c4050)")
    parser.add_argument("--scan", type=Path, help="a scanned output folder: time its candidates in scan order")
    parser.add_argument("--truth", type=Path, help="with --scan: the corpus truth, to time the true pairs too")
    parser.add_argument("--tasks", type=int, default=12, help="with --scan: random tasks of consecutive pairs")
    parser.add_argument("--workers", type=int, default=2, help="with --scan: processes, one thread each")
    parser.add_argument("--order", choices=("panel", "candidates"), default="panel",
                        help="with --scan: the pairs in a scan's panel-local order, or as the k-NN lists them")
    parser.add_argument("--locality", action="store_true",
                        help="with --scan: only the distinct panels a task meets a pair, in both orders")
    args = parser.parse_args()
    if args.scan and args.locality:
        print(json.dumps(locality(args.scan / "store"), indent=2))
        return
    if args.scan:
        print(json.dumps(time_scan(args.scan, args.truth, args.tasks, args.workers, args.runs, args.baseline,
                                   args.seed, args.order), indent=2))
        return
    torch.set_num_threads(1)  # as the scan runs it (embedder.verify.align_many)
    result: dict[str, object] = {"pairs": args.pairs, "runs": args.runs,
                                 "panels": str(args.store) if args.store else "calibration pairs"}
    if args.features:
        result["features_ms_per_pair_median"] = time_features(args.pairs, args.runs)
    else:
        pairs = (store_panels(args.store, args.pairs, args.seed) if args.store else calibration_panels(args.pairs))
        result.update(time_configs(pairs, args.runs, args.baseline))
    if args.kernels:
        result["kernels"] = time_kernels()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
