"""A threshold-0 scan's report as a scan with other candidates would write it: k-NN only, or k-NN + keypoints.

    python benchmarks/rescore_keypoints.py SCAN_OUT NEW_REPORT.csv [--candidates knn|knn+keypoints] [--no-mirror] \
        [--poses] && reusescan score NEW_REPORT.csv TRUTH.csv --contain

SCAN_OUT is a `reusescan scan ... --threshold 0` output folder (report.csv and store with the
`pixels` column). The candidate pairs are made again from the store as `jobs.match` makes them
(the vectors' k-NN self-join, plus `index.keypoints` pairs with `knn+keypoints`). A pair already
in the report keeps its row (head score, pixel check); a new pair gets the head's score and the
pixel check (`jobs.pixel_check.align_chunk`, in this process on one thread); then every row is
scored with the model's fused score, background margins over the new candidate list
(`training.report_fusion.rescore`). Measures a candidate source on a whole scan without
re-running extraction and embedding: a scan made with `--crop-vectors` holds the k-NN pairs
and more, so it can stand for a default scan and a keypoint scan alike. Prints the candidates,
how many were new, and the CPU time of the keypoint stage and of the new pairs' pixel check.
`--poses` then runs the pose check (`jobs.pose_check`, in this process) on every row scored
under the model's threshold, as a scan does, and raises an accepted pose's row to its correlation.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embedder.fusion import PixelFusion  # noqa: E402
from embedder.inference import Embedder  # noqa: E402
from embedder.pose import unpack_poses  # noqa: E402
from index.candidates import RecordKeys, drop_trivial, self_join, union_pairs  # noqa: E402
from index.faiss_index import sync_index  # noqa: E402
from index.keypoints import keypoint_pairs  # noqa: E402
from index.store import FigureStore  # noqa: E402
from jobs.match import MatchOptions, split_figures  # noqa: E402
from jobs.pixel_check import align_chunk, read_chunk_pixels, read_greys  # noqa: E402
from jobs.pose_check import pose_check  # noqa: E402
from jobs.scoring import model_threshold  # noqa: E402
from scanner.records import format_bbox  # noqa: E402
from training.report_fusion import rescore  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scan", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--candidates", choices=("knn", "knn+keypoints"), default="knn+keypoints")
    ap.add_argument("--no-mirror", action="store_true", help="keypoints without the mirror-image queries")
    ap.add_argument("--poses", action="store_true", help="the pose check on the rows under the threshold")
    args = ap.parse_args()

    store = FigureStore.open(args.scan / "store")
    report = pd.read_csv(args.scan / "report.csv")
    table = store.read_table(["row_id", "figure_id", "doc", "page", "x0", "y0", "x1", "y1"]).to_pandas()
    row_of = dict(zip(table["figure_id"], table["row_id"]))
    report["ra"], report["rb"] = report["figure_id_a"].map(row_of), report["figure_id_b"].map(row_of)
    lo, hi = np.minimum(report["ra"], report["rb"]), np.maximum(report["ra"], report["rb"])
    old = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(lo, hi))}

    options = MatchOptions()
    keys = RecordKeys.from_table(store.read_keys())
    vectors = store.dense_vectors()
    ids = keys.row_id[~keys.noise]
    pairs = self_join(cast(Any, sync_index(store)), ids, vectors[ids], keys, k=options.k, min_sim=options.min_sim)
    kp_cpu = 0.0
    if args.candidates == "knn+keypoints":
        kp_options = replace(options.keypoint_options, mirrored=not args.no_mirror)
        t0 = time.process_time()
        found = keypoint_pairs(ids, lambda part: read_greys(store, part), vectors, kp_options)
        pairs = union_pairs(pairs, drop_trivial(found, keys))
        kp_cpu = time.process_time() - t0
    wanted = list(zip(pairs.a.tolist(), pairs.b.tolist()))
    new = [(a, b) for a, b in wanted if (a, b) not in old]

    embedder = Embedder.load()
    fusion = PixelFusion.from_meta(embedder.meta)
    assert fusion is not None, "the model has no pixel-check calibration"
    t0 = time.process_time()
    rows = []
    if new:
        a, b = np.array([p[0] for p in new]), np.array([p[1] for p in new])
        head = np.asarray(embedder.score(vectors[a], vectors[b]), dtype=np.float64).reshape(-1)
        found_align = align_chunk(read_chunk_pixels(store, np.concatenate([a, b]).tolist(), fusion.align),
                                  a, b, fusion.align)
        info = table.set_index("row_id")
        for (x, y), h, al in zip(new, head, found_align):
            ra, rb = info.loc[x], info.loc[y]
            rows.append({"doc_a": ra["doc"], "page_a": int(ra["page"]),
                         "bbox_a": format_bbox((ra["x0"], ra["y0"], ra["x1"], ra["y1"])),
                         "doc_b": rb["doc"], "page_b": int(rb["page"]),
                         "bbox_b": format_bbox((rb["x0"], rb["y0"], rb["x1"], rb["y1"])),
                         "kind": "inter" if ra["doc"] != rb["doc"] else "intra", "transform": al.transform,
                         "figure_id_a": ra["figure_id"], "figure_id_b": rb["figure_id"], "head_score": float(h),
                         "pixel_match": al.correlation, "pixel_detail": al.detail})
    check_cpu = time.process_time() - t0
    kept = report.iloc[[old[p] for p in wanted if p in old]]
    out = pd.concat([kept, pd.DataFrame(rows)], ignore_index=True).drop(columns=["ra", "rb"])
    out["score"] = rescore(out, fusion)
    pose_cpu, accepted = 0.0, 0
    if args.poses:
        t0 = time.process_time()
        under = np.flatnonzero(out["score"].to_numpy() < model_threshold(embedder, fused=True))
        rule = MatchOptions().pose_rule
        ra = out["figure_id_a"].map(row_of).to_numpy()[under]
        rb = out["figure_id_b"].map(row_of).to_numpy()[under]
        split = split_figures(keys)
        whole = ~np.isin(ra, split) & ~np.isin(rb, split)  # as jobs.match
        under, ra, rb = under[whole], ra[whole], rb[whole]
        for i, pose in zip(under.tolist(), unpack_poses(pose_check(store, ra, rb, rule))):
            if rule.accepts(pose):
                accepted += 1
                out.loc[i, "score"] = max(float(out.loc[i, "score"]), pose.correlation)
        pose_cpu = time.process_time() - t0
    out.sort_values("score", ascending=False).to_csv(args.out, index=False, float_format="%.6g")
    print(f"{args.candidates}: {len(wanted)} candidates ({len(report)} in the scan's report, {len(new)} new); "
          f"keypoint stage {kp_cpu:.1f} s CPU, pixel check of the new pairs {check_cpu:.1f} s CPU"
          + (f", pose check {pose_cpu:.1f} s CPU ({accepted} accepted)" if args.poses else "") + f" -> {args.out}")


if __name__ == "__main__":
    main()
