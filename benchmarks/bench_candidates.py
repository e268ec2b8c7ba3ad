"""Which candidate sources find the planted pairs of a scanned benchmark corpus?

    python benchmarks/bench_candidates.py STORE TRUTH.csv [--k 10] [--min-sim 0.3] [--max-distance 8]

STORE is the `store/` folder of a `reusescan scan` of a `reusescan make-corpus` corpus
(for instance `bench-out/scan/scan-pdf/store` after `benchmarks/bench_scan.py`). For
the k-NN self-join of the D4-invariant embedding, for dihedral pHash matches, and for
their union, prints how many candidate pairs each yields, how many true pairs they
hold (same doc and page, bbox IoU >= 0.5 both sides), and the recall of rotated or
flipped true pairs: the measurement behind "rotations and flips are found by the
embedding's invariance; hash matches are not unioned in by default".
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.phash import dihedral_phash, hash_candidates  # noqa: E402
from index.candidates import Pairs, RecordKeys, drop_trivial, self_join, union_pairs  # noqa: E402
from index.faiss_index import sync_index  # noqa: E402
from index.store import FigureStore  # noqa: E402
from scanner.records import parse_bbox  # noqa: E402
from training.scoring import iou  # noqa: E402


def true_pair_ids(table: pd.DataFrame, truth: pd.DataFrame) -> list[tuple[set[int], set[int], str]]:
    """For each truth row, the store row ids matching each side (IoU >= 0.5) and its alteration."""
    out = []
    for _, t in truth.iterrows():
        sides = []
        for doc, page, bbox in ((t.doc_a, t.page_a, t.bbox_a), (t.doc_b, t.page_b, t.bbox_b)):
            box = parse_bbox(bbox)
            rows = table[(table.doc == doc) & (table.page == page)]
            sides.append({int(r.row_id) for r in rows.itertuples() if iou((r.x0, r.y0, r.x1, r.y1), box) >= 0.5})
        out.append((sides[0], sides[1], str(t.alteration)))
    return out


def held(pairs: Pairs, truths: list[tuple[set[int], set[int], str]]) -> list[bool]:
    found = pairs.as_set()
    return [any((min(a, b), max(a, b)) in found for a in sa for b in sb) for sa, sb, _ in truths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path)
    parser.add_argument("truth", type=Path)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--min-sim", type=float, default=0.3)
    parser.add_argument("--max-distance", type=int, default=8)
    args = parser.parse_args()

    store = FigureStore.open(args.store)
    table = store.read_table(["row_id", "doc", "page", "x0", "y0", "x1", "y1", "image"]).to_pandas()
    keys = RecordKeys.from_table(store.read_keys())
    truths = true_pair_ids(table, pd.read_csv(args.truth))
    ids, vecs = store.read_vectors(include_noise=False)
    knn = self_join(sync_index(store), ids, vecs, keys, k=args.k, min_sim=args.min_sim)
    keep = ~keys.noise[keys.positions(table.row_id.to_numpy())]
    hashes = np.stack([dihedral_phash(img) for img in table.image[keep]])
    hashed = drop_trivial(hash_candidates(table.row_id.to_numpy()[keep], hashes, max_distance=args.max_distance), keys)
    geometric = [("rotate90" in alt or "flip" in alt) for _, _, alt in truths]
    result = {}
    for name, pairs in (("knn", knn), ("phash", hashed), ("union", union_pairs(knn, hashed))):
        got = held(pairs, truths)
        result[name] = {
            "candidates": len(pairs),
            "true_pairs_held": f"{sum(got)}/{len(truths)}",
            "rotated_or_flipped_held": f"{sum(g for g, r in zip(got, geometric) if r)}/{sum(geometric)}",
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
