"""Speed of the pixel check (`embedder.verify.align_pair`) on one thread, and what each part costs.

    python benchmarks/bench_pixel_check.py [--pairs 200] [--runs 3] [--kernels]
    python benchmarks/bench_pixel_check.py --store OUT/store [--pairs 300] [--baseline 11c4050]

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
    import numpy as np
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kernels", action="store_true")
    parser.add_argument("--features", action="store_true", help="PNG decode + search against stored features")
    parser.add_argument("--store", type=Path, help="time real-paper candidate pairs of this scanned store")
    parser.add_argument("--seed", type=int, default=0, help="which candidate pairs of --store are sampled")
    parser.add_argument("--baseline", help="also time the search of this git revision (e.g. 11c4050)")
    args = parser.parse_args()
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
