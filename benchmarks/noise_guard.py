"""Matchable panels per paper under the stored flags and under today's noise rules, and what the rules newly flag.

    python benchmarks/noise_guard.py OUT [OUT ...] [--per-doc] [--sheet SHEET.png]
    python benchmarks/noise_guard.py --images DIR [--sheet SHEET.png]

OUT is a `reusescan scan` output (its `store/`) or a `reusescan extract` output (its
`figures.parquet`). The stored flags are the rules the run used; the current ones are
recomputed from the stored pixels (`noise_pairs.current_flags`, no rescan). Prints the
matchable records (no noise flag) per run before and after, per paper with `--per-doc`,
and every record the current rules newly take out of matching, so one can check by eye
(`--sheet` draws them on one contact sheet) that no real micrograph, blot or histology
panel is among them. `--images DIR` extracts every image file under DIR as `reusescan extract`
would (`scanner.placement`) and lists each record a noise rule takes out of matching (for a
folder of real micrographs: none should be).
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from noise_pairs import current_flags

from index.store import KEY_COLUMNS, FigureStore
from scanner.decode import decode_png
from scanner.noise import NoiseOptions
from scanner.records import NOISE_FLAGS


def read_records(out: Path) -> pa.Table:
    """KEY_COLUMNS + image of a scan's store or an extract's figures.parquet."""
    if (out / "figures.parquet").exists():
        table = pq.read_table(out / "figures.parquet")
        return table.append_column("row_id", pa.array(range(table.num_rows), pa.int64())) \
            if "row_id" not in table.column_names else table
    return FigureStore.open(out / "store").read_table(KEY_COLUMNS + ["image"])


def is_matchable(flags: list[str] | tuple[str, ...] | None) -> bool:
    return not NOISE_FLAGS.intersection(flags or ())


def contact_sheet(images: list[bytes], labels: list[str], dest: Path, cell: int = 220, cols: int = 6) -> None:
    """The images on one PNG, each scaled into a cell with its label under it."""
    from PIL import Image, ImageDraw

    rows = max(1, (len(images) + cols - 1) // cols)
    sheet = Image.new("RGB", (cols * cell, rows * (cell + 14)), "gray")
    draw = ImageDraw.Draw(sheet)
    for i, (png, label) in enumerate(zip(images, labels)):
        im = Image.fromarray(decode_png(png))
        im.thumbnail((cell - 4, cell - 4))
        x, y = (i % cols) * cell, (i // cols) * (cell + 14)
        sheet.paste(im, (x + 2, y + 2))
        draw.text((x + 2, y + cell), label[:36], fill="yellow")
    sheet.save(dest)


def flagged_in_images(folder: Path) -> list[tuple[str, str, bytes]]:
    """(file, flags, PNG) of every record of the image files under `folder` that a noise rule flags."""
    import numpy as np
    from PIL import Image

    from scanner.document import ExtractLimits
    from scanner.placement import records_for_placement

    out = []
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff"))
    for path in files:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w = rgb.shape[:2]
        records = records_for_placement(rgb, (0.0, 0.0, float(w), float(h)), doc=path.name, doc_sha256="0" * 64,
                                        page=0, placement=0, limits=ExtractLimits(), bbox_is_pixels=True)
        for r in records:
            if not is_matchable(r.flags):
                out.append((str(path.relative_to(folder)), "+".join(sorted(NOISE_FLAGS.intersection(r.flags))), r.image))
    print(f"{folder}: {len(files)} image files, {len(out)} records flagged as noise")
    for name, why, _ in out:
        print(f"  {why}: {name}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outs", type=Path, nargs="*", help="scan outputs (store/) or extract outputs (figures.parquet)")
    ap.add_argument("--images", type=Path, default=None, help="a folder of image files to extract and check")
    ap.add_argument("--per-doc", action="store_true", help="print matchable records per paper, stored vs current rules")
    ap.add_argument("--sheet", type=Path, default=None, help="contact sheet PNG of the newly flagged records")
    args = ap.parse_args(argv)
    sheet_images: list[bytes] = []
    sheet_labels: list[str] = []
    if args.images is not None:
        for name, why, png in flagged_in_images(args.images):
            sheet_images.append(png)
            sheet_labels.append(f"{why} {name}")
    for out in args.outs:
        table = read_records(out)
        now = current_flags(table, NoiseOptions())
        stored = table.column("flags").to_pylist()
        docs = table.column("doc").to_pylist()
        before, after = Counter[str](), Counter[str]()
        for doc, old, new in zip(docs, stored, now):
            before[doc] += is_matchable(old)
            after[doc] += is_matchable(new)
        print(f"{out}: {len(set(docs))} documents, {table.num_rows} records; matchable {sum(before.values())} "
              f"with the stored flags, {sum(after.values())} with the current rules")
        if args.per_doc:
            for doc in sorted(set(docs)):
                print(f"  {before[doc]:4d} -> {after[doc]:4d}  {doc}")
        images = table.column("image").to_pylist()
        parents = table.column("parent_id").to_pylist()
        boxes = zip(*(table.column(c).to_pylist() for c in ("x0", "y0", "x1", "y1")))
        for i, (old, new, box) in enumerate(zip(stored, now, boxes)):
            if is_matchable(old) and not is_matchable(new):
                why = "+".join(sorted(NOISE_FLAGS.intersection(new)))
                label = f"{docs[i]} p{table.column('page')[i].as_py()}"
                print(f"  newly flagged {why}: {label} [{' '.join(f'{v:.1f}' for v in box)}]"
                      f" {'panel' if parents[i] is not None else 'figure'}")
                sheet_images.append(images[i])
                sheet_labels.append(f"{why} {label}")
    if args.sheet is not None and sheet_images:
        contact_sheet(sheet_images, sheet_labels, args.sheet)
        print(f"contact sheet of {len(sheet_images)} newly flagged records: {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
