"""Candidate pairs that touch a publisher's template zone, scored as `scan` scores them.

    python benchmarks/logo_pairs.py OUT/store [--model CKPT] [--old-rule]

Reads a scan's store (extracted and embedded; the index is brought up to date in it, so
give a copy while that scan still runs), forms the candidate pairs as `scan` does
(k 10, cosine floor 0.3, noise excluded), keeps those where either panel is logo-sized
(longest side <= 150 pt) on page 1 or in the header band -- where logos, journal covers and
badges sit -- and scores them in this process: head, then pixel check, fused as the model's
calibration says. Prints each such pair with its score and whether it is at or above the
model's report threshold. `--old-rule` forms candidates without the icon pair rule
(`index.candidates.trivial_mask`), to see what it removes.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, cast

import numpy as np

from embedder.fusion import PixelFusion
from embedder.inference import Embedder
from index.candidates import RecordKeys, score_candidates, self_join
from index.faiss_index import sync_index
from index.store import FigureStore
from jobs.pixel_check import pixel_check
from jobs.scoring import model_threshold
from scanner.noise import HEADER_BAND_PT, LOGO_MAX_SIDE_PT


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("store", type=Path)
    ap.add_argument("--model", default=None)
    ap.add_argument("--old-rule", action="store_true")
    args = ap.parse_args(argv)
    store = FigureStore.open(args.store)
    keys = RecordKeys.from_table(store.read_keys())
    if args.old_rule:
        keys = dataclasses.replace(keys, icon=np.zeros(len(keys.row_id), dtype=bool))
    index = sync_index(store, include_noise=False)
    vectors = store.dense_vectors()
    ids = keys.row_id[~keys.noise]
    pairs = self_join(cast(Any, index), ids, vectors[ids], keys, k=10, min_sim=0.3)
    side = np.maximum(keys.bbox[:, 2] - keys.bbox[:, 0], keys.bbox[:, 3] - keys.bbox[:, 1])
    zone = (side <= LOGO_MAX_SIDE_PT) & ((keys.page == 1) | (keys.bbox[:, 3] <= HEADER_BAND_PT))
    pa_, pb = keys.positions(pairs.a), keys.positions(pairs.b)
    touch = zone[pa_] | zone[pb]
    embedder = Embedder.load(args.model)
    fusion = PixelFusion.from_meta(embedder.meta)
    threshold = model_threshold(embedder, fused=fusion is not None)
    print(f"{len(pairs)} candidate pairs, {int(touch.sum())} touch a template zone; report threshold {threshold:.4f}")
    if not touch.any():
        return 0
    sub = pairs.select(touch)
    head = score_candidates(sub, vectors, embedder.score)
    scores = fusion.score(head, pixel_check(store, sub.a, sub.b, fusion.align)) if fusion is not None else head
    table = store.read_keys()
    row = {int(r): i for i, r in enumerate(table.column("row_id").to_pylist())}
    doc, page = table.column("doc").to_pylist(), table.column("page").to_pylist()
    box = list(zip(*(table.column(c).to_pylist() for c in ("x0", "y0", "x1", "y1"))))
    for i in np.argsort(-scores):
        a, b = row[int(sub.a[i])], row[int(sub.b[i])]
        mark = "REPORTED" if scores[i] >= threshold else "-"
        print(f"{scores[i]:.3f} head {head[i]:.3f} {mark:8s} {doc[a]} p{page[a]} {[round(v) for v in box[a]]}"
              f" | {doc[b]} p{page[b]} {[round(v) for v in box[b]]}")
    print(f"at or above the threshold: {int((scores >= threshold).sum())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
