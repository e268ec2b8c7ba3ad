"""Speed of the pixel check (`embedder.verify.align_pair`) on one thread, and what each part costs.

    python benchmarks/bench_pixel_check.py [--pairs 200] [--runs 3] [--kernels]

Times `align_pair` on the calibration pairs `reusescan calibrate` uses (altered copies,
other fields of the same specimen, other specimens; 80-200 px): as shipped, with the
stretch pass switched off, and with direct convolution only (no FFT), interleaved over
`--runs` rounds; prints the median milliseconds per pair of each. `--kernels` also times the two ways of
correlating a container with templates (direct `conv2d`, FFT) at the sizes the search
uses, which is how `embedder.verify.FFT_MIN_PIXELS` was chosen. `--features` times what a scan
does per pair before and after the stored pixel features: `align_encoded` on the two PNGs
(decode, then the search) against `align_pair` on their `pixel_features` (checked equal).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import embedder.verify as verify  # noqa: E402
from embedder.verify import AlignConfig, align_pair, correlate_direct, correlate_fft  # noqa: E402
from training.fusion import calibration_pairs  # noqa: E402


def time_configs(n_pairs: int, runs: int) -> dict[str, float]:
    pairs = calibration_pairs(n_pairs, seed=0)
    shipped_fft = verify.FFT_MIN_PIXELS
    # (search config, FFT threshold) per variant; "direct conv only" never takes the FFT path
    variants = {"shipped": (AlignConfig(), shipped_fft),
                "without stretch pass": (replace(AlignConfig(), aspects=(1.0,)), shipped_fft),
                "direct conv only": (AlignConfig(), 10**12)}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for _ in range(runs):
            for name, (config, fft_min_pixels) in variants.items():
                verify.FFT_MIN_PIXELS = fft_min_pixels
                started = time.perf_counter()
                for p in pairs:
                    align_pair(p.a, p.b, config)
                seconds[name].append(time.perf_counter() - started)
    finally:
        verify.FFT_MIN_PIXELS = shipped_fft
    return {name: round(statistics.median(s) / n_pairs * 1000, 1) for name, s in seconds.items()}


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
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the scan runs it (embedder.verify.align_many)
    result: dict[str, object] = {"pairs": args.pairs, "runs": args.runs}
    if args.features:
        result["features_ms_per_pair_median"] = time_features(args.pairs, args.runs)
    else:
        result["ms_per_pair_median"] = time_configs(args.pairs, args.runs)
    if args.kernels:
        result["kernels"] = time_kernels()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
