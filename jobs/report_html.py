"""Render `report.html`: one self-contained page a reviewer opens offline.

Everything lives in the one file: thumbnails and page images as `data:` URIs,
inline CSS and a little vanilla JavaScript (sort, filter, flicker comparison, and
an image-decoding self-check used by the browser test), both kept as package data
in `jobs/report_assets/` and inlined into the page. No network request is
ever made. Every string that comes from the inputs (document names, figure ids,
extra metadata, summary values, error messages) goes through `html.escape`, and
the script never writes input text as HTML (it reads `dataset`/`textContent`).
From `DEFER_FROM_CARDS` cards on, the cards and the pictures (each once) are JSON data
blocks instead, and the script draws `PAGE_ITEMS` items a page, filtering over all of them.

Layout: a summary header (counts, time per stage, run details, unreadable
inputs), a sticky toolbar, then one card per pair. Pairs of a group with more
than two distinct panels are gathered under a group header; a figure pair and the
panel pairs nested inside it (one reuse, `jobs.findings`) are one card listing
those panel pairs. Each card shows
panel A, panel B, and B pre-transformed with PIL so it is aligned to A (the
suspected rotation/flip in words above it), plus each page drawn small with the
panel's box highlighted.
"""
from __future__ import annotations

import base64
import datetime as _dt
import functools
import io
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from html import escape
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

from PIL import Image

from embedder.d4 import IDENTITY, apply_transform, describe_transform
from jobs.findings import Finding, group_findings, oriented
from jobs.report import (
    KIND_INTER,
    MAX_PAIRS,
    SAME_FIGURE,
    SAME_PAPER,
    PanelRef,
    ReportError,
    ReportPair,
    sort_pairs,
)
from scanner.document import ERROR_GROUPS, error_group
from scanner.records import format_bbox

log = logging.getLogger(__name__)

THUMB_MAX_PX = 384       # panel thumbnails (shown in a 280 px box: sharp enough, small files)
PAGE_MAX_PX = 260        # page miniatures
PNG_BUDGET = 60_000      # above this a PNG thumbnail is re-encoded as JPEG when that is smaller
RELATION_WORDS = {SAME_FIGURE: "one figure", SAME_PAPER: "two figures"}  # the kind chip of a pair inside one document
#: report.html's policy: no network request of any kind (images are data: URIs, script and style inline).
STATIC_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
ASSETS_DIR = "report_assets"  # report.css and report.js, inlined into every page
SUMMARY_TILES = (("documents", "documents"), ("pages", "pages"), ("panels", "panels"), ("pairs", "pairs"), ("errors", "errors"))


@functools.cache
def _asset(name: str) -> str:
    """A file of `jobs/report_assets` (the page's CSS and script, shipped as package data)."""
    return resources.files("jobs").joinpath(ASSETS_DIR, name).read_text(encoding="utf-8")


def _e(value: object) -> str:
    """Escape any value for HTML text or a double-quoted attribute."""
    return escape(str(value), quote=True)


def _open_image(data: bytes | None) -> Image.Image | None:
    """Decode image bytes with PIL, or None when missing/undecodable (logged)."""
    if not data:
        return None
    try:
        img: Image.Image = Image.open(io.BytesIO(data))
        img.load()
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "no picture"
        log.warning("could not decode an embedded image (%d bytes): %s", len(data), exc)
        return None
    if img.mode not in ("RGB", "L"):
        if img.mode in ("RGBA", "LA", "P", "PA"):
            rgba = img.convert("RGBA")
            background = Image.new("RGB", rgba.size, (255, 255, 255))
            background.paste(rgba, mask=rgba.getchannel("A"))
            img = background
        else:
            img = img.convert("RGB")
    return img


def _data_uri(img: Image.Image, max_px: int, *, png_budget: int = PNG_BUDGET, jpeg_quality: int = 88) -> str:
    """Downscale to fit `max_px` and encode as PNG (or, past `png_budget` bytes, JPEG when smaller).

    zlib's default level, not its best: on real panels the best costs 2.7x the time for files 2 % smaller.
    """
    img = img.copy()
    if max(img.size) > max_px:
        img.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    png = io.BytesIO()
    img.save(png, format="PNG")
    data, mime = png.getvalue(), "image/png"
    if len(data) > png_budget:
        jpg = io.BytesIO()
        img.convert("RGB").save(jpg, format="JPEG", quality=jpeg_quality, optimize=True)
        if jpg.tell() < len(data):
            data, mime = jpg.getvalue(), "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class ImageSource(Protocol):
    """Where a card's pictures come from: `data:` URIs in report.html, URLs in the review app."""

    def panel_uri(self, ref: PanelRef, transform: str = IDENTITY) -> str | None:
        """The panel picture, turned/mirrored by `transform` (None: unavailable)."""

    def page_uri(self, ref: PanelRef) -> str | None:
        """The page drawn small (None: unavailable)."""


class _ImageCache:
    """Encode each distinct picture once (a panel or page often appears in many pairs)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[bytes, str, int], str | None] = {}

    def uri(self, data: bytes | None, transform: str = IDENTITY, max_px: int = THUMB_MAX_PX) -> str | None:
        return self._cached(data, transform, max_px) if data else None

    def _cached(self, data: bytes, transform: str, max_px: int) -> str | None:
        """The encoded picture of `data` turned by `transform` (None when it does not decode), encoded once."""
        key = (data, transform, max_px)
        if key not in self._cache:
            img = _open_image(data)
            if img is not None and transform != IDENTITY:
                img = apply_transform(img, transform)
            self._cache[key] = None if img is None else self._encode(img, max_px)
        return self._cache[key]

    def _encode(self, img: Image.Image, max_px: int) -> str:
        return _data_uri(img, max_px)

    def panel_uri(self, ref: PanelRef, transform: str = IDENTITY) -> str | None:
        return self.uri(ref.thumbnail, transform=transform)

    def page_uri(self, ref: PanelRef) -> str | None:
        return self.uri(ref.page_image, max_px=PAGE_MAX_PX)


DEFERRED_PREFIX = "#rsimg-"  # a picture's reference in a large report (see `_DeferredImages`)
#: From this many cards on, report.html keeps each distinct picture once and its cards as data, drawn a page at a
#: time: 3,000 cards in the page were too heavy (docs/report.md); smaller reports have every card and picture inline.
DEFER_FROM_CARDS = 200
DEFERRED_THUMB_PX = 256      # a large report's panel pictures (shown in a 280 px box)
DEFERRED_PNG_BUDGET = 12_000  # ... and past this a JPEG when smaller
DEFERRED_JPEG_QUALITY = 82


def _json_text(value: object) -> str:
    """`value` as JSON for a data block (`<` escaped, so no input text can close the element)."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def _json_list_script(element_id: str, values: Iterable[object]) -> Iterator[str]:
    """A JSON data block of the list `values`, an element a chunk: a large report's data is never one string."""
    yield f'<script type="application/json" id="{element_id}">['
    for i, value in enumerate(values):
        yield ("," if i else "") + _json_text(value)
    yield "]</script>"


class _DeferredImages(_ImageCache):
    """Each distinct picture once, in a JSON list; cards refer to it and the page's script fills them in.

    A panel in many pairs (and the page drawings, shared by every panel of a page) then costs its
    bytes once, and a browser decodes only the pictures of the cards it shows.
    """

    def __init__(self) -> None:
        super().__init__()
        self._ids: dict[str, int] = {}

    def uri(self, data: bytes | None, transform: str = IDENTITY, max_px: int = THUMB_MAX_PX) -> str | None:
        # "B aligned to A" is drawn by the script from B's picture (a canvas turned by the transform):
        # a third picture per card, kept out of the file.
        found = self._cached(data, IDENTITY, max_px) if data else None
        if found is None:
            return None
        ref = f"{DEFERRED_PREFIX}{self._ids.setdefault(found, len(self._ids))}"
        return ref if transform == IDENTITY else f"{ref}@{transform}"

    def _encode(self, img: Image.Image, max_px: int) -> str:
        return _data_uri(img, min(max_px, DEFERRED_THUMB_PX), png_budget=DEFERRED_PNG_BUDGET,
                         jpeg_quality=DEFERRED_JPEG_QUALITY)

    def script(self) -> Iterator[str]:
        """The pictures, once each, as a JSON list for the script (raw text to the HTML parser: nothing decoded)."""
        return _json_list_script("rs-images", self._ids)


def _fmt_number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _fmt_seconds(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return str(seconds)
    if s < 60:
        return f"{s:.1f} s"
    minutes, sec = divmod(s, 60)
    if minutes < 60:
        return f"{int(minutes)} min {sec:02.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} h {int(minutes):02d} min"


def _score_class(score: float) -> str:
    if score >= 0.9:
        return "s-high"
    if score >= 0.75:
        return "s-mid"
    return "s-low"


def _src(uri: str) -> str:
    """An <img>'s source attributes: the URI itself, or (large static reports) a reference the script fills in."""
    if uri.startswith(DEFERRED_PREFIX):
        ref, _, transform = uri[len(DEFERRED_PREFIX):].partition("@")
        turned = f' data-t="{_e(transform)}"' if transform else ""
        return f'data-img="{_e(ref)}"{turned} decoding="async"'
    return f'src="{uri}" loading="eager" decoding="sync"'


def _thumb(uri: str | None, alt: str, cls: str = "") -> str:
    if uri is None:
        return '<div class="thumb missing" role="img" aria-label="thumbnail unavailable">thumbnail unavailable</div>'
    return f'<div class="thumb"><img class="{cls}" {_src(uri)} alt="{_e(alt)}"></div>'


def _page_mini(ref: PanelRef, cache: ImageSource) -> str:
    """The page drawn small with the panel's bbox highlighted (percent-positioned overlay)."""
    if ref.page_size is None:
        return ""
    w, h = ref.page_size
    x0, y0, x1, y1 = ref.bbox

    def pct(v: float, total: float) -> float:
        return max(0.0, min(100.0, 100.0 * v / total))

    left, top = pct(min(x0, x1), w), pct(min(y0, y1), h)
    width, height = max(0.4, pct(max(x0, x1), w) - left), max(0.4, pct(max(y0, y1), h) - top)
    uri = cache.page_uri(ref)
    page = (
        f'<img {_src(uri)} alt="page {ref.page} of {_e(ref.doc)}">'
        if uri
        else '<div class="blank-page"></div>'
    )
    return (
        f'<div class="page" style="aspect-ratio: {w:.2f} / {h:.2f}" title="page {ref.page}: panel position">'
        f"{page}"
        f'<div class="hl" style="left:{left:.2f}%;top:{top:.2f}%;width:{width:.2f}%;height:{height:.2f}%"></div>'
        "</div>"
    )


def _panel_figure(label: str, ref: PanelRef, cache: ImageSource) -> str:
    return (
        '<figure class="panel">'
        f'<figcaption class="plabel"><span class="badge">{label}</span>'
        f'<span class="doc" title="{_e(ref.doc)}">{_e(ref.doc)}</span></figcaption>'
        f"{_thumb(cache.panel_uri(ref), f'panel {label}: {ref.doc} page {ref.page}', 'ithumb')}"
        '<div class="prov">'
        f'<div class="meta"><span>page <b>{ref.page}</b></span>'
        f'<span class="bbox" title="x0 y0 x1 y1 in PDF points, top-left origin">bbox {_e(format_bbox(ref.bbox))}</span>'
        f'<span class="fid" title="figure id">{_e(ref.figure_id)}</span></div>'
        f"{_page_mini(ref, cache)}"
        "</div></figure>"
    )


def _aligned_figure(pair: ReportPair, cache: ImageSource) -> str:
    if pair.transform is None:
        note = "orientation not estimated: B shown as is"
        uri = cache.panel_uri(pair.b)
    else:
        uri = cache.panel_uri(pair.b, transform=pair.transform)
        note = (
            "no rotation or mirroring needed"
            if pair.transform == IDENTITY
            else f'applied to B: <code>{_e(pair.transform)}</code>'
        )
    return (
        '<figure class="panel aligned">'
        '<figcaption class="plabel"><span class="badge b-al">B→A</span><span class="doc">B aligned to A</span></figcaption>'
        f"{_thumb(uri, 'panel B transformed to line up with panel A', 'ialigned')}"
        f'<div class="prov col"><div class="meta"><span>{note}</span></div>'
        '<p class="hint">Hover or tap this image to flicker between it and A.</p></div>'
        "</figure>"
    )


VERDICT_LABELS = (("confirmed", "confirm", "c"), ("dismissed", "dismiss", "d"), ("unsure", "unsure", "u"))


def _verdict_bar(pair: ReportPair) -> str:
    """The per-card decision controls: confirm / dismiss / unsure and a note (saved by the page's script)."""
    if not pair.pair_key:
        return '<div class="vbar" data-disabled="1"><span class="vhint">no content hash: verdicts unavailable</span></div>'
    buttons = "".join(
        f'<button type="button" class="vbtn v-{value}" data-set="{value}" title="{label} (key {key})">{label}</button>'
        for value, label, key in VERDICT_LABELS
    )
    state = pair.verdict or "none"
    return (
        f'<div class="vbar">{buttons}'
        f'<input class="vnote" type="text" placeholder="note (optional)" aria-label="note" autocomplete="off">'
        f'<span class="vstate" title="current verdict">{_e(state)}</span></div>'
    )


def _record(pair: ReportPair) -> str:
    """The pair's provenance as JSON, kept on the card so a verdict carries it into the record."""
    return json.dumps({
        "hash_a": pair.a.image_sha256, "hash_b": pair.b.image_sha256,
        "doc_a": pair.a.doc, "page_a": pair.a.page, "bbox_a": format_bbox(pair.a.bbox), "figure_id_a": pair.a.figure_id,
        "doc_b": pair.b.doc, "page_b": pair.b.page, "bbox_b": format_bbox(pair.b.bbox), "figure_id_b": pair.b.figure_id,
    }, sort_keys=True)


def _finding_panels(finding: Finding, cache: ImageSource) -> str:
    """The panel pairs nested in a finding's figure pair, listed small inside its card (each keeps its record)."""
    rows = []
    for p in finding.panels:
        a, b, transform = oriented(p, finding.head)  # listed the figure pair's way round: A's panel first
        aligned = cache.panel_uri(b, transform=transform) if transform else cache.panel_uri(b)
        pics = "".join(
            f'<img {_src(uri)} alt="{_e(alt)}">' if uri else '<span class="missing">n/a</span>'
            for uri, alt in ((cache.panel_uri(a), "panel A"), (aligned, "panel B aligned to A")))
        rows.append(
            f'<li class="fpair" data-pair-key="{_e(p.pair_key)}" data-verdict="{_e(p.verdict)}" data-record="{_e(_record(p))}">'
            f'<span class="fpics">{pics}</span>'
            f'<span class="fmeta"><b>{p.score:.3f}</b> · A p.{a.page} <span class="bbox">{_e(format_bbox(a.bbox))}</span>'
            f' · B p.{b.page} <span class="bbox">{_e(format_bbox(b.bbox))}</span> · B is A {_e(describe_transform(transform))}'
            f' · <span class="fverdict">{_e(p.verdict or "no verdict")}</span></span></li>')
    return (f'<section class="fpanels"><h3>{len(finding.panels)} panel pair(s) inside these figures, same reuse '
            f'(a verdict here applies to all of them)</h3><ul>{"".join(rows)}</ul></section>')


def _card_filter_fields(pair: ReportPair, finding: Finding | None) -> tuple[float, str, str]:
    """What the page's filters read of a card: its score (a finding's best pair), kind and documents (lower case)."""
    nested = finding is not None and bool(finding.panels)
    top = finding.score if finding is not None and nested else pair.score
    return top, pair.kind or "", "\n".join(sorted({pair.a.doc, pair.b.doc})).lower()


def _channel_chip(pair: ReportPair) -> str:
    """A chip saying one panel shows one channel of the other (a merge): often a legitimate pair of one figure."""
    if not pair.channel_of:
        return ""
    return f'<span class="chip channel" title="one fluorescence channel beside its merge is often legitimate">{_e(pair.channel_of)}</span>'


def render_card(pair: ReportPair, rank: int, cache: ImageSource, finding: Finding | None = None) -> str:
    """One pair's card (with `finding`: its figure pair, the panel pairs inside listed): report.html and the review app."""
    kind_label = "two documents" if pair.kind == KIND_INTER else f"one document, {RELATION_WORDS.get(pair.relation, '')}"
    extra = ""
    if pair.extra:
        items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pair.extra.items())
        extra = f'<dl class="extra">{items}</dl>'
    nested = finding is not None and bool(finding.panels)
    top, _, docs = _card_filter_fields(pair, finding)  # filters and sort see the finding's best pair
    finding_chip = (f'<span class="chip fchip" title="one reuse: these figures and the panels inside them">finding {finding.id}'
                    f' · {len(finding.pairs)} pairs · best {top:.3f}</span>' if finding is not None and nested else "")
    return (
        f'<article class="card" data-score="{top:.6f}" data-finding="{finding.id if finding is not None else 0}" data-kind="{_e(pair.kind)}" '
        f'data-relation="{_e(pair.relation)}" data-channel="{1 if pair.channel_of else 0}" '
        f'data-docs="{_e(docs)}" data-doc-key="{_e(min(pair.a.doc, pair.b.doc).lower())}" '
        f'data-rank="{rank}" data-group="{pair.group_id}" data-pair-key="{_e(pair.pair_key)}" '
        f'data-verdict="{_e(pair.verdict)}" data-record="{_e(_record(pair))}">'
        '<header class="chead">'
        f'<span class="rank">#{rank}</span>'
        f'<span class="score {_score_class(pair.score)}" title="similarity score (0–1)">'
        f'<span class="sval">{pair.score:.3f}</span><span class="sbar"><i style="width:{100 * pair.score:.1f}%"></i></span></span>'
        f'<span class="chip k-{_e(pair.kind)}">{_e(pair.kind)} · {kind_label}</span>'
        f'<span class="chip">group {pair.group_id}</span>{finding_chip}'
        f'{_channel_chip(pair)}'
        f'<span class="transform">B is A <b>{_e(pair.transform_phrase)}</b></span>'
        "</header>"
        '<div class="cbody">'
        f'{_panel_figure("A", pair.a, cache)}{_panel_figure("B", pair.b, cache)}{_aligned_figure(pair, cache)}'
        "</div>"
        f"{_finding_panels(finding, cache) if finding is not None and nested else ''}"
        f"{extra}"
        f"{_verdict_bar(pair)}"
        "</article>"
    )


def _group_members(pairs: Sequence[ReportPair]) -> set[str]:
    members: set[str] = set()
    for p in pairs:
        members.update((p.a.figure_id, p.b.figure_id))
    return members


def _grouped_errors(errors: Sequence[ReportError]) -> list[tuple[str, list[ReportError]]]:
    """errors.csv lines under the headings of `scanner.document.ERROR_GROUPS`, in that order."""
    groups: dict[str, list[ReportError]] = {heading: [] for heading in ERROR_GROUPS}
    for er in errors:
        groups[error_group(er.stage)].append(er)
    return [(heading, group) for heading, group in groups.items() if group]


def _errors_table(heading: str, errors: Sequence[ReportError]) -> str:
    """One collapsible table of errors.csv lines (an unreadable input is not a broken image: say which)."""
    rows = "".join(f"<tr><td>{_e(er.input)}</td><td>{_e(er.stage)}</td><td>{_e(er.error)}</td></tr>" for er in errors)
    return (f'<details class="errors"><summary>{len(errors)} {_e(heading)} (also in errors.csv)</summary>'
            f"<table><thead><tr><th>input</th><th>stage</th><th>error</th></tr></thead><tbody>{rows}</tbody></table></details>")


def _summary_html(summary: Mapping[str, Any], n_pairs: int, errors: Sequence[ReportError]) -> str:
    tiles = []
    for key, label in SUMMARY_TILES:
        value = summary.get(key)
        if value is None and key == "pairs":
            value = n_pairs
        if value is None and key == "errors" and errors:
            value = len(errors)
        if value is None:
            continue
        tiles.append(f'<div class="tile"><div class="tv">{_e(_fmt_number(value))}</div><div class="tl">{label}</div></div>')
    timings = summary.get("timings") or summary.get("stage_seconds") or {}
    timing_html = ""
    if isinstance(timings, Mapping) and timings:
        cells = "".join(f"<li><span>{_e(stage)}</span><b>{_e(_fmt_seconds(sec))}</b></li>" for stage, sec in timings.items())
        try:
            total = sum(float(v) for v in timings.values())
            cells += f'<li class="total"><span>total</span><b>{_e(_fmt_seconds(total))}</b></li>'
        except (TypeError, ValueError):
            pass
        timing_html = f'<div class="timings"><h3>Time per stage</h3><ul>{cells}</ul></div>'
    known = {k for k, _ in SUMMARY_TILES} | {"timings", "stage_seconds"}
    details = [(k, v) for k, v in summary.items() if k not in known and not isinstance(v, (Mapping, list, tuple, set))]
    details_html = ""
    if details:
        rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(_fmt_number(v))}</dd>" for k, v in details)
        details_html = f'<div class="details"><h3>Run</h3><dl>{rows}</dl></div>'
    errors_html = "".join(_errors_table(heading, group) for heading, group in _grouped_errors(errors))
    return (
        f'<section class="summary"><div class="tiles">{"".join(tiles)}</div>'
        f'<div class="side">{timing_html}{details_html}</div></section>{errors_html}'
    )


VERDICT_FILTERS = (
    ("open", "all but dismissed"), ("all", "all"), ("none", "no verdict yet"), ("confirmed", "confirmed"),
    ("dismissed", "dismissed"), ("unsure", "unsure"), ("touches-confirmed", "touches a confirmed panel"),
)


def _verdict_options() -> str:
    return "".join(f'<option value="{v}">{label}</option>' for v, label in VERDICT_FILTERS)


#: A large report's cards as data: (the item's HTML, its score, its document key, [card data per card]).
PagedItem = tuple[str, float, str, list[list[Any]]]
PAGE_ITEMS = 100  # items (a card, or a group of cards) drawn per page of a large report
_PAGER = ('<span class="pager"><button type="button" id="prevpage">‹ previous</button>'
          '<span id="pageinfo"></span><button type="button" id="nextpage">next ›</button></span>')


def _card_data(finding: Finding) -> list[Any]:
    """What a large report's script filters a card by without drawing it.

    Score, kind, documents, pair key, verdict, relation, channel (1: one panel a channel of the other).
    """
    top, kind, docs = _card_filter_fields(finding.head, finding)
    return [round(top, 6), kind, docs, finding.head.pair_key, finding.head.verdict, finding.head.relation,
            1 if finding.head.channel_of else 0]


def _paged_data(deferred: _DeferredImages | None, items: Sequence[PagedItem]) -> Iterator[str]:
    """In a large report: every card as data (drawn a page at a time by report.js) and the pictures once each."""
    if deferred is None:
        return
    yield from _json_list_script("rs-items", ({"h": html, "s": round(score, 6), "d": doc_key, "c": cards}
                                              for html, score, doc_key, cards in items))
    yield from deferred.script()
    yield (f"<style>.item{{content-visibility:auto;contain-intrinsic-size:auto 560px}}</style>"
           f'<script>{_asset("deferred_images.js")}</script>')


def report_html_chunks(
    pairs: Sequence[ReportPair],
    *,
    title: str = "reusescan report",
    summary: Mapping[str, Any] | None = None,
    errors: Sequence[ReportError] = (),
    max_pairs: int | None = MAX_PAIRS,
    images: ImageSource | None = None,
    verdict_mode: str = "local",
    csp: str = STATIC_CSP,
    toolbar_extra: str = "",
) -> Iterator[str]:
    """The whole report page, in chunks to write one after the other (the module docstring says what it shows).

    Only the `max_pairs` highest-scoring pairs get a card (None: all), so that a
    huge scan still yields a page a browser opens; the page says how many were left out.
    Dismissed pairs (`verdict == "dismissed"`) are counted apart and hidden until the
    verdict filter asks for them.

    The review app (`jobs.review`) draws the same page with `images` giving URLs,
    `verdict_mode="server"` (verdicts are POSTed instead of kept in the browser),
    its own `csp` and `toolbar_extra` (trusted HTML: the night picker).
    """
    summary = summary or {}
    everything = sort_pairs(pairs)
    ordered = everything if max_pairs is None else everything[: max(0, max_pairs)]
    left_out = len(everything) - len(ordered)
    deferred = _DeferredImages() if images is None and len(ordered) >= DEFER_FROM_CARDS else None
    cache: ImageSource = images if images is not None else deferred or _ImageCache()
    # one card per finding (a figure pair with the panel pairs nested inside it, jobs.findings), ranked by its best pair
    findings = group_findings(ordered)
    by_group: dict[int, list[Finding]] = defaultdict(list)
    for f in findings:
        by_group[f.head.group_id].append(f)

    blocks: list[PagedItem] = []
    emitted_groups: set[int] = set()
    for f in findings:
        pair = f.head
        members = by_group[pair.group_id]
        panels = _group_members([m.head for m in members])
        if len(panels) <= 2:
            doc_key = min(pair.a.doc, pair.b.doc).lower()
            blocks.append((f'<div class="item" data-score="{f.score:.6f}" data-doc-key="{_e(doc_key)}">'
                           f"{render_card(pair, f.id, cache, f)}</div>", f.score, doc_key, [_card_data(f)]))
            continue
        if pair.group_id in emitted_groups:
            continue
        emitted_groups.add(pair.group_id)
        docs = sorted({d for m in members for d in (m.head.a.doc, m.head.b.doc)})
        doc_list = "".join(f"<li>{_e(d)}</li>" for d in docs)
        cards = "".join(render_card(m.head, m.id, cache, m) for m in members)
        blocks.append((
            f'<section class="item group" data-score="{members[0].score:.6f}" data-doc-key="{_e(docs[0].lower())}">'
            f'<header class="ghead"><h2>Group {pair.group_id}</h2>'
            f"<span>{len(panels)} panels · {len(members)} pairs · {len(docs)} document(s) · top score {members[0].score:.3f}</span>"
            f'<ul class="gdocs">{doc_list}</ul></header>'
            f'<div class="gcards">{cards}</div></section>', members[0].score, docs[0].lower(), [_card_data(m) for m in members]
        ))

    all_docs = sorted({d for p in ordered for d in (p.a.doc, p.b.doc)})
    datalist = "".join(f'<option value="{_e(d)}"></option>' for d in all_docs)
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        tool = f"reusescan {version('reusescan')}"
    except PackageNotFoundError:  # a source tree that is not installed
        tool = "reusescan"
    empty_style = "" if not ordered else ' style="display:none"'
    empty_text = (
        "No suspicious pairs: nothing in this scan scored above the report threshold."
        if not ordered
        else "No pair matches the current filters."
    )
    # a large report draws its cards a page at a time from data (report.js), a small one has them all in the page
    body = "" if deferred is not None else "".join(html for html, *_ in blocks)
    truncated = (
        f'<p class="truncated">Showing the {len(ordered):,} highest-scoring of {len(everything):,} pairs; '
        f"{left_out:,} lower-scoring pairs are listed only in report.csv.</p>"
        if left_out
        else ""
    )
    yield f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">
<title>{_e(title)}</title>
<style>{_asset("report.css")}</style>
</head>
<body data-cards="{len(findings)}" data-page-cards="{PAGE_ITEMS if deferred is not None else 0}" data-verdict-mode="{_e(verdict_mode)}" data-pairs-total="{len(everything)}" data-images-ok="" data-images-broken="">
<header class="top">
<div class="titlebar"><h1>{_e(title)}</h1><span class="gen">{_e(tool)} · generated {_e(generated)}</span></div>
{_summary_html(summary, len(everything), errors)}
{truncated}
</header>
<nav class="toolbar" aria-label="sort and filter">
<label>Sort <select id="sort"><option value="score-desc">score, highest first</option><option value="score-asc">score, lowest first</option><option value="doc">document name</option></select></label>
<label>Min score <input id="minscore" type="range" min="0" max="1" step="0.01" value="0"><output id="minscore-out">0.00</output></label>
<label>Kind <select id="kind"><option value="all">all</option><option value="inter">inter (two documents)</option><option value="intra">intra (one document)</option><option value="same paper">intra, two figures</option><option value="same figure">intra, one figure</option><option value="channel">one panel a channel of the other</option></select></label>
<label>Document <input id="docfilter" type="search" list="doclist" placeholder="name contains…" autocomplete="off"></label>
<datalist id="doclist">{datalist}</datalist>
<label>Verdict <select id="verdict">{_verdict_options()}</select></label>
<label>Reviewer <input id="reviewer" type="text" placeholder="your name" autocomplete="off" size="12"></label>
{'<button type="button" id="export">export verdicts</button>' if verdict_mode == "local" else ""}
{toolbar_extra}
<span class="keys" title="keyboard shortcuts">j/k next/previous · c confirm · d dismiss · u unsure</span>
<span id="vstatus" class="vstatus" role="status"></span>
<span id="count" class="count">{len(findings)} of {len(findings)} pairs</span>
{_PAGER if deferred is not None else ""}
</nav>
<main id="results">
{body}
<div id="empty" class="empty"{empty_style}>{_e(empty_text)}</div>
</main>
<footer class="foot">Panel A and B are shown as found; “B aligned to A” is panel B turned/mirrored by the suspected transform so the two can be compared directly. Boxes on the small pages mark where each panel sits (coordinates in PDF points). This file is self-contained and works offline.</footer>
"""
    yield from _paged_data(deferred, blocks)
    yield f"""<script>{_asset("report.js")}</script>
</body>
</html>
"""

