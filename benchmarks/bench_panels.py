"""Panel splitting on annotated published figures (data/panel-annotations/*.json).

    python benchmarks/bench_panels.py [--images /work/real-data/figures/rendered] [--split dev|heldout|clean|all]
    python benchmarks/bench_panels.py --figures-parquet OUT/figures.parquet --pdf-map map.json

Per annotated kind: panels, found as their own image piece (IoU >= 0.5), and for
chart/text: how many stay matchable (an image-kind piece overlaps them with IoU >= 0.5,
or the figure is not split at all, so they ride along in a whole-figure record).
Methods: `split_panels` (every returned box counts as an image piece),
`split_figure` (pieces with their kind) and `extract records` (the records `reusescan extract`
makes of the figure, their noise flags included: a figure matched whole can be a chart too). Splits: `dev` (tuned on), `heldout` (partly looked
at while debugging), `clean` (annotated before any splitter ran on it; score it once, after tuning).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ANN_DIR = Path(__file__).resolve().parents[1] / "data" / "panel-annotations"
IMAGE_KINDS = ("blot", "micrograph", "histology", "medical")
FLAT_KINDS = ("chart", "text")


def iou(a: list[float] | tuple[float, ...], b: list[float] | tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def load_annotations(split: str) -> list[dict]:
    anns = [json.loads(p.read_text()) for p in sorted(ANN_DIR.glob("*.json"))]
    return [a for a in anns if split == "all" or a.get("split") == split]


def score(anns: list[dict], pieces_of: dict[str, list[tuple[tuple[float, ...], str]]]) -> dict[str, list[int]]:
    """kind -> [annotated, found, matchable]; pieces_of: image name -> [(box, kind)]."""
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for a in anns:
        pieces = pieces_of.get(a["image"])
        if pieces is None:
            continue
        for p in a["panels"]:
            row = table[p["kind"]]
            row[0] += 1
            best = max((iou(p["box"], b) for b, k in pieces if k == "image"), default=0.0)
            row[1] += best >= 0.5
            row[2] += best >= 0.5 or not pieces
    return table


def run_splitters(anns: list[dict], images: Path) -> dict[str, dict[str, list[tuple[tuple[float, ...], str]]]]:
    from PIL import Image

    from scanner.panels import split_panels, split_panels_strict
    from scanner.pieces import split_figure

    out: dict[str, dict[str, list[tuple[tuple[float, ...], str]]]] = {
        "strict (before)": {}, "split_panels": {}, "split_figure": {}, "extract records": {}}
    for a in anns:
        path = images / a["image"]
        if not path.exists():
            print(f"missing image {path}", file=sys.stderr)
            continue
        rgb = np.asarray(Image.open(path).convert("RGB"))
        out["strict (before)"][a["image"]] = [(tuple(map(float, b)), "image") for b in split_panels_strict(rgb)]
        out["split_panels"][a["image"]] = [(tuple(map(float, b)), "image") for b in split_panels(rgb)]
        out["split_figure"][a["image"]] = [(tuple(map(float, p.box)), p.kind) for p in split_figure(rgb)]
        out["extract records"][a["image"]] = record_pieces(rgb)
    return out


def record_pieces(rgb: np.ndarray) -> list[tuple[tuple[float, ...], str]]:
    """What `reusescan extract` makes of a figure, as (box, kind) with its noise flags: a noise-flagged record is "chart".

    A split figure gives its panels; a figure that does not split gives [] when it is
    matchable (every annotated panel rides along) or itself as "chart" when a noise rule takes it out.
    """
    from scanner.document import ExtractLimits
    from scanner.placement import records_for_placement
    from scanner.records import NOISE_FLAGS

    h, w = rgb.shape[:2]
    records = records_for_placement(rgb, (0.0, 0.0, float(w), float(h)), doc="figure.png", doc_sha256="0" * 64,
                                    page=0, placement=0, limits=ExtractLimits(), bbox_is_pixels=True)
    kind = {r.figure_id: "chart" if NOISE_FLAGS.intersection(r.flags) else "image" for r in records}
    panels = [r for r in records if r.parent_id is not None]
    if not panels:
        return [] if kind[records[0].figure_id] == "image" else [((0.0, 0.0, float(w), float(h)), "chart")]
    return [((r.x0, r.y0, r.x1, r.y1), kind[r.figure_id]) for r in panels]


def pieces_from_parquet(path: Path, pdf_map: dict) -> dict[str, list[tuple[tuple[float, ...], str]]]:
    """Score `reusescan extract` output: panels (parent_id set) mapped from page points to annotation pixels.

    pdf_map: image name -> {"doc": doc name in figures.parquet, "page": page, "clip_pt": [...], "zoom": z}
    (annotations rendered from a PDF page region carry these in their "source").
    """
    import pandas as pd

    df = pd.read_parquet(path)
    out: dict[str, list[tuple[tuple[float, ...], str]]] = {}
    for name, m in pdf_map.items():
        sel = df[(df["doc"].astype(str).str.contains(m["doc"])) & (df["page"] == m["page"])]
        cx0, cy0, _, _ = m["clip_pt"]
        z = m["zoom"]
        boxes: list[tuple[tuple[float, ...], str]] = []
        for r in sel.itertuples():
            flags = tuple(r.flags) if r.flags is not None else ()
            kind = "chart" if any(f in ("chart", "text") for f in flags) else "image"
            b = ((r.x0 - cx0) * z, (r.y0 - cy0) * z, (r.x1 - cx0) * z, (r.y1 - cy0) * z)
            boxes.append((b, kind))
        out[name] = boxes
    return out


def print_table(title: str, table: dict[str, list[int]]) -> None:
    print(f"== {title}")
    for kind in IMAGE_KINDS + FLAT_KINDS:
        if kind not in table:
            continue
        n, found, matchable = table[kind]
        extra = f"  left matchable {matchable}/{n}" if kind in FLAT_KINDS else ""
        print(f"  {kind:11s} {found:4d}/{n:<4d} found ({100.0 * found / max(n, 1):5.1f}%){extra}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=Path("/work/real-data/figures/rendered"))
    ap.add_argument("--split", choices=("dev", "heldout", "clean", "all"), default="all")
    ap.add_argument("--figures-parquet", type=Path, default=None)
    ap.add_argument("--pdf-map", type=Path, default=None, help="JSON image -> doc/page/clip_pt/zoom (parquet mode)")
    args = ap.parse_args(argv)
    splits = ("dev", "heldout", "clean") if args.split == "all" else (args.split,)
    for split in splits:
        anns = load_annotations(split)
        if args.figures_parquet is not None:
            pdf_map = json.loads(args.pdf_map.read_text()) if args.pdf_map else {
                a["image"]: {"doc": a["source"]["path"].split("/")[-2], "page": a["source"]["page"] - 1,
                             "clip_pt": a["source"]["clip_pt"], "zoom": a["source"]["zoom"]}
                for a in anns if "clip_pt" in a["source"]
            }
            print_table(f"{split}: extract {args.figures_parquet}", score(anns, pieces_from_parquet(args.figures_parquet, pdf_map)))
            continue
        results = run_splitters(anns, args.images)
        for method, pieces in results.items():
            print_table(f"{split} ({len(anns)} figures): {method}", score(anns, pieces))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
