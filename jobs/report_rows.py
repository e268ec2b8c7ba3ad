"""From accepted pairs of store rows to the report: ReportPairs with thumbnails, and the output files."""
from __future__ import annotations

import io
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from index.store import FigureStore, make_thumbnail
from jobs.channels import channel_of
from jobs.findings import assign_findings
from jobs.ingest import InputError
from jobs.match import MatchResult
from jobs.page_thumbs import render_pages
from jobs.report import (
    PanelRef,
    ReportError,
    ReportPair,
    estimate_transform,
    pair_relation,
    within,
    write_errors_csv,
    write_report_csv,
    write_report_html,
)
from jobs.report_html import PAGE_MAX_PX, THUMB_MAX_PX
from jobs.scoring import describe_placement
from jobs.verdicts import apply_verdicts, panel_hash, split_dismissed
from scanner.decode import encode_png

logger = logging.getLogger(__name__)

DISMISSED_CSV = "dismissed.csv"  # the pairs reviewers dismissed, in report.csv's columns
StoreRow = dict[str, Any]  # one row of the store as `read_table(...).to_pylist()` gives it
PairFilter = Callable[[StoreRow, StoreRow], bool]

WHOLE_PANEL_SCALE = 0.97  # a placement this close to the whole panel compares the panels' colours (channel_of)
_ROW_COLUMNS = ["row_id", "figure_id", "doc", "doc_sha256", "page", "x0", "y0", "x1", "y1", "parent_id"]


def build_report_pairs(store_dir: Path, match: MatchResult, *, doc_roots: dict[str, Path],
                       pair_filter: PairFilter | None = None) -> list[ReportPair]:
    """ReportPairs for the accepted pairs: thumbnails, page drawings, suspected transform.

    `doc_roots` maps a document's relative path to the file it came from (for page
    drawings); a document missing there is shown without its page.
    """
    if not len(match.a):
        return []
    store = FigureStore.open(store_dir)
    wanted = sorted(set(match.a.tolist()) | set(match.b.tolist()))
    rows = {r["row_id"]: r for r in store.read_table(_ROW_COLUMNS, row_ids=wanted).to_pylist()}
    unaligned = {x for a, b, al in zip(match.a.tolist(), match.b.tolist(), match.alignment) if al is None for x in (a, b)}
    thumbnails, images, hashes = _thumbnails(store, wanted, keep=unaligned)
    page_art = _draw_pages(rows.values(), doc_roots)
    refs: dict[int, PanelRef] = {}
    for rid, r in rows.items():
        art = page_art.get((r["doc"], int(r["page"])))
        refs[rid] = PanelRef(doc=r["doc"], page=int(r["page"]), bbox=(r["x0"], r["y0"], r["x1"], r["y1"]),
                             figure_id=r["figure_id"], thumbnail=thumbnails.get(rid, b""),
                             page_image=art[0] if art else None, page_size=art[1] if art else None,
                             image_sha256=hashes.get(rid, ""))
    out = []
    overlaps = match.overlap if match.overlap is not None else [None] * len(match.a)
    for a, b, score, sim, group, head_score, alignment, overlap in zip(
            match.a.tolist(), match.b.tolist(), match.score.tolist(), match.sim.tolist(), match.group.tolist(),
            match.head.tolist(), match.alignment, overlaps, strict=True):
        ra, rb = rows[a], rows[b]
        if pair_filter is not None and not pair_filter(ra, rb):
            continue
        ref_a, ref_b = refs[a], refs[b]
        region_a = region_b = None
        if overlap is not None:  # a crop or partial copy: outline the region the panels share on both thumbnails
            region_a, region_b = within(ref_a.bbox, overlap.box_a), within(ref_b.bbox, overlap.box_b)
            ref_a = replace(ref_a, thumbnail=outline(ref_a.thumbnail, overlap.box_a))
            ref_b = replace(ref_b, thumbnail=outline(ref_b.thumbnail, overlap.box_b))
        extra = {"cosine": f"{sim:.3f}", "head score": f"{head_score:.3f}"}
        if alignment is not None:  # the pixel check placed one panel on the other
            transform = alignment.transform
            extra["pixel match"] = f"{alignment.correlation:.2f} (detail {alignment.detail:.2f})"
            extra["placement"] = describe_placement(alignment)
        else:
            transform, corr = estimate_transform(Image.open(io.BytesIO(images[a])), Image.open(io.BytesIO(images[b])))
            extra["alignment"] = f"{corr:.2f}"
        if overlap is not None:
            transform = overlap.transform
            extra["shared region"] = (f"{overlap.correlation:.3f} over {overlap.share_a:.0%} of a and "
                                      f"{overlap.share_b:.0%} of b (outlined)")
        whole = alignment is None or (alignment.scale >= WHOLE_PANEL_SCALE and abs(alignment.angle) < 1.0)
        channel = channel_of(refs[a].thumbnail, refs[b].thumbnail, transform) if whole and overlap is None else ""
        out.append(ReportPair(score=float(score), a=ref_a, b=ref_b, group_id=int(group), transform=transform,
                              head_score=head_score, pixel_match=None if alignment is None else alignment.correlation,
                              pixel_detail=None if alignment is None else alignment.detail,
                              extra=extra, overlap_score=None if overlap is None else overlap.correlation,
                              overlap_a=region_a, overlap_b=region_b,
                              relation=pair_relation(ref_a, ref_b, ra["parent_id"] or "", rb["parent_id"] or ""),
                              channel_of=channel))
    # the reviewers' verdicts (dismissed pairs leave report.csv), and one finding id per reuse (jobs.findings)
    return assign_findings(apply_verdicts(out, store_dir))


def outline(thumbnail: bytes, box: tuple[float, float, float, float], colour: str = "#ff00ff") -> bytes:
    """The thumbnail (PNG) with the region `box` (fractions of its sides) outlined; unchanged when unreadable."""
    if not thumbnail:
        return thumbnail
    try:
        with Image.open(io.BytesIO(thumbnail)) as im:
            img = im.convert("RGB")
    except OSError:
        return thumbnail
    w, h = img.size
    ImageDraw.Draw(img).rectangle((box[0] * w, box[1] * h, max(box[0] * w, box[2] * w - 1), max(box[1] * h, box[3] * h - 1)),
                                  outline=colour, width=max(1, round(min(w, h) / 60)))
    return encode_png(np.asarray(img))  # a working copy, like the thumbnail it outlines


def _thumbnails(store: FigureStore, row_ids: list[int], *,
                keep: set[int]) -> tuple[dict[int, bytes], dict[int, bytes], dict[int, str]]:
    """Report thumbnails of `row_ids`, the stored images of those in `keep` (pairs the pixel check did
    not place, whose transform is estimated from the images) and every panel's content hash (the
    reviewers' verdicts key on it). One store file's images are read at a time, so the driver holds
    thumbnails, not the corpus's images."""
    thumbnails: dict[int, bytes] = {}
    images: dict[int, bytes] = {}
    hashes: dict[int, str] = {}
    for rel in store.files:
        table = store.read_table(["row_id", "image"], files=[rel], row_ids=row_ids)
        for rid, image in zip(table.column("row_id").to_pylist(), table.column("image").to_pylist()):
            thumbnails[rid] = make_thumbnail(image, THUMB_MAX_PX, fmt="PNG") or b""
            if image:
                hashes[rid] = panel_hash(image)
            if rid in keep:
                images[rid] = image
    return thumbnails, images, hashes


def _draw_pages(rows: Iterable[StoreRow], doc_roots: dict[str, Path]) -> dict[tuple[str, int], tuple[bytes, tuple[float, float]]]:
    """(doc, page) -> (page drawing, page size in pt) for the pages of `rows` whose source file is at hand."""
    pages_needed: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        pages_needed[r["doc"]].add(int(r["page"]))
    page_art: dict[tuple[str, int], tuple[bytes, tuple[float, float]]] = {}
    for doc, pages in pages_needed.items():
        src = doc_roots.get(doc)
        if src is None or not src.exists():
            continue
        try:
            for page, art in render_pages(src, pages, max_px=PAGE_MAX_PX).items():
                page_art[(doc, page)] = art
        except Exception as exc:  # a page drawing is a nicety; never lose the report over it
            logger.warning("could not draw pages of %s: %s", doc, exc)
    return page_art


def write_outputs(out_dir: Path, pairs: list[ReportPair], errors: Iterable[InputError], *, title: str,
                  summary: dict[str, Any]) -> None:
    """report.csv, report.html, errors.csv and dismissed.csv into `out_dir` (each written atomically).

    Pairs a reviewer dismissed (`verdict == "dismissed"`) go to dismissed.csv, not
    report.csv; report.html keeps them, hidden unless its verdict filter asks for them.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    error_rows = [ReportError(*e) for e in errors]
    reported, dismissed = split_dismissed(pairs)
    write_report_csv(reported, out_dir / "report.csv")
    write_report_csv(dismissed, out_dir / DISMISSED_CSV)
    write_errors_csv(error_rows, out_dir / "errors.csv")
    write_report_html(pairs, out_dir / "report.html", title=title, summary=summary, errors=error_rows)
