"""Reported pairs of a finished scan that today's noise rules would remove, from its stored records.

    python benchmarks/noise_pairs.py OUT [--threshold 0.8357] [--list] [--write KEPT.csv]

Reads `OUT/report.csv` (a scan, best at `--threshold 0` so every scored pair is there) and
`OUT/store/`, recomputes each record's noise flags from its stored pixels with the current
rules (`scanner.noise.image_flags`, `scanner.noise.boilerplate_mask`), keeps the flags it was
stored with, and counts the report's pairs at or above `--threshold` before and after: a pair
goes when either panel is now noise or `index.candidates.trivial_mask` drops it. No rescan,
no model: a rule change is measured in seconds. `--list` prints the pairs that stay; `--write`
saves them as a report (same columns), to score as a scan with today's rules would have reported
(`reusescan score KEPT.csv TRUTH --contain`; use `--threshold 0` to keep every scored pair).
"""
from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

from index.candidates import Pairs, RecordKeys, trivial_mask
from index.store import KEY_COLUMNS, FigureStore
from scanner.decode import decode_png
from scanner.noise import NoiseOptions, add_flag, boilerplate_mask, image_flags, is_plot, pixel_hash
from scanner.records import FLAG_BOILERPLATE, FLAG_CHART, FLAG_COMPOUND, NOISE_FLAGS

DEFAULT_THRESHOLD = 0.8357  # the threshold the logos numbers in docs/benchmarks.md were counted at (shipped until 2026-11-26; now 0.9274)


def current_flags(table: pa.Table, opts: NoiseOptions) -> list[tuple[str, ...]]:
    """Per row of `table` (KEY_COLUMNS + image): its stored flags plus what the current rules add."""
    out: list[tuple[str, ...]] = []
    images = table.column("image").to_pylist()
    parents = table.column("parent_id").to_pylist()
    docs = table.column("doc").to_pylist()
    boxes = list(zip(*(table.column(c).to_pylist() for c in ("x0", "y0", "x1", "y1"))))
    for img, parent, doc, box, flags in zip(images, parents, docs, boxes, table.column("flags").to_pylist()):
        size = (box[2] - box[0], box[3] - box[1]) if str(doc).lower().endswith(".pdf") else None
        rgb = decode_png(img)
        new = image_flags(rgb, opts, size, piece=parent is not None)
        if parent is None and not new and FLAG_COMPOUND not in (flags or ()) and is_plot(rgb, opts):
            new.append(FLAG_CHART)  # as scanner.placement: a figure that did not split
        merged = tuple(flags or ())
        for f in new:
            merged = add_flag(merged, f)
        out.append(merged)
    mask = boilerplate_mask([pixel_hash(i) for i in images], docs, table.column("page").to_pylist(), boxes,
                            contents=table.column("doc_sha256").to_pylist())
    return [add_flag(f, FLAG_BOILERPLATE) if m else f for f, m in zip(out, mask)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="a scan's output folder (report.csv and store/)")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    ap.add_argument("--list", action="store_true", help="print the pairs that stay")
    ap.add_argument("--write", type=Path, default=None, help="write the report rows that stay to this CSV")
    args = ap.parse_args(argv)
    table = FigureStore.open(args.out / "store").read_table(KEY_COLUMNS + ["image"])
    flags = current_flags(table, NoiseOptions())
    before = RecordKeys.from_table(table)
    after = RecordKeys.from_table(table.set_column(table.schema.get_field_index("flags"), "flags",
                                                   pa.array([list(f) for f in flags], pa.list_(pa.string()))))
    row_of = dict(zip(table.column("figure_id").to_pylist(), table.column("row_id").to_pylist()))
    with open(args.out / "report.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [r for r in reader if float(r["score"]) >= args.threshold]
        columns = list(reader.fieldnames or [])
    a = np.array([row_of[r["figure_id_a"]] for r in rows], dtype=np.int64)
    b = np.array([row_of[r["figure_id_b"]] for r in rows], dtype=np.int64)
    pairs = Pairs(np.minimum(a, b), np.maximum(a, b), np.ones(len(rows), np.float32))
    dropped_before = trivial_mask(pairs, before)
    dropped_after = trivial_mask(pairs, after)
    flag_of = {int(r): f for r, f in zip(table.column("row_id").to_pylist(), flags)}
    why: Counter[str] = Counter()
    for i in np.flatnonzero(dropped_after & ~dropped_before):
        fa, fb = set(flag_of[int(pairs.a[i])]), set(flag_of[int(pairs.b[i])])
        why["+".join(sorted((fa | fb) & NOISE_FLAGS)) or "template-zone icons"] += 1
    print(f"{len(rows)} pairs at or above {args.threshold:.4f} in {args.out / 'report.csv'}")
    print(f"  left by the rules the scan ran with: {int((~dropped_before).sum())}")
    print(f"  left by the current rules:           {int((~dropped_after).sum())}")
    for reason, n in why.most_common():
        print(f"    removed, noise flag {reason}: {n}")
    if args.write is not None:
        with open(args.write, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows[int(i)] for i in np.flatnonzero(~dropped_after))
    if args.list:
        for i in np.flatnonzero(~dropped_after):
            r = rows[int(i)]
            print(f"  {float(r['score']):.3f} {r['kind']} {r['doc_a']} p{r['page_a']} [{r['bbox_a']}]"
                  f" | {r['doc_b']} p{r['page_b']} [{r['bbox_b']}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
