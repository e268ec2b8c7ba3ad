"""CPU seconds a real PDF costs to extract, as a scan's extraction worker runs it, against another revision.

    python benchmarks/bench_extract_cpu.py PDF_FOLDER [--every 5] [--docs 20] [--runs 3] [--baseline REV]

Takes every `--every`-th PDF of PDF_FOLDER (sorted by name), at most `--docs`, and times
`jobs.extract_workers.extract_guarded` on each in one process of one thread (after a warm-up
document), `--runs` times. With `--baseline REV` the same is done with that git revision's code
(exported to a temporary folder), the runs alternating with this checkout's. Prints per variant
the median over runs of the total and of the mean CPU seconds a document, the speed-up, and
whether both variants' output is the same: a digest of every record (ids, pages, boxes, flags,
parents, the PNG bytes) and of every document's errors.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_child(code: Path, pdfs: list[Path], root: Path) -> dict[str, object]:
    """Time and digest the extraction of `pdfs` with the code in `code`, in a fresh interpreter."""
    out = subprocess.run([sys.executable, __file__, "--child", str(code), str(root), *map(str, pdfs)],
                         check=True, capture_output=True, text=True, cwd=tempfile.gettempdir()).stdout
    found = json.loads(out.strip().splitlines()[-1])
    if Path(found["code"]).resolve() != code.resolve():  # an installed copy came first on the path
        raise RuntimeError(f"the child ran the code in {found['code']}, not {code}")
    return dict(found)


def child(code: Path, root: Path, pdfs: list[Path]) -> None:
    """The measurement itself (`--child`): per-document CPU seconds and the output digest, as JSON on stdout."""
    sys.path.insert(0, str(code))
    sys.modules.setdefault("pymupdf.layout", None)  # as `scanner` does (a baseline's may not)
    import torch

    torch.set_num_threads(1)
    import scanner
    from jobs.extract_workers import extract_guarded
    from scanner.extract import ExtractLimits

    limits = ExtractLimits()
    extract_guarded(pdfs[0], root, limits, None)  # warm-up: imports, MuPDF start
    digest = hashlib.sha256()
    seconds = []
    for path in pdfs:
        started = time.process_time()
        result = extract_guarded(path, root, limits, None)
        seconds.append(time.process_time() - started)
        for rec in result.records:
            digest.update(repr((rec.figure_id, rec.doc, rec.page, rec.x0, rec.y0, rec.x1, rec.y1, rec.width,
                                rec.height, rec.parent_id, tuple(rec.flags))).encode())
            digest.update(hashlib.sha256(rec.image).digest())
        digest.update(repr([(e.input, e.stage, e.error) for e in result.errors]).encode())
    print(json.dumps({"seconds": seconds, "digest": digest.hexdigest(), "code": str(Path(scanner.__file__).parents[1])}))


def export_revision(rev: str, into: Path) -> Path:
    """The tree of git revision `rev`, written to `into`."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), Path(sys.argv[3]), [Path(p) for p in sys.argv[4:]])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pdfs", type=Path)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", help="also time this git revision's extraction (e.g. 34b62fa)")
    args = parser.parse_args()
    pdfs = sorted(args.pdfs.glob("*.pdf"))[::args.every][:args.docs]
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        variants = {"this checkout": REPO}
        if args.baseline:
            variants[f"baseline {args.baseline}"] = export_revision(args.baseline, Path(tmp))
        found: dict[str, list[dict[str, object]]] = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, code in variants.items():
                found[name].append(run_child(code, pdfs, args.pdfs))
    report: dict[str, object] = {"documents": len(pdfs), "runs": args.runs}
    for name, runs in found.items():
        totals = [sum(r["seconds"]) for r in runs]  # type: ignore[arg-type]
        report[name] = {"total_cpu_s": round(statistics.median(totals), 2),
                        "mean_cpu_s_per_doc": round(statistics.median(totals) / len(pdfs), 3),
                        "runs_total_cpu_s": [round(t, 2) for t in totals]}
    if args.baseline:
        new, old = report["this checkout"], report[f"baseline {args.baseline}"]
        report["speedup"] = round(old["total_cpu_s"] / new["total_cpu_s"], 3)  # type: ignore[index]
        digests = {str(r["digest"]) for runs in found.values() for r in runs}
        report["same_output"] = len(digests) == 1
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
