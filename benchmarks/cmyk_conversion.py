"""What converting PDF images to RGB costs, with MuPDF's ICC colour management and without, and what
turning it off would do to a copy converted the other way.

    python benchmarks/cmyk_conversion.py PAPERS [--images 40] [--min-side 150]

Extraction converts every image that is not RGB with `pymupdf.Pixmap(pymupdf.csRGB, pix)`
(`scanner.decode.pixmap_to_rgb`), through MuPDF's ICC path. For every image of the PDFs in PAPERS it
prints, per colourspace: how many images, their megapixels, the CPU seconds of that conversion with
ICC on and off, and the largest difference of a pixel value between the two. Then, for up to
`--images` CMYK images (one per paper, both sides at least `--min-side` pixels), it compares the two
conversions of each as a scan would compare two panels: the shipped model's head score and the pixel
check's correlation and detail (a copy one publisher converted with ICC, another without).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embedder.fusion import PixelFusion  # noqa: E402
from embedder.inference import Embedder  # noqa: E402
from embedder.verify import align_pair  # noqa: E402


def to_rgb(pix: pymupdf.Pixmap, icc: bool) -> tuple[Image.Image, float]:
    """`pix` converted to RGB by MuPDF with ICC colour management on or off, and the CPU seconds it took."""
    pymupdf.TOOLS.set_icc(icc)
    try:
        started = time.process_time()
        rgb = pymupdf.Pixmap(pymupdf.csRGB, pix)
        seconds = time.process_time() - started
    finally:
        pymupdf.TOOLS.set_icc(True)
    array = np.frombuffer(rgb.samples, np.uint8).reshape(rgb.height, rgb.width, rgb.n)[..., :3]
    return Image.fromarray(array.copy()), seconds


def image_pixmaps(pdf: Path) -> list[pymupdf.Pixmap]:
    """Each image of `pdf` once, decoded, without alpha (stencil masks left out)."""
    out = []
    with pymupdf.open(pdf) as doc:
        seen: set[int] = set()
        for page in doc:
            for item in page.get_images(full=True):
                if item[0] in seen:
                    continue
                seen.add(item[0])
                try:
                    pix = pymupdf.Pixmap(doc, item[0])
                except Exception:  # an undecodable image: extraction reports it; nothing to time
                    continue
                if pix.colorspace is not None:
                    out.append(pymupdf.Pixmap(pix, 0) if pix.alpha else pix)
    pymupdf.TOOLS.store_shrink(100)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("papers", type=Path)
    parser.add_argument("--images", type=int, default=40, help="CMYK images compared both ways")
    parser.add_argument("--min-side", type=int, default=150)
    args = parser.parse_args()
    pymupdf.TOOLS.mupdf_display_errors(False)
    cost: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0.0])  # images, Mpix, s on, s off, max diff
    both_ways: list[tuple[Image.Image, Image.Image]] = []
    for pdf in sorted(args.papers.glob("*.pdf")):
        picked = False
        for pix in image_pixmaps(pdf):
            row = cost[f"{pix.colorspace.name} (n={pix.n})"]
            row[0] += 1
            row[1] += pix.width * pix.height / 1e6
            if pix.colorspace.n == 3 and pix.n == 3:
                continue  # already RGB: extraction converts nothing
            (with_icc, s_on), (without, s_off) = to_rgb(pix, True), to_rgb(pix, False)
            row[2] += s_on
            row[3] += s_off
            row[4] = max(row[4], float(np.abs(np.asarray(with_icc, int) - np.asarray(without, int)).max()))
            if (pix.colorspace.n == 4 and not picked and len(both_ways) < args.images
                    and min(pix.width, pix.height) >= args.min_side):
                both_ways.append((with_icc, without))
                picked = True
    for name, (n, mpix, s_on, s_off, diff) in sorted(cost.items(), key=lambda kv: -kv[1][2]):
        print(f"{name}: {n:.0f} images, {mpix:.1f} Mpix; to RGB {s_on:.2f} CPU-s with ICC, {s_off:.2f} without; "
              f"largest difference {diff:.0f} levels")
    if not both_ways:
        return
    embedder = Embedder.load(None)
    fusion = PixelFusion.from_meta(embedder.meta)
    heads = np.ravel(embedder.score(embedder.embed([a for a, _ in both_ways]), embedder.embed([b for _, b in both_ways])))
    found = [align_pair(a, b, fusion.align) for a, b in both_ways] if fusion is not None else []
    print(f"{len(both_ways)} CMYK images converted both ways: head score median {statistics.median(heads):.2f}, "
          f"lowest {heads.min():.2f}")
    if found:
        print(f"pixel check: correlation median {statistics.median(f.correlation for f in found):.3f}, lowest "
              f"{min(f.correlation for f in found):.3f}; detail lowest {min(f.detail for f in found):.2f}")


if __name__ == "__main__":
    main()
