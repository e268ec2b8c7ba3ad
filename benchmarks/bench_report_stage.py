"""Time and memory of a scan's report stage alone, on a finished scan's store and report.csv.

    python benchmarks/bench_report_stage.py SCAN_OUT --docs CORPUS [--cards N] [--out DIR] [--json F]

Rebuilds the accepted pairs of the scan in SCAN_OUT from its report.csv (figure ids -> store
rows; the pixel check's and pose check's results from their columns), then runs what a scan's
report stage runs — `build_report_pairs` and `write_outputs` into DIR — and prints seconds and
the peak private memory (RssAnon, sampled from /proc every 20 ms) of each step, and what the
pairs hold: thumbnail and page-drawing bytes. `--cards N` draws N cards instead of the report's
5,000 (only the pairs with a card get pictures): the stage's memory against the cards it draws.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_keypoint_index import private_mb  # noqa: E402
from embedder.pose import Overlap  # noqa: E402
from embedder.verify import Alignment  # noqa: E402
from index.store import FigureStore  # noqa: E402
from jobs.match import MatchResult  # noqa: E402
from jobs.report_html import MAX_PAIRS  # noqa: E402
from jobs.report_rows import build_report_pairs, write_outputs  # noqa: E402
from scanner.discover import document_key, find_inputs  # noqa: E402


@contextmanager
def peak_private_mb(into: dict[str, float], period: float = 0.02) -> Iterator[None]:
    """Sample RssAnon while the block runs; `into["peak_mb"]`, `into["start_mb"]`, `into["seconds"]`."""
    into["start_mb"] = into["peak_mb"] = private_mb()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(period):
            into["peak_mb"] = max(into["peak_mb"], private_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    sampler.start()
    try:
        yield
    finally:
        into["seconds"] = time.perf_counter() - t0
        done.set()
        sampler.join()
        into["peak_mb"] = max(into["peak_mb"], private_mb())


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split())


def _fraction_of(region: tuple[float, ...], bbox: tuple[float, ...]) -> tuple[float, float, float, float]:
    """A region in page points as fractions of the panel `bbox` (the inverse of `jobs.report.within`)."""
    w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    return ((region[0] - bbox[0]) / w, (region[1] - bbox[1]) / h, (region[2] - bbox[0]) / w, (region[3] - bbox[1]) / h)


def match_from_report(scan_out: Path) -> MatchResult:
    """The accepted pairs of the scan in `scan_out`, as `match_store` returned them (as far as report.csv tells)."""
    store = FigureStore.open(scan_out / "store")
    ids = store.read_table(["row_id", "figure_id"])
    row_of = dict(zip(ids.column("figure_id").to_pylist(), ids.column("row_id").to_pylist()))
    a, b, score, head, group, alignments, overlaps = [], [], [], [], [], [], []
    with open(scan_out / "report.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            a.append(row_of[r["figure_id_a"]])
            b.append(row_of[r["figure_id_b"]])
            score.append(float(r["score"]))
            head.append(float(r["head_score"]))
            group.append(int(r["group"]))
            alignments.append(Alignment(float(r["pixel_match"]), float(r["pixel_detail"] or 0), r["transform"])
                              if r["pixel_match"] else None)
            overlaps.append(Overlap(float(r["overlap_score"]), 0.5, 0.5, r["transform"],
                                    _fraction_of(_floats(r["overlap_a"]), _floats(r["bbox_a"])),
                                    _fraction_of(_floats(r["overlap_b"]), _floats(r["bbox_b"])))
                            if r["overlap_score"] else None)
    return MatchResult(a=np.array(a, dtype=np.int64), b=np.array(b, dtype=np.int64), sim=np.array(head),
                       score=np.array(score), group=np.array(group), candidates=len(a), head=np.array(head),
                       alignment=alignments, overlap=overlaps)


def step(name: str, results: dict[str, Any], run: Callable[[], Any]) -> Any:
    """Run one step under the memory sampler, print and keep its seconds and peak."""
    into: dict[str, float] = {}
    with peak_private_mb(into):
        value = run()
    results[name] = {k: round(v, 2) for k, v in into.items()}
    print(f"{name}: {into['seconds']:.1f} s, private {into['start_mb']:.0f} -> peak {into['peak_mb']:.0f} MB", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scan_out", type=Path, help="a scan's output folder (store/ and report.csv)")
    parser.add_argument("--docs", type=Path, required=True, help="the folder that scan read (for page drawings)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: a temp dir)")
    parser.add_argument("--cards", type=int, default=MAX_PAIRS, help="cards drawn (the report's own number by default)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    match = step("read pairs", results, lambda: match_from_report(args.scan_out))
    root = args.docs.resolve()
    doc_roots = {document_key(p, root): p for p in find_inputs(root)}
    pairs = step("build pairs", results, lambda: build_report_pairs(args.scan_out / "store", match, doc_roots=doc_roots,
                                                                        cards=args.cards))
    thumbs = {id(p.thumbnail): len(p.thumbnail) for pair in pairs for p in (pair.a, pair.b)}
    pages = {id(p.page_image): len(p.page_image or b"") for pair in pairs for p in (pair.a, pair.b)}
    results["pairs"], results["cards"] = len(pairs), args.cards
    results["thumbnail_mb"] = round(sum(thumbs.values()) / 2**20, 1)
    results["page_drawing_mb"] = round(sum(pages.values()) / 2**20, 1)
    print(f"{len(pairs)} pairs: thumbnails {results['thumbnail_mb']} MB ({len(thumbs)} distinct objects), "
          f"page drawings {results['page_drawing_mb']} MB ({len(pages)})", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        step("write outputs", results, lambda: write_outputs(out, pairs, [], title="bench", summary={"pairs": len(pairs)},
                                                                 cards=args.cards))
        results["html_mb"] = round((out / "report.html").stat().st_size / 2**20, 1)
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
