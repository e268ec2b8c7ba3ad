"""Re-score a threshold-0 scan's report with this checkout's pixel check: same candidates and head scores.

    python benchmarks/rescore_pixel_check.py SCAN_OUT NEW_REPORT.csv

SCAN_OUT is a `reusescan scan ... --threshold 0` output folder whose store has the `pixels`
column. Every reported pair is checked again (`align_pair` with the shipped calibration's
search) and fused with its `head_score`; prints the time, how many pairs the cascade
screened and how far the scores moved, and writes the re-scored report for
`reusescan score NEW_REPORT.csv TRUTH.csv`. Measures a change of the pixel check on a
whole scan's candidates without re-running extraction and embedding.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embedder.fusion import PixelFusion  # noqa: E402
from embedder.inference import Embedder  # noqa: E402
from embedder.verify import align_pair, panel_pixels  # noqa: E402
from index.store import PIXELS_COLUMN, FigureStore  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)  # as the scan runs it
    scan, out = Path(sys.argv[1]), Path(sys.argv[2])
    fusion = PixelFusion.from_meta(Embedder.load(None).meta)
    if fusion is None:
        raise SystemExit("the shipped model has no pixel-check calibration")
    report = pd.read_csv(scan / "report.csv")
    rows = FigureStore.open(scan / "store").read_table(["figure_id", PIXELS_COLUMN]).to_pylist()
    pixels = {row["figure_id"]: panel_pixels(row[PIXELS_COLUMN], fusion.align) for row in rows}
    started = time.perf_counter()
    found = [align_pair(pixels[a], pixels[b], fusion.align)  # type: ignore[arg-type]
             for a, b in zip(report.figure_id_a, report.figure_id_b)]
    seconds = time.perf_counter() - started
    new = fusion.score(report.head_score.to_numpy(), found)
    moved = np.abs(new - report.score.to_numpy())
    print(f"{len(report)} pairs, {seconds:.0f} s, screened {sum(x.correlation < fusion.align.screen for x in found)}; "
          f"max |score - old| {moved.max():.4f}; rows scored >= 0.5 before that moved by > 1e-3: "
          f"{int(((moved > 1e-3) & (report.score.to_numpy() >= 0.5)).sum())}")
    report["score"] = np.round(new, 4)
    report["pixel_match"] = [round(x.correlation, 4) for x in found]
    report["pixel_detail"] = [round(x.detail, 4) for x in found]
    report.sort_values("score", ascending=False).to_csv(out, index=False)


if __name__ == "__main__":
    main()
