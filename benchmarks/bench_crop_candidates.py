"""Are crops among the k-NN candidates of their source? One vector per panel against sub-region vectors.

    python benchmarks/bench_crop_candidates.py --images DIR [--pairs 60] [--seed 0] [--k 10] [--min-sim 0.3]

Works directly from a folder of real images (e.g. /work/real-data/images/neubias):
every image is a panel of the gallery; `--pairs` of them get a planted partner,
added to the gallery as a new panel, cycling through four kinds:

- ``crop``: a crop keeping 25-50% of the area (`training.real_corpus.alter` "crop_area");
- ``crop60``: a crop keeping 55-80% of the area;
- ``overlap``: two crops of one field, each keeping 78% of each side, on opposite
  corners: they share about half of their area (0.56 / 0.78 of each side), neither
  contains the other; the pair is the two crops (the field stays in the gallery);
- ``whole``: a whole-panel alteration (rotate90, jpeg, blur, colour jitter, noise).

For each candidate source it reports the recall of planted pairs among the
candidates (self-join over the gallery with `index.candidates.knn_pairs`, k
neighbours, cosine >= --min-sim, exact search), per kind, plus the index size
factor (entries / panels) and the embedding time factor (whole + sub-regions /
whole). Sources:

- ``whole``: one vector per panel (today);
- ``<layout>:q``: sub-region vectors (`embedder.regions`) as extra *queries* only,
  index unchanged (a crop's whole vector is found by its source's sub-region query);
- ``<layout>:qi``: sub-region vectors also in the index (under the panel's id), so
  sub-region meets sub-region (partial overlaps).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embedder.inference import Embedder  # noqa: E402
from embedder.regions import LAYOUTS, MIN_SIDE, embed_regions  # noqa: E402
from index.candidates import knn_pairs  # noqa: E402
from training.alterations import apply_named  # noqa: E402
from training.real_corpus import alter  # noqa: E402

KINDS = ("crop", "crop60", "overlap", "whole")
WHOLE_ALTERATIONS = ("rotate90", "jpeg", "blur", "color_jitter", "gaussian_noise", "hflip")
EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


class ExactIndex:
    """Brute-force inner-product search over (N, D) unit vectors with an id per entry (ids may repeat)."""

    def __init__(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self.vectors, self.ids = np.asarray(vectors, np.float32), np.asarray(ids, np.int64)

    def search(self, queries: np.ndarray, k: int, *, batch_size: int = 0) -> tuple[np.ndarray, np.ndarray]:
        sims = queries @ self.vectors.T
        k = min(k, sims.shape[1])
        top = np.argsort(-sims, axis=1)[:, :k]
        return np.take_along_axis(sims, top, 1), self.ids[top]


def load_images(root: Path, max_side: int) -> list[Image.Image]:
    out = []
    for p in sorted(q for q in root.rglob("*") if q.suffix.lower() in EXTS):
        try:
            im = Image.open(p).convert("RGB")
        except OSError:
            continue
        if max(im.size) > max_side:
            s = max_side / max(im.size)
            im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.Resampling.LANCZOS)
        if min(im.size) >= 64 and float(np.asarray(im.convert("L")).std()) > 4.0:
            out.append(im)
    return out


def crop_keep(img: Image.Image, rng: np.random.Generator, lo: float, hi: float) -> Image.Image:
    area = float(rng.uniform(lo, hi))
    kw = float(np.clip(np.sqrt(area * rng.uniform(0.8, 1.25)), 0.3, 0.95))
    kh = float(np.clip(area / kw, 0.3, 0.95))
    w, h = img.size
    cw, ch = max(1, round(w * kw)), max(1, round(h * kh))
    x0, y0 = round((w - cw) * rng.random()), round((h - ch) * rng.random())
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def plant(images: list[Image.Image], n_pairs: int, seed: int) -> tuple[list[Image.Image], list[tuple[int, int, str]]]:
    """Gallery (the inputs + planted panels) and the planted pairs (gallery positions a, b, kind)."""
    rng = np.random.default_rng(seed)
    gallery = list(images)
    pairs: list[tuple[int, int, str]] = []
    sources = rng.permutation(len(images))[:n_pairs]
    for i, src in enumerate(sources.tolist()):
        kind = KINDS[i % len(KINDS)]
        img = images[src]
        if kind == "crop":
            copy, _ = alter(img, "crop_area", rng)
        elif kind == "crop60":
            copy = crop_keep(img, rng, 0.55, 0.8)
        elif kind == "whole":
            copy, _ = apply_named(img, WHOLE_ALTERATIONS[(i // len(KINDS)) % len(WHOLE_ALTERATIONS)], rng)
        else:  # overlap: opposite corners, each keeping 78% of each side (they share ~half their area)
            w, h = img.size
            cw, ch = round(w * 0.78), round(h * 0.78)
            first = img.crop((0, 0, cw, ch))
            gallery.append(first)
            pairs_a = len(gallery) - 1
            gallery.append(img.crop((w - cw, h - ch, w, h)))
            pairs.append((pairs_a, len(gallery) - 1, kind))
            continue
        gallery.append(copy)
        pairs.append((src, len(gallery) - 1, kind))
    return gallery, pairs


def recall(found: set[tuple[int, int]], pairs: list[tuple[int, int, str]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind in (*KINDS, "all"):
        sel = [p for p in pairs if kind in ("all", p[2])]
        if sel:
            out[kind] = sum((min(a, b), max(a, b)) in found for a, b, _ in sel) / len(sel)
    return out


def pixel_report(emb: Embedder, gallery: list[Image.Image], pairs: list[tuple[int, int, str]], whole: np.ndarray,
                 seed: int, own_aspect: bool = False) -> None:
    """Per kind of planted pair (and random non-pairs): medians of head, pixel match, fused scores, the pose check."""
    from embedder.fusion import PixelFusion
    from embedder.verify import align_pair

    fusion = PixelFusion.from_meta(emb.meta)
    assert fusion is not None, "the model has no pixel-check calibration"
    if own_aspect:
        fusion = replace(fusion, align=replace(fusion.align, own_aspect=True))
    rng = np.random.default_rng(seed + 1)
    planted = {(min(a, b), max(a, b)) for a, b, _ in pairs}
    negatives: list[tuple[int, int, str]] = []
    while len(negatives) < len(pairs):
        a, b = (int(x) for x in rng.choice(len(gallery), 2, replace=False))
        if (min(a, b), max(a, b)) not in planted:
            negatives.append((a, b, "negative"))
    rows = []
    for a, b, kind in pairs + negatives:
        head = float(emb.score(whole[a:a + 1], whole[b:b + 1])[0])
        found = align_pair(gallery[a], gallery[b], fusion.align)
        arrays = (np.array([head]), np.array([found.correlation]), np.array([found.detail]))
        rows.append((kind, head, found.correlation, found.detail, found.scale,
                     float(fusion.combine(*arrays)[0]), float(replace(fusion, crop_floor=True).combine(*arrays, np.array([found.scale]))[0]),
                     pose_score(gallery[a], gallery[b])))
    names = ("head", "match", "detail", "scale", "fused", "fused+floor", "pose")
    thr = float(fusion_threshold(emb))
    print(f"pixel check per kind (medians; share of pairs with fused >= {thr}: before / after the crop floor)")
    print(f"{'kind':10s}{'n':>4s}" + "".join(f"{n:>12s}" for n in names) + f"{'pass':>8s}{'pass+fl':>8s}")
    for kind in (*KINDS, "negative"):
        sel = np.array([r[1:] for r in rows if r[0] == kind], dtype=np.float64)
        if len(sel):
            med = np.median(sel, axis=0)
            print(f"{kind:10s}{len(sel):4d}" + "".join(f"{m:12.3f}" for m in med)
                  + f"{(sel[:, 4] >= thr).mean():8.2f}{(sel[:, 5] >= thr).mean():8.2f}")


def pose_score(a: Image.Image, b: Image.Image) -> float:
    """The region's correlation when the pose check accepts the pair (`jobs.match`), else 0."""
    from embedder.pose import PoseRule, panel_pose, verify_pose
    from embedder.verify import grey_image

    pose = verify_pose(panel_pose(grey_image(a, 256)), panel_pose(grey_image(b, 256)), rule=PoseRule())
    return pose.correlation if PoseRule().accepts(pose) else 0.0


def fusion_threshold(emb: Embedder) -> float:
    from jobs.scoring import model_threshold

    return model_threshold(emb, fused=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--pairs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--min-sim", type=float, default=0.3)
    ap.add_argument("--max-side", type=int, default=1024, help="inputs are shrunk to this longer side first")
    ap.add_argument("--min-side", type=int, default=MIN_SIDE, help="shorter side below which no sub-regions")
    ap.add_argument("--layouts", default=",".join(LAYOUTS))
    ap.add_argument("--pixel", action="store_true",
                    help="also run the pixel check on every planted pair and as many random non-pairs: head, "
                         "fused score without and with the crop floor, and the pose check")
    ap.add_argument("--own-aspect", action="store_true", help="--pixel with AlignConfig.own_aspect on")
    ap.add_argument("--skip-candidates", action="store_true", help="only the --pixel part")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    images = load_images(args.images, args.max_side)
    gallery, pairs = plant(images, min(args.pairs, len(images)), args.seed)
    ids = np.arange(len(gallery))
    emb = Embedder.load()
    t0 = time.perf_counter()
    whole = emb.embed(gallery)
    t_whole = time.perf_counter() - t0
    if args.pixel:
        pixel_report(emb, gallery, pairs, whole, args.seed, args.own_aspect)
    if args.skip_candidates:
        return
    results: dict[str, dict[str, float]] = {}
    found = knn_pairs(ExactIndex(whole, ids), ids, whole, k=args.k, min_sim=args.min_sim).as_set()
    results["whole"] = {**recall(found, pairs), "index_factor": 1.0, "embed_factor": 1.0, "candidates": len(found)}
    for layout in args.layouts.split(","):
        t0 = time.perf_counter()
        owners, subs = embed_regions(emb, gallery, layout, args.min_side)
        t_sub = time.perf_counter() - t0
        q_ids, q_vecs = np.concatenate([ids, owners]), np.concatenate([whole, subs])
        embed_factor = (t_whole + t_sub) / t_whole
        for mode in ("q", "qi"):
            index = ExactIndex(whole, ids) if mode == "q" else ExactIndex(q_vecs, q_ids)
            found = knn_pairs(index, q_ids, q_vecs, k=args.k, min_sim=args.min_sim).as_set()
            results[f"{layout}:{mode}"] = {
                **recall(found, pairs), "index_factor": len(index.ids) / len(gallery),
                "embed_factor": embed_factor, "candidates": len(found)}
    if args.json:
        print(json.dumps({"gallery": len(gallery), "pairs": len(pairs), "results": results}, indent=2))
        return
    print(f"{args.images}: {len(images)} images, gallery {len(gallery)}, {len(pairs)} planted pairs "
          f"(seed {args.seed}, k {args.k}, min-sim {args.min_sim}, sub-regions when shorter side >= {args.min_side})")
    cols = [*KINDS, "all", "candidates", "index_factor", "embed_factor"]
    print(f"{'source':16s}" + "".join(f"{c:>13s}" for c in cols))
    for name, r in results.items():
        print(f"{name:16s}" + "".join(f"{r.get(c, float('nan')):13.2f}" if c != "candidates" else f"{int(r[c]):13d}"
                                      for c in cols))


if __name__ == "__main__":
    main()
