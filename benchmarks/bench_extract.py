"""Extraction throughput: pages/s and panels/s of `reusescan extract` on a generated corpus.

    .venv/bin/python benchmarks/bench_extract.py [--docs 40] [--runs 3] [--workers N] [--factory]

The corpus comes from `training.corpus.make_corpus` (realistic synthetic papers:
text, a publisher logo, single and compound figures, JPEG and PNG rasters) when
that module is importable, else (or with `--factory`) from the scanner's test
factory (`tests/scanner/pdf_factory.py`: simpler pages of textured images and
compound figures). Each run extracts the whole corpus into a fresh folder with
the real command code (process pool included); the median of `--runs` runs is
printed, together with a single-process run (`workers=0`) that shows the
per-core rate without pool start-up.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def build_corpus(out: Path, docs: int, seed: int, use_factory: bool) -> tuple[Path, str]:
    """Write a corpus under `out`; returns (folder to scan, description)."""
    if not use_factory:
        try:
            from training.corpus import CorpusConfig, make_corpus
        except ImportError:
            use_factory = True
        else:
            make_corpus(out, CorpusConfig(docs=docs, reuse=max(1, docs // 4), seed=seed, workers=1, images=False))
            return out / "pdf", "training.corpus.make_corpus (synthetic papers)"
    from tests.scanner import pdf_factory as F

    for d in range(docs):
        doc = F.new_doc()
        logo = F.texture(30, 90, 0)
        for p in range(4):
            page = doc.new_page()
            F.add_image(page, (40, 20, 130, 50), F.png_bytes(logo))
            comp = F.compound_figure(rows=2, cols=2, panel=(120, 160), seed=seed * 1000 + d * 10 + p)
            h, w = comp.image.shape[:2]
            F.add_image(page, (60, 80, 60 + w, 80 + h), F.png_bytes(comp.image))
            F.add_image(page, (60, 450, 300, 630), F.jpeg_bytes(F.texture(180, 240, d * 10 + p)))
        F.save(doc, out / f"doc_{d:05d}.pdf")
    return out, "tests/scanner/pdf_factory (4 pages/doc: logo, 2x2 compound figure, JPEG figure)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=40)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--factory", action="store_true", help="use the test factory even if training.corpus exists")
    args = ap.parse_args(argv)

    from jobs.cmd_extract import run_extract
    from scanner.extract import ExtractLimits

    with tempfile.TemporaryDirectory(prefix="bench_extract_") as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        folder, source = build_corpus(tmp_path / "corpus", args.docs, args.seed, args.factory)
        print(f"corpus: {source}; {args.docs} documents built in {time.perf_counter() - t0:.1f} s")

        def one(workers: int, name: str) -> tuple[float, float, object]:
            out = tmp_path / name
            s = run_extract(folder, out, workers=workers, limits=ExtractLimits(), progress=False)
            return s.pages / s.seconds, s.panels / s.seconds, s

        rates = [one(args.workers, f"run{i}") for i in range(args.runs)]
        s = rates[0][2]
        print(
            f"corpus holds {s.documents} documents, {s.pages} pages, {s.records} records, "  # type: ignore[attr-defined]
            f"{s.panels} panels for matching, {s.errors} error lines"  # type: ignore[attr-defined]
        )
        pages = statistics.median(r[0] for r in rates)
        panels = statistics.median(r[1] for r in rates)
        print(f"workers={args.workers}: median of {args.runs} runs: {pages:.1f} pages/s, {panels:.1f} panels/s "
              f"(runs: {', '.join(f'{r[0]:.1f}' for r in rates)} pages/s)")
        single = one(0, "single")
        print(f"workers=0 (one process, no pool start-up): {single[0]:.1f} pages/s, {single[1]:.1f} panels/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
