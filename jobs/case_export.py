"""The evidence page of one manuscript: its confirmed pairs, to send to the authors (`reusescan case export`).

It gathers every pair whose latest verdict is `confirmed` and that involves the
manuscript, from every report of a scan folder or nightly store (report.csv and
dismissed.csv, newest first), and writes one self-contained HTML page: for each
finding (a figure pair and the panel pairs inside it, `jobs.findings`) both pages
drawn with the two regions outlined, the two panels and B turned/mirrored onto
A, the transform in words, the scores, and the reviewer's note. Images are
`data:` URIs and the page makes no network request, so it can be mailed as is.
Optionally the same page is printed to PDF by a headless Chromium when one is
installed (no PDF library is needed).
"""
from __future__ import annotations

import base64
import datetime as dt
import io
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from PIL import Image

from embedder.d4 import IDENTITY, apply_transform, describe_transform
from jobs.findings import Finding, group_findings, oriented
from jobs.page_thumbs import render_pages
from jobs.report import PanelRef, ReportPair, atomic_write_bytes, format_bbox
from jobs.report_html import STATIC_CSP
from jobs.review.data import ReviewTarget, pair_from_row, read_rows, resolve
from jobs.verdicts import CONFIRMED

log = logging.getLogger(__name__)

PAGE_PX = 900    # page drawings: large enough to read the figure, small enough to mail
PANEL_PX = 420
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class CaseError(Exception):
    """Nothing to export (no confirmed pair of that manuscript), or no way to make the PDF."""


@dataclass(frozen=True)
class Case:
    """One manuscript's confirmed findings with the verdict rows (pair key -> latest verdict row)."""

    manuscript: str
    findings: list[Finding]
    verdicts: Mapping[str, Mapping[str, Any]]


def _matches(doc: str, manuscript: str) -> bool:
    """The document key itself, or its file name (what an editor types)."""
    return doc == manuscript or doc.rsplit("/", 1)[-1] == manuscript


def collect_case(target: ReviewTarget, manuscript: str) -> Case:
    """The confirmed pairs of `manuscript` in every report of `target`, as findings."""
    latest = target.verdicts.latest()
    confirmed = {k for k, r in latest.items() if r["verdict"] == CONFIRMED}
    rows: dict[str, dict[str, str]] = {}
    for report_dir in target.reports.values():  # newest first: the newest row of a pair wins
        for row in read_rows(report_dir):
            if _matches(row["doc_a"], manuscript) or _matches(row["doc_b"], manuscript):
                rows.setdefault(row["figure_id_a"] + "|" + row["figure_id_b"], row)
    hashes = target.hashes([r["figure_id_a"] for r in rows.values()] + [r["figure_id_b"] for r in rows.values()])
    pairs = [p for p in (pair_from_row(r, hashes) for r in rows.values()) if p.pair_key in confirmed]
    unique = list({p.pair_key: p for p in pairs}.values())
    if not unique:
        docs = sorted({d for r in latest.values() if r["verdict"] == CONFIRMED for d in (r["doc_a"], r["doc_b"])})
        raise CaseError(f"no confirmed pair involves {manuscript!r}; documents with confirmed pairs: "
                        f"{', '.join(docs) or 'none'}")
    return Case(manuscript, group_findings(unique), {k: latest[k] for k in (p.pair_key for p in unique)})


def _uri(data: bytes | None, max_px: int, transform: str = IDENTITY) -> str | None:
    if not data:
        return None
    img: Image.Image = Image.open(io.BytesIO(data))
    img.load()
    img = img.convert("RGB")
    if transform != IDENTITY:
        img = apply_transform(img, transform)
    if max(img.size) > max_px:
        img.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


class _Pictures:
    """Panels from the store and pages drawn from the source files, each drawn once."""

    def __init__(self, target: ReviewTarget, sources: Mapping[str, Path]) -> None:
        self.target = target
        self.sources = sources
        self._pages: dict[tuple[str, int], tuple[bytes, tuple[float, float]] | None] = {}
        self._panels: dict[str, bytes] = {}

    def panel(self, ref: PanelRef, transform: str = IDENTITY) -> str | None:
        if ref.figure_id not in self._panels:
            self._panels.update(self.target.images([ref.figure_id]))
        return _uri(self._panels.get(ref.figure_id), PANEL_PX, transform)

    def page(self, doc: str, page: int) -> tuple[str, tuple[float, float]] | None:
        key = (doc, page)
        if key not in self._pages:
            src = self.sources.get(doc)
            art = None
            if src is not None and src.exists():
                try:
                    art = render_pages(src, [page], max_px=PAGE_PX)[page]
                except Exception as exc:  # a page drawing is a nicety: the panels still make the case
                    log.warning("could not draw page %d of %s: %s", page, doc, exc)
            self._pages[key] = art
        art = self._pages[key]
        return None if art is None else (_uri(art[0], PAGE_PX) or "", art[1])


def _page_with_boxes(pics: _Pictures, doc: str, page: int, boxes: list[tuple[tuple[float, float, float, float], str]]) -> str:
    """The page drawn with each region outlined (percent-positioned boxes over the picture)."""
    art = pics.page(doc, page)
    if art is None:
        return f'<div class="nopage">page {page} of {_e(doc)}: source file not at hand</div>'
    uri, (w, h) = art
    outlines = "".join(
        f'<div class="box {cls}" style="left:{100 * b[0] / w:.2f}%;top:{100 * b[1] / h:.2f}%;'
        f'width:{100 * (b[2] - b[0]) / w:.2f}%;height:{100 * (b[3] - b[1]) / h:.2f}%"></div>' for b, cls in boxes)
    return (f'<figure class="page"><div class="pwrap"><img src="{uri}" alt="page {page} of {_e(doc)}">{outlines}</div>'
            f'<figcaption>{_e(doc)}, page {page}</figcaption></figure>')


def _scores(p: ReportPair) -> str:
    parts = [f"score {p.score:.3f}"]
    for label, value in (("similarity model", p.head_score), ("pixel match", p.pixel_match), ("fine detail", p.pixel_detail)):
        if value is not None:
            parts.append(f"{label} {value:.3f}")
    return " · ".join(parts)


def _img(uri: str | None, alt: str) -> str:
    return f'<img src="{uri}" alt="{_e(alt)}">' if uri else '<div class="nopage">image not kept in the store</div>'


def _finding_html(n: int, f: Finding, pics: _Pictures, verdicts: Mapping[str, Mapping[str, Any]]) -> str:
    p = f.head
    v = verdicts.get(p.pair_key, {})
    inner = [oriented(q, p) for q in f.panels]  # each panel pair the figure pair's way round
    boxes_a = [(p.a.bbox, "outer")] + [(a.bbox, "inner") for a, _, _ in inner]
    boxes_b = [(p.b.bbox, "outer")] + [(b.bbox, "inner") for _, b, _ in inner]
    panel_rows = "".join(
        f"<li>A [{_e(format_bbox(a.bbox))}] ↔ B [{_e(format_bbox(b.bbox))}]: B is A {_e(describe_transform(t))}; "
        f"{_e(_scores(q))}</li>" for q, (a, b, t) in zip(f.panels, inner))
    panels = f"<h3>Panels inside these regions</h3><ul>{panel_rows}</ul>" if f.panels else ""
    note = f'<p class="note">Reviewer’s note: {_e(v.get("note"))}</p>' if v.get("note") else ""
    kind = "two documents" if p.a.doc != p.b.doc else "one document"
    return (
        f'<section class="finding"><h2>Finding {n}: {_e(p.a.doc)} page {p.a.page} and {_e(p.b.doc)} page {p.b.page} ({kind})</h2>'
        f'<p class="what">Region B is region A <b>{_e(p.transform_phrase)}</b>. {_e(_scores(p))}.</p>'
        f'<p class="where">A: {_e(p.a.doc)}, page {p.a.page}, region {_e(format_bbox(p.a.bbox))} (PDF points, top-left origin). '
        f'B: {_e(p.b.doc)}, page {p.b.page}, region {_e(format_bbox(p.b.bbox))}.</p>'
        f'<div class="pages">{_page_with_boxes(pics, p.a.doc, p.a.page, boxes_a)}'
        f'{_page_with_boxes(pics, p.b.doc, p.b.page, boxes_b)}</div>'
        '<div class="panels">'
        f'<figure>{_img(pics.panel(p.a), "region A")}<figcaption>A</figcaption></figure>'
        f'<figure>{_img(pics.panel(p.b), "region B")}<figcaption>B as published</figcaption></figure>'
        f'<figure>{_img(pics.panel(p.b, p.transform or IDENTITY), "region B aligned to A")}'
        f'<figcaption>B {"turned/mirrored back" if p.transform not in (None, IDENTITY) else "as is"}, to compare with A</figcaption></figure>'
        f"</div>{panels}{note}"
        f'<p class="meta">Confirmed by {_e(v.get("reviewer") or "a reviewer")} on {_e(str(v.get("decided_at", ""))[:10])}.</p>'
        "</section>")


CSS = """
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1d2330;margin:24px auto;max-width:1100px;padding:0 20px}
h1{font-size:22px}h2{font-size:17px;margin:0 0 6px}h3{font-size:13px;margin:12px 0 4px}
.finding{border:1px solid #dfe3ea;border-radius:8px;padding:14px 18px;margin:18px 0;page-break-inside:avoid}
.pages{display:flex;gap:16px;flex-wrap:wrap}.page{margin:0;flex:1;min-width:300px}
.pwrap{position:relative;border:1px solid #c3c8d2;line-height:0}.pwrap img{width:100%;display:block}
.box{position:absolute}.box.outer{border:3px solid #c62828}.box.inner{border:2px dashed #2456c7}
.panels{display:flex;gap:16px;margin-top:12px;flex-wrap:wrap}.panels figure{margin:0;flex:1;min-width:200px;text-align:center}
.panels img{max-width:100%;max-height:320px;border:1px solid #dfe3ea}
figcaption{font-size:12px;color:#5b6475}.nopage{padding:30px;background:#f4f5f7;color:#5b6475;text-align:center}
.meta,.where{font-size:12.5px;color:#5b6475}.note{background:#fff6ea;padding:6px 10px;border-radius:4px}
"""


def render_case_html(case: Case, pics: _Pictures) -> str:
    """The whole evidence page (self-contained: data: URIs, inline CSS, no script, no network)."""
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    n_pairs = sum(len(f.pairs) for f in case.findings)
    body = "".join(_finding_html(i, f, pics, case.verdicts) for i, f in enumerate(case.findings, start=1))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(STATIC_CSP)}">
<title>Image reuse: {_e(case.manuscript)}</title><style>{CSS}</style></head>
<body data-findings="{len(case.findings)}" data-pairs="{n_pairs}">
<h1>Image reuse in {_e(case.manuscript)}</h1>
<p>{len(case.findings)} finding(s), {n_pairs} image pair(s) confirmed by the editorial office after review
(prepared {date}). For each finding, both pages are shown with the regions outlined in red (panels inside
them in blue), then the two regions side by side and region B turned or mirrored back so that it can be
compared with region A directly.</p>
{body}
<p class="meta">Scores: the similarity model’s probability that both regions show the same content, refined by
aligning their pixels (0–1). Coordinates are in PDF points from the page’s top-left corner.</p>
</body></html>
"""


def source_files(store_dir: Path, docs: set[str], docs_root: Path | None = None) -> dict[str, Path]:
    """doc -> its source file: under `docs_root` when given and there, else where the store recorded it (scan, nightly)."""
    from jobs.nightly import load_sources

    recorded = load_sources(store_dir)
    out = {}
    for doc in docs:
        if docs_root is not None and (docs_root / doc).is_file():
            out[doc] = docs_root / doc
        elif doc in recorded:
            out[doc] = recorded[doc]
    return out


def find_chromium() -> str | None:
    """A Chromium/Chrome on PATH (for the PDF), or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def print_pdf(html_path: Path, pdf_path: Path, timeout: float = 120.0) -> Path:
    """Print the page to PDF with headless Chromium (CaseError when none is installed or it fails)."""
    binary = find_chromium()
    if binary is None:
        raise CaseError("no chromium on PATH to print the PDF (apt-get install chromium), the HTML is written")
    with tempfile.TemporaryDirectory(prefix="reusescan-pdf-") as profile:
        cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               f"--user-data-dir={profile}", "--no-pdf-header-footer", f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not pdf_path.exists():
        raise CaseError(f"chromium could not print the PDF: {(proc.stderr or proc.stdout)[-300:]}")
    return pdf_path


def export_case(path: Path, manuscript: str, out_dir: Path, *, docs_root: Path | None = None,
                pdf: bool = False) -> list[Path]:
    """Write OUT/<manuscript>-case.html (and .pdf); the files written. ReviewError / CaseError when impossible."""
    target = resolve(path)
    case = collect_case(target, manuscript)
    docs = {d for f in case.findings for p in f.pairs for d in (p.a.doc, p.b.doc)}
    sources = source_files(target.store_dir, docs, docs_root)
    stem = manuscript.rsplit("/", 1)[-1].rsplit(".", 1)[0] or "case"
    html_path = atomic_write_bytes(out_dir / f"{stem}-case.html",
                                   render_case_html(case, _Pictures(target, sources)).encode("utf-8"))
    written = [html_path]
    if pdf:
        written.append(print_pdf(html_path, out_dir / f"{stem}-case.pdf"))
    return written
