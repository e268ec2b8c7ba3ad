"""Are planted pairs among a scan's candidates? The vectors' k-NN against ORB keypoint candidates (`index.keypoints`).

    python benchmarks/bench_keypoints.py STORE TRUTH.csv [--k 10] [--min-votes 3] [--per-panel 5] [--no-mirror]

STORE is the `store` folder of a scan of an image corpus (`reusescan make-corpus --from-images`,
one panel per image file, so a truth pair names its two files). Prints, per alteration
(crop, crop+rotate90, overlap, and every whole-panel alteration as "whole"), how many planted
pairs are candidates of the k-NN self-join, of the keypoints, of both together, the number of
candidate pairs of each source (what the pixel check must then run on), and the CPU time of the
keypoint stage.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.candidates import Pairs, RecordKeys, drop_trivial, self_join, union_pairs  # noqa: E402
from index.faiss_index import sync_index  # noqa: E402
from index.keypoints import KeypointOptions, keypoint_pairs  # noqa: E402
from index.store import FigureStore  # noqa: E402
from jobs.pixel_check import read_greys  # noqa: E402

CROP_KINDS = ("crop", "crop+rotate90", "overlap")


def recall(found: Pairs, planted: list[tuple[int, int, str]]) -> dict[str, str]:
    have = set(zip(found.a.tolist(), found.b.tolist()))
    by: dict[str, list[bool]] = {}
    for a, b, alteration in planted:
        by.setdefault(alteration if alteration in CROP_KINDS else "whole", []).append((min(a, b), max(a, b)) in have)
    return {k: f"{sum(v)}/{len(v)}" for k, v in sorted(by.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("store", type=Path)
    ap.add_argument("truth", type=Path)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--min-sim", type=float, default=0.3)
    ap.add_argument("--min-votes", type=int, default=KeypointOptions.min_votes)
    ap.add_argument("--per-panel", type=int, default=KeypointOptions.per_panel)
    ap.add_argument("--no-mirror", action="store_true")
    ap.add_argument("--n-keypoints", type=int, default=KeypointOptions.n_keypoints)
    ap.add_argument("--patch", type=int, default=KeypointOptions.patch)
    args = ap.parse_args()

    store = FigureStore.open(args.store)
    keys = RecordKeys.from_table(store.read_keys())
    vectors = store.dense_vectors()
    ids = keys.row_id[~keys.noise]
    knn = self_join(cast(Any, sync_index(store)), ids, vectors[ids], keys, k=args.k, min_sim=args.min_sim)
    options = replace(KeypointOptions(), min_votes=args.min_votes, per_panel=args.per_panel,
                      mirrored=not args.no_mirror, n_keypoints=args.n_keypoints, patch=args.patch)
    t0 = time.process_time()
    kp = drop_trivial(keypoint_pairs(ids, lambda part: read_greys(store, part), vectors, options), keys)
    cpu = time.process_time() - t0
    docs = store.read_table(["row_id", "doc"]).to_pandas()
    row_of = dict(zip(docs["doc"], docs["row_id"]))
    truth = pd.read_csv(args.truth)
    planted = [(int(row_of[r.doc_a]), int(row_of[r.doc_b]), str(r.alteration)) for r in truth.itertuples()
               if r.doc_a in row_of and r.doc_b in row_of]
    both = union_pairs(knn, kp)
    print(f"{args.store}: {len(ids)} panels, {len(planted)} planted pairs; keypoints {options}")
    for name, found in (("k-NN", knn), ("keypoints", kp), ("k-NN + keypoints", both)):
        print(f"{name:18s} {len(found):6d} candidates  " + "  ".join(f"{k} {v}" for k, v in recall(found, planted).items()))
    print(f"keypoint stage: {cpu:.1f} s CPU ({1000 * cpu / max(1, len(ids)):.0f} ms a panel)")


if __name__ == "__main__":
    main()
