"""How fast extraction's PNG encoder is against Pillow's, on a store's real panels.

    python benchmarks/bench_png.py OUT/store [--every 4] [--runs 3]

Decodes every `--every`-th stored panel image, then encodes all of them with
`scanner.decode.encode_png` (libpng via OpenCV: zlib level 1, "up" filter, run-length
matching) and with Pillow at level 1 (what extraction used before), in alternating
rounds, one thread; also decodes each encoder's files. Checks that every file decodes
to the same pixels. Prints one JSON object: CPU seconds per image (median of rounds),
megabytes written, and the ratios.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scanner.decode import decode_png, encode_png  # noqa: E402


def pillow_level1(rgb: np.ndarray) -> bytes:
    """Extraction's encoder before: Pillow, zlib level 1, adaptive filters."""
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def stored_panels(store_dir: Path, every: int) -> list[np.ndarray]:
    """RGB arrays of every `every`-th stored image."""
    from index.store import FigureStore

    store = FigureStore.open(store_dir)
    images = [b for b in store.read_table(["image"]).column("image").to_pylist() if b]
    return [decode_png(b) for b in images[::every]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    panels = stored_panels(args.store, args.every)
    encoders = {"encode_png": encode_png, "pillow_level1": pillow_level1}
    encode_s: dict[str, list[float]] = {k: [] for k in encoders}
    decode_s: dict[str, list[float]] = {k: [] for k in encoders}
    files: dict[str, list[bytes]] = {}
    for _ in range(args.runs):
        for name, encode in encoders.items():
            started = time.process_time()
            files[name] = [encode(p) for p in panels]
            encode_s[name].append(time.process_time() - started)
            started = time.process_time()
            for blob in files[name]:
                decode_png(blob)
            decode_s[name].append(time.process_time() - started)
    for name, blobs in files.items():
        for panel, blob in zip(panels, blobs, strict=True):
            if not np.array_equal(decode_png(blob), panel):
                raise SystemExit(f"{name} is not lossless")
    n = len(panels)
    out: dict[str, object] = {"images": n, "megapixels": round(sum(p.shape[0] * p.shape[1] for p in panels) / 1e6, 1)}
    for name in encoders:
        out[name] = {"encode_ms": round(statistics.median(encode_s[name]) / n * 1e3, 2),
                     "decode_ms": round(statistics.median(decode_s[name]) / n * 1e3, 2),
                     "mb": round(sum(map(len, files[name])) / 1e6, 1)}
    new, old = out["encode_png"], out["pillow_level1"]
    assert isinstance(new, dict) and isinstance(old, dict)
    out["speedup_encode"] = round(old["encode_ms"] / new["encode_ms"], 2)
    out["speedup_decode"] = round(old["decode_ms"] / new["decode_ms"], 2)
    out["size_ratio"] = round(new["mb"] / old["mb"], 3)
    out["lossless"] = True
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
