"""A channel beside its merge: how such pairs score against planted reuse, and whether `channel_of` names them.

    python benchmarks/channel_merges.py make CELLPROFILER_EXAMPLES OUT/merges    # merges + channels of 6 real fields
    reusescan scan CORPUS --out SCAN --threshold 0                             # CORPUS holds OUT/merges and a planted corpus
    python benchmarks/channel_merges.py count SCAN TRUTH.csv [--threshold 0.9274]

`make` builds, from CellProfiler's multi-channel example fields (ExampleHuman's three stains,
three ExampleFly positions, two ExampleColocalization fields; BSD-3), one RGB merge per field and
each of its channels as a grey image (contrast-stretched as a figure would show it): 16
channel-vs-merge pairs, all legitimate look-alikes. `count` lists them from a threshold-0 scan
of a folder holding them beside a planted corpus (`make-corpus --from-images`), and counts how
many reach the threshold or outrank the lowest planted pair found, and how many `channel_of`
names.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.scoring import row_truth_matches  # noqa: E402

FIELDS = {  # field name -> its channel files under the CellProfiler examples folder
    "human": [f"ExampleHuman/images/AS_09125_050116030001_D03f00d{i}.png" for i in range(3)],
    **{f"fly{p[-3:]}": [f"ExampleFly/images/{p}_{c}.png" for c in "DFR"] for p in ("01_POS002", "01_POS076", "01_POS218")},
    **{f"coloc{f}": [f"ExampleColocalization/images/{f}_N_{c}.png" for c in "RG"] for f in ("0_1", "0_2")},
}
NAME = re.compile(r"(?:^|/)(\w+?)_(merge|ch\d)\.png$")


def stretched(path: Path) -> np.ndarray:
    """A channel as a figure shows it: grey, 0.5–99.8 percentiles stretched to 0–255."""
    a = np.asarray(Image.open(path), dtype=np.float64)
    a = a[..., :3].mean(axis=-1) if a.ndim == 3 else a
    lo, hi = np.percentile(a, [0.5, 99.8])
    return np.clip((a - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)


def make(src: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for field, files in FIELDS.items():
        channels = [stretched(src / f) for f in files]
        h, w = min(c.shape[0] for c in channels), min(c.shape[1] for c in channels)
        merge = np.zeros((h, w, 3), np.uint8)
        for i, c in enumerate(channels):
            merge[..., i] = c[:h, :w]
            Image.fromarray(c[:h, :w]).save(out / f"{field}_ch{i}.png")
        Image.fromarray(merge).save(out / f"{field}_merge.png")
    print(f"{len(FIELDS)} merges and {sum(map(len, FIELDS.values()))} channels -> {out}")


def is_channel_merge(doc_a: str, doc_b: str) -> bool:
    a, b = NAME.search(doc_a), NAME.search(doc_b)
    return bool(a and b and a[1] == b[1] and "merge" in (a[2], b[2]) and a[2] != b[2])


def count(scan: Path, truth_path: Path, threshold: float) -> None:
    rows = pd.read_csv(scan / "report.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(truth_path, dtype=str, keep_default_na=False)
    rows["score"] = rows["score"].astype(float)
    planted = np.array([bool(m) for m in row_truth_matches(rows, truth, contain=True)])
    pairs = rows[[is_channel_merge(a, b) for a, b in zip(rows.doc_a, rows.doc_b)]]
    found = rows.score[planted & (rows.score >= threshold)]
    lowest = float(found.min()) if len(found) else 1.0
    print(pairs[["score", "doc_a", "doc_b", "pixel_match", "head_score", "channel_of"]].to_string(index=False))
    print(f"channel-vs-merge pairs among the candidates: {len(pairs)}; at or above {threshold}: "
          f"{int((pairs.score >= threshold).sum())}; above the lowest planted pair found ({lowest:.4f}): "
          f"{int((pairs.score > lowest).sum())}; named by channel_of: {int((pairs.channel_of != '').sum())}")
    named = rows[rows.channel_of != ""]
    print(f"rows named by channel_of: {len(named)}; of them planted: {int(planted[named.index].sum())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("src", type=Path)
    m.add_argument("out", type=Path)
    c = sub.add_parser("count")
    c.add_argument("scan", type=Path)
    c.add_argument("truth", type=Path)
    c.add_argument("--threshold", type=float, default=0.9274)
    args = parser.parse_args()
    if args.command == "make":
        make(args.src, args.out)
    else:
        count(args.scan, args.truth, args.threshold)


if __name__ == "__main__":
    main()
