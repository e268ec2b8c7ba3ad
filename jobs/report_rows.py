"""From accepted pairs of store rows to the report: ReportPairs with thumbnails, and the output files."""
from __future__ import annotations

import io
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import ray
from PIL import Image, ImageDraw

from index.store import FigureStore
from jobs.channels import channel_between, channel_look, is_single_channel
from jobs.findings import assign_findings
from jobs.ingest import InputError
from jobs.match import MatchResult
from jobs.page_thumbs import render_pages
from jobs.report import (
    MAX_PAIRS,
    PanelRef,
    ReportError,
    ReportPair,
    best_transform,
    order_key,
    pair_relation,
    transform_grey,
    within,
    write_errors_csv,
    write_report_csv,
    write_report_html,
)
from jobs.report_html import PAGE_MAX_PX, THUMB_MAX_PX
from jobs.scoring import describe_placement
from jobs.verdicts import apply_verdicts, panel_hash, split_dismissed
from scanner.decode import encode_png

if TYPE_CHECKING:  # types only: the pixel and pose checks' modules import torch
    from embedder.pose import Overlap
    from embedder.verify import Alignment

logger = logging.getLogger(__name__)

DISMISSED_CSV = "dismissed.csv"  # the pairs reviewers dismissed, in report.csv's columns
StoreRow = dict[str, Any]  # one row of the store as `read_table(...).to_pylist()` gives it
PairFilter = Callable[[StoreRow, StoreRow], bool]

WHOLE_PANEL_SCALE = 0.97  # a placement this close to the whole panel compares the panels' colours (`_compares_colours`)
_ROW_COLUMNS = ["row_id", "figure_id", "doc", "doc_sha256", "page", "x0", "y0", "x1", "y1", "parent_id"]


def build_report_pairs(store_dir: Path, match: MatchResult, *, doc_roots: dict[str, Path],
                       pair_filter: PairFilter | None = None, cards: int | None = MAX_PAIRS) -> list[ReportPair]:
    """ReportPairs for the accepted pairs: content hashes, suspected transform, channel relation, and
    for the `cards` pairs report.html draws (the first in its order; None: all) thumbnails and page drawings.

    The pictures of the other pairs would never be shown (report.csv lists them) and cost ~0.3 MB a pair,
    so they are not made: past the cards, the driver holds about a kilobyte a pair.
    `doc_roots` maps a document's relative path to the file it came from (for page
    drawings); a document missing there is shown without its page.
    """
    if not len(match.a):
        return []
    store = FigureStore.open(store_dir)
    xs, ys = match.a.tolist(), match.b.tolist()
    rows = {r["row_id"]: r for r in store.read_table(_ROW_COLUMNS, row_ids=sorted(set(xs) | set(ys))).to_pylist()}
    kept = [i for i, (a, b) in enumerate(zip(xs, ys)) if pair_filter is None or pair_filter(rows[a], rows[b])]
    places = {rid: PanelRef(doc=r["doc"], page=int(r["page"]), bbox=(r["x0"], r["y0"], r["x1"], r["y1"]),
                            figure_id=r["figure_id"], thumbnail=b"") for rid, r in rows.items()}
    carded = set(kept if cards is None or len(kept) <= cards else  # the first in the report's order get a card
                 sorted(kept, key=lambda i: order_key(float(match.score[i]), places[xs[i]], places[ys[i]]))[:max(0, cards)])
    pictured = {rid for i in carded for rid in (xs[i], ys[i])}
    overlaps = match.overlap if match.overlap is not None else [None] * len(xs)
    unaligned = {rid for i in kept if match.alignment[i] is None for rid in (xs[i], ys[i])}
    coloured = {rid for i in kept if _compares_colours(match.alignment[i], overlaps[i]) for rid in (xs[i], ys[i])}
    page_art = _pages_drawn_aside(_pages_needed([rows[rid] for rid in sorted(pictured)], doc_roots))
    facts = _panel_facts(store, sorted({rid for i in kept for rid in (xs[i], ys[i])}), pictured=pictured,
                         greys=unaligned, coloured=coloured)
    drawn = page_art()
    refs: dict[int, PanelRef] = {}
    for rid, place in places.items():
        art = drawn.get((place.doc, place.page)) if rid in pictured else None
        refs[rid] = replace(place, thumbnail=facts.thumbnails.get(rid, b""), page_image=art[0] if art else None,
                            page_size=art[1] if art else None, image_sha256=facts.hashes.get(rid, ""))
    out: dict[int, ReportPair] = {}
    need_channels: dict[int, str | None] = {}  # pair -> its transform, for the pairs of a single-channel panel and a merge
    for i in kept:
        a, b, alignment, overlap = xs[i], ys[i], match.alignment[i], overlaps[i]
        ref_a, ref_b = refs[a], refs[b]
        region_a = region_b = None
        if overlap is not None:  # a crop or partial copy: the region the panels share, outlined on a card's thumbnails
            region_a, region_b = within(ref_a.bbox, overlap.box_a), within(ref_b.bbox, overlap.box_b)
            if i in carded:
                ref_a = replace(ref_a, thumbnail=outline(ref_a.thumbnail, overlap.box_a))
                ref_b = replace(ref_b, thumbnail=outline(ref_b.thumbnail, overlap.box_b))
        extra = {"cosine": f"{match.sim[i]:.3f}", "head score": f"{match.head[i]:.3f}"}
        transform: str | None = None  # unknown when a panel has no readable image
        if alignment is not None:  # the pixel check placed one panel on the other
            transform = alignment.transform
            extra["pixel match"] = f"{alignment.correlation:.2f} (detail {alignment.detail:.2f})"
            extra["placement"] = describe_placement(alignment)
        elif a in facts.greys and b in facts.greys:  # not placed: the transform is estimated from the images
            transform, corr = best_transform(facts.greys[a], facts.greys[b])
            extra["alignment"] = f"{corr:.2f}"
        if overlap is not None:
            transform = overlap.transform
            extra["shared region"] = (f"{overlap.correlation:.3f} over {overlap.share_a:.0%} of a and "
                                      f"{overlap.share_b:.0%} of b (outlined)")
        if _compares_colours(alignment, overlap) and a in facts.single and b in facts.single \
                and facts.single[a] != facts.single[b]:
            need_channels[i] = transform
        out[i] = ReportPair(score=float(match.score[i]), a=ref_a, b=ref_b, group_id=int(match.group[i]),
                            transform=transform, head_score=float(match.head[i]),
                            pixel_match=None if alignment is None else alignment.correlation,
                            pixel_detail=None if alignment is None else alignment.detail,
                            extra=extra, overlap_score=None if overlap is None else overlap.correlation,
                            overlap_a=region_a, overlap_b=region_b,
                            relation=pair_relation(ref_a, ref_b, rows[a]["parent_id"] or "", rows[b]["parent_id"] or ""))
    logger.info("report: %d of %d pairs are a single-channel panel and a merge; comparing their colours",
                len(need_channels), len(kept))
    for i, channel in _channels(store, [(i, xs[i], ys[i], t) for i, t in need_channels.items()]).items():
        out[i] = replace(out[i], channel_of=channel)
    # the reviewers' verdicts (dismissed pairs leave report.csv), and one finding id per reuse (jobs.findings)
    return assign_findings(apply_verdicts([out[i] for i in kept], store_dir))


def _compares_colours(alignment: Alignment | None, overlap: Overlap | None) -> bool:
    """Does `channel_of` compare the two panels' colours? Only when one lies on the whole of the other, unturned."""
    return overlap is None and (alignment is None or (alignment.scale >= WHOLE_PANEL_SCALE and abs(alignment.angle) < 1.0))


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


@dataclass
class PanelFacts:
    """What the report needs of the panels of its pairs, read from the store one file at a time."""

    hashes: dict[int, str] = field(default_factory=dict)        # content hash (the reviewers' verdicts key on it)
    single: dict[int, bool] = field(default_factory=dict)       # shows one channel (`jobs.channels`), of `coloured` panels
    thumbnails: dict[int, bytes] = field(default_factory=dict)  # report thumbnails, of the pictured panels only
    greys: dict[int, np.ndarray] = field(default_factory=dict)  # `transform_grey`, of the panels of unaligned pairs only


def _panel_facts(store: FigureStore, row_ids: list[int], *, pictured: set[int], greys: set[int],
                 coloured: set[int]) -> PanelFacts:
    """`PanelFacts` of `row_ids`: hashes of all, single-channel flags of those in `coloured`, thumbnails of those in `pictured`,
    grey squares (whose transform is estimated, `best_transform`; 1 kB each) of those in `greys`. One store
    file's images are read at a time, so what the driver holds is those, not the images."""
    facts = PanelFacts()
    for rel in store.files:
        table = store.read_table(["row_id", "image"], files=[rel], row_ids=row_ids)
        for rid, image in zip(table.column("row_id").to_pylist(), table.column("image").to_pylist()):
            if not image:
                continue
            facts.hashes[rid] = panel_hash(image)
            full = _decoded(rid, image)
            if full is None:  # no pictures; the report still lists its pairs
                continue
            if rid in greys:
                facts.greys[rid] = transform_grey(full)
            thumbnail = _thumbnail(full)
            if rid in coloured:
                facts.single[rid] = is_single_channel(channel_look(thumbnail))
            if rid in pictured:
                facts.thumbnails[rid] = encode_png(np.asarray(thumbnail))
    return facts


CHANNEL_READ_PANELS = 256  # panels whose images are read at a time to compare a single channel with a merge (~40 MB)


def _channels(store: FigureStore, pairs: list[tuple[int, int, int, str | None]]) -> dict[int, str]:
    """`jobs.channels.channel_between` of each (pair, row a, row b, transform), `CHANNEL_READ_PANELS` panels at a time.

    Only pairs of a single-channel panel and a merge come here (`PanelFacts.single`): few, so their
    panels are read again rather than every panel's colours kept through the first read."""
    out: dict[int, str] = {}
    chunk: list[tuple[int, int, int, str | None]] = []
    panels: set[int] = set()
    for n, pair in enumerate(sorted(pairs, key=lambda p: (p[1], p[2]))):
        chunk.append(pair)
        panels |= {pair[1], pair[2]}
        if len(panels) >= CHANNEL_READ_PANELS or n == len(pairs) - 1:
            colours = _channel_colours(store, sorted(panels))
            out.update((i, channel_between(colours[a], colours[b], transform)) for i, a, b, transform in chunk
                       if a in colours and b in colours)
            chunk, panels = [], set()
    return out


def _channel_colours(store: FigureStore, row_ids: list[int]) -> dict[int, np.ndarray]:
    """`jobs.channels.channel_look` of each readable panel of `row_ids`, at the report thumbnail's resolution."""
    colours = {}
    table = store.read_table(["row_id", "image"], row_ids=row_ids)
    for rid, image in zip(table.column("row_id").to_pylist(), table.column("image").to_pylist()):
        full = _decoded(rid, image)
        if full is not None:
            colours[rid] = channel_look(_thumbnail(full))
    return colours


def _thumbnail(image: Image.Image) -> Image.Image:
    """`image` shrunk in place to the report thumbnail's size (`channel_of` compares panels at it too)."""
    image.thumbnail((THUMB_MAX_PX, THUMB_MAX_PX))
    return image


def _decoded(row_id: int, image: bytes | None) -> Image.Image | None:
    """The RGB picture of a stored panel image; None (and a warning) when it cannot be read."""
    try:
        with Image.open(io.BytesIO(image or b"")) as src:
            return src.convert("RGB")
    except OSError as exc:
        logger.warning("report: panel %d has no readable image (%s)", row_id, exc)
        return None


PageArt = dict[tuple[str, int], tuple[bytes, tuple[float, float]]]  # (doc, page) -> (page drawing, page size in pt)


def _pages_needed(rows: Iterable[StoreRow], doc_roots: dict[str, Path]) -> dict[str, tuple[Path, list[int]]]:
    """doc -> (its source file, the pages of `rows` on it), for the documents whose source file is at hand."""
    pages: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        pages[r["doc"]].add(int(r["page"]))
    return {doc: (src, sorted(wanted)) for doc, wanted in pages.items()
            if (src := doc_roots.get(doc)) is not None and src.exists()}


def _draw_pages(needed: dict[str, tuple[Path, list[int]]]) -> tuple[PageArt, dict[str, str]]:
    """The page drawings of `needed` (`_pages_needed`), and why each document that could not be drawn was not."""
    page_art: PageArt = {}
    failed: dict[str, str] = {}
    for doc, (src, pages) in needed.items():
        try:
            for page, art in render_pages(src, pages, max_px=PAGE_MAX_PX).items():
                page_art[(doc, page)] = art
        except Exception as exc:  # a page drawing is a nicety; never lose the report over it
            failed[doc] = f"{type(exc).__name__}: {exc}"
    return page_art, failed


_draw_pages_task = ray.remote(num_cpus=1, max_retries=0)(_draw_pages)
PAGE_DRAWINGS_TIMEOUT_S = 600.0  # a cluster with no CPU free for the drawing task: the driver draws them after this


def _pages_drawn_aside(needed: dict[str, tuple[Path, list[int]]]) -> Callable[[], PageArt]:
    """Start `_draw_pages` of `needed`; call the result for the drawings (a document that could not be drawn
    is left out, with a warning).

    With Ray up (a scan builds its report before stopping it), a Ray task draws them while the
    driver reads the panels (`_panel_facts`): the two took ~2 s each, one after the other. Without Ray,
    or when that task fails, the driver draws them when asked.
    """
    ref = _draw_pages_task.remote(needed) if needed and ray.is_initialized() else None

    def drawn() -> PageArt:
        found = None
        if ref is not None:
            try:
                found = ray.get(ref, timeout=PAGE_DRAWINGS_TIMEOUT_S)
            except ray.exceptions.RayError as exc:  # a lost worker, a timeout
                logger.warning("page drawings: the Ray task failed (%s); drawing them here", type(exc).__name__)
        page_art, failed = found if found is not None else _draw_pages(needed)
        for doc, why in failed.items():
            logger.warning("could not draw pages of %s: %s", doc, why)
        return page_art
    return drawn


def write_outputs(out_dir: Path, pairs: list[ReportPair], errors: Iterable[InputError], *, title: str,
                  summary: dict[str, Any], cards: int | None = MAX_PAIRS) -> None:
    """report.csv, report.html, errors.csv and dismissed.csv into `out_dir` (each written atomically).

    Pairs a reviewer dismissed (`verdict == "dismissed"`) go to dismissed.csv, not
    report.csv; report.html keeps them, hidden unless its verdict filter asks for them.
    report.html draws the `cards` first pairs (as many as `build_report_pairs` made pictures for).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    error_rows = [ReportError(*e) for e in errors]
    reported, dismissed = split_dismissed(pairs)
    write_report_csv(reported, out_dir / "report.csv")
    write_report_csv(dismissed, out_dir / DISMISSED_CSV)
    write_errors_csv(error_rows, out_dir / "errors.csv")
    write_report_html(pairs, out_dir / "report.html", title=title, summary=summary, errors=error_rows, max_pairs=cards)
