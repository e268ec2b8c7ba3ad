"""The scan reports: `report.csv`, `errors.csv` and the self-contained `report.html`.

This module is pure: it turns a list of already scored pairs (`ReportPair`, each
holding two `PanelRef` with provenance and thumbnail bytes) into files. It knows
nothing of Ray, the model or the index, so the pipeline (and anything else, such
as the nightly job) only has to build `ReportPair` objects and call the writers.

Transform convention: `ReportPair.transform` names the one of the 8 rotations /
flips (the dihedral group D4) that maps panel **b onto panel a**, i.e.
``apply_transform(b, pair.transform) ≈ a``. The names, their order and how they
act are owned by `embedder.d4` (re-exported here for the report's callers).

All writes are atomic (temporary file in the same folder, then `os.replace`), so
a crashed or restarted run never leaves a half-written report behind.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from embedder.d4 import (  # noqa: F401  (re-exported: the transform names are owned by embedder.d4)
    D4_NAMES,
    IDENTITY,
    TRANSFORM_NAMES,
    apply_to_array,
    apply_transform,
    describe_transform,
    inverse_transform,
    transform_name,
)
from scanner.records import format_bbox, parse_bbox  # noqa: F401  (re-exported: the report contract's bbox text)

log = logging.getLogger(__name__)

KIND_INTER = "inter"  # the two panels come from two different documents
KIND_INTRA = "intra"  # the two panels come from one document

# How the two panels of a pair relate (`relation` column): legitimate look-alikes (a channel beside
# its merge, serial sections, consecutive slices) are mostly pieces of one figure or one paper.
SAME_FIGURE = "same figure"  # two pieces of one extracted figure
SAME_PAPER = "same paper"  # one document, two figures
OTHER_PAPER = "other paper"  # two documents
RELATIONS: tuple[str, ...] = (SAME_FIGURE, SAME_PAPER, OTHER_PAPER)

#: The two sides of a pair: document (relative path), 1-based page, bbox text (`format_bbox`).
PAIR_COLUMNS: tuple[str, ...] = ("doc_a", "page_a", "bbox_a", "doc_b", "page_b", "bbox_b")
#: The required `report.csv` columns of the report contract (other tools rely on them), first and in this order.
REPORT_COLUMNS: tuple[str, ...] = ("score", *PAIR_COLUMNS, "kind")
#: The extra columns written after them.
EXTRA_COLUMNS: tuple[str, ...] = (
    "group", "transform", "figure_id_a", "figure_id_b", "head_score", "pixel_match", "pixel_detail",
    "verdict", "pair_key", "finding", "overlap_score", "overlap_a", "overlap_b", "relation", "channel_of",
)
#: Every `report.csv` column, in the order written.
CSV_COLUMNS: tuple[str, ...] = REPORT_COLUMNS + EXTRA_COLUMNS
ERROR_COLUMNS: tuple[str, ...] = ("input", "stage", "error")


def transform_grey(image: Image.Image, size: int = 32) -> np.ndarray:
    """`image` in grey squashed to `size`×`size` (uint8): what `best_transform` compares of a panel."""
    return np.asarray(image.convert("L").resize((size, size), Image.Resampling.BILINEAR))


def best_transform(grey_a: np.ndarray, grey_b: np.ndarray) -> tuple[str, float]:
    """Best of the 8 transforms mapping panel b onto panel a (their `transform_grey`s) by normalised
    correlation; `(name, correlation)`. Identity is tried first, so ties (symmetric or flat panels) keep it."""
    def prep(grey: np.ndarray) -> np.ndarray:
        arr = grey.astype(np.float64)
        arr = arr - arr.mean()
        norm = np.linalg.norm(arr)
        return arr / norm if norm > 0 else arr

    target, base = prep(grey_a), prep(grey_b)
    best_name, best_corr = IDENTITY, -2.0
    for view_index, name in enumerate(D4_NAMES):
        corr = float((apply_to_array(base, view_index) * target).sum())
        if corr > best_corr + 1e-9:
            best_name, best_corr = name, corr
    return best_name, best_corr


def estimate_transform(a: Image.Image, b: Image.Image, size: int = 32) -> tuple[str, float]:
    """Best of the 8 transforms mapping `b` onto `a` by normalised correlation of small grey copies.

    A cheap fallback when the matcher does not say which orientation matched:
    both panels are squashed to `size`×`size` (so a crop or a 90° turn of a
    non-square panel still lines up roughly) and the transform with the highest
    Pearson correlation wins. Returns `(name, correlation)`.
    """
    return best_transform(transform_grey(a, size), transform_grey(b, size))


@dataclass(frozen=True)
class PanelRef:
    """One side of a reported pair: where the panel is, and what it looks like.

    `doc` is the path relative to the scanned root (POSIX separators), `page` is
    1-based, `bbox` is (x0, y0, x1, y1) in PDF points with a top-left origin (for
    image files: the whole image, pixels taken as points). `thumbnail` is PNG or
    JPEG bytes of the panel; `page_image` optional PNG/JPEG bytes of the whole page
    drawn small, and `page_size` the page's (width, height) in points so that the
    bbox can be highlighted on it. `image_sha256` is the content hash of the panel
    image kept in the store (`jobs.verdicts.panel_hash`), "" when unknown: it keys
    the reviewers' verdicts.
    """

    doc: str
    page: int
    bbox: tuple[float, float, float, float]
    figure_id: str
    thumbnail: bytes
    page_image: bytes | None = None
    page_size: tuple[float, float] | None = None
    image_sha256: str = ""

    def __post_init__(self) -> None:
        if self.page < 1:
            raise ValueError(f"page is 1-based, got {self.page} for {self.doc!r}")
        if len(self.bbox) != 4:
            raise ValueError(f"bbox needs 4 numbers, got {self.bbox!r}")
        object.__setattr__(self, "bbox", tuple(float(v) for v in self.bbox))
        if self.page_size is not None:
            w, h = (float(v) for v in self.page_size)
            if w <= 0 or h <= 0:
                raise ValueError(f"page_size must be positive, got {self.page_size!r}")
            object.__setattr__(self, "page_size", (w, h))


def content_pair_key(hash_a: str, hash_b: str) -> str:
    """The order-independent key of two panels by content: their sha256 hashes, sorted, joined by ':'.

    Owned here (the report's `pair_key` column); the verdict store keys decisions by it.
    """
    if not hash_a or not hash_b:
        raise ValueError("a pair key needs both panels' hashes")
    lo, hi = sorted((hash_a, hash_b))
    return f"{lo}:{hi}"


def pair_kind(a: PanelRef, b: PanelRef) -> str:
    """`intra` when both panels come from one document, else `inter`."""
    return KIND_INTRA if a.doc == b.doc else KIND_INTER


def relation_of(doc_a: str, doc_b: str, figure_a: str, figure_b: str, parent_a: str = "", parent_b: str = "") -> str:
    """`same figure` when two panels are pieces of one figure (or a figure and its piece), else by document.

    `parent_*` are the store's parent ids ("" for a whole figure).
    """
    if doc_a != doc_b:
        return OTHER_PAPER
    if (parent_a and parent_a in (parent_b, figure_b)) or (parent_b and parent_b == figure_a):
        return SAME_FIGURE
    return SAME_PAPER


def pair_relation(a: PanelRef, b: PanelRef, parent_a: str = "", parent_b: str = "") -> str:
    """`relation_of` two report panels."""
    return relation_of(a.doc, b.doc, a.figure_id, b.figure_id, parent_a, parent_b)


@dataclass(frozen=True)
class ReportPair:
    """A scored suspicious pair of panels.

    `score` is the probability in [0, 1] that the two panels show the same content:
    the similarity head's, refined by the pixel check when the model is calibrated
    for it (then `head_score` keeps the head alone). `kind` is derived from
    the documents when left as None (and checked against them when given).
    `group_id` joins pairs that belong to one cluster of copies (connected
    components over the reported pairs); `finding_id` joins a figure pair and the
    panel pairs nested inside it (`jobs.findings`). `transform` maps b onto a (see the module
    docstring), or None when not estimated. `extra` is free-form metadata shown
    on the card (string keys, short values).
    """

    score: float
    a: PanelRef
    b: PanelRef
    kind: str | None = None
    group_id: int = 0
    transform: str | None = IDENTITY
    extra: dict[str, Any] = field(default_factory=dict)
    head_score: float | None = None  # the BTA head alone, when `score` also weighs the pixel check
    pixel_match: float | None = None  # correlation of the pixel check's placement, when it ran
    pixel_detail: float | None = None  # correlation of that placement's fine detail (embedder.verify)
    verdict: str = ""  # the reviewers' latest verdict (jobs.verdicts.REPORT_VERDICTS), "" when none
    finding_id: int = 0  # the finding (one reuse: a figure pair and the panel pairs inside it, jobs.findings); 0: unset
    # a crop or partial copy found by the pose check: the correlation of the region the
    # two panels share and that region in each panel (PDF points, as bbox)
    overlap_score: float | None = None
    overlap_a: tuple[float, float, float, float] | None = None
    overlap_b: tuple[float, float, float, float] | None = None
    relation: str = ""  # RELATIONS; "" derives it from the documents (same paper / other paper)
    channel_of: str = ""  # "b is the green channel of a" when one panel is one channel of the other, a merge (jobs.channels)

    @property
    def pair_key(self) -> str:
        """The order-independent content key of the two panels (`jobs.verdicts.pair_key`), "" when unknown."""
        ha, hb = self.a.image_sha256, self.b.image_sha256
        return content_pair_key(ha, hb) if ha and hb else ""

    def __post_init__(self) -> None:
        score = float(self.score)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {score}")
        object.__setattr__(self, "score", score)
        expected = pair_kind(self.a, self.b)
        if self.kind is None:
            object.__setattr__(self, "kind", expected)
        elif self.kind != expected:
            raise ValueError(f"kind {self.kind!r} does not match the documents ({expected!r}): {self.a.doc!r} / {self.b.doc!r}")
        if not self.relation:
            object.__setattr__(self, "relation", pair_relation(self.a, self.b))
        elif self.relation not in RELATIONS or (self.relation == OTHER_PAPER) != (expected == KIND_INTER):
            raise ValueError(f"relation {self.relation!r} does not fit the documents {self.a.doc!r} / {self.b.doc!r}")
        if self.transform is not None and self.transform not in TRANSFORM_NAMES:
            raise ValueError(f"unknown transform {self.transform!r}; expected one of {sorted(TRANSFORM_NAMES)}")

    @property
    def transform_phrase(self) -> str:
        """How b looks compared with a, in words."""
        return describe_transform(self.transform)


@dataclass(frozen=True)
class ReportError:
    """One input that could not be processed: which, at what stage, and why."""

    input: str
    stage: str
    error: str


def order_key(score: float, a: PanelRef, b: PanelRef) -> tuple[Any, ...]:
    """Where a pair of `score` between panels a and b goes in the report: highest score first, ties by provenance."""
    return (-score, a.doc, a.page, a.bbox, b.doc, b.page, b.bbox, a.figure_id, b.figure_id)


def sort_pairs(pairs: Iterable[ReportPair]) -> list[ReportPair]:
    """Highest score first; ties broken by provenance so the order is reproducible (`order_key`)."""
    return sorted(pairs, key=lambda p: order_key(p.score, p.a, p.b))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | bytearray | Iterable[bytes]) -> Path:
    """Write `data` (bytes, or chunks of bytes written in turn) to `path` via a temporary file in the same folder and `os.replace`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in [data] if isinstance(data, (bytes, bytearray)) else data:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def _csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def pair_csv_row(pair: ReportPair) -> list[object]:
    """One `report.csv` row in `CSV_COLUMNS` order."""
    return [
        f"{pair.score:.4f}",
        pair.a.doc, pair.a.page, format_bbox(pair.a.bbox),
        pair.b.doc, pair.b.page, format_bbox(pair.b.bbox),
        pair.kind, pair.group_id, pair.transform or "",
        pair.a.figure_id, pair.b.figure_id,
        "" if pair.head_score is None else f"{pair.head_score:.4f}",
        "" if pair.pixel_match is None else f"{pair.pixel_match:.4f}",
        "" if pair.pixel_detail is None else f"{pair.pixel_detail:.4f}",
        pair.verdict, pair.pair_key, pair.finding_id or "",
        "" if pair.overlap_score is None else f"{pair.overlap_score:.4f}",
        "" if pair.overlap_a is None else format_bbox(pair.overlap_a),
        "" if pair.overlap_b is None else format_bbox(pair.overlap_b),
        pair.relation, pair.channel_of,
    ]


def write_report_csv(pairs: Iterable[ReportPair], path: str | os.PathLike[str]) -> Path:
    """Write `report.csv` (`REPORT_COLUMNS` first, then `EXTRA_COLUMNS`), highest score first.

    An empty report still has the header row.
    """
    ordered = sort_pairs(pairs)
    out = atomic_write_bytes(path, _csv_bytes(CSV_COLUMNS, (pair_csv_row(p) for p in ordered)))
    log.info("wrote %d pairs to %s", len(ordered), out)
    return out


def _error_row(err: ReportError | Mapping[str, object] | Sequence[object]) -> list[object]:
    if isinstance(err, ReportError):
        return [err.input, err.stage, err.error]
    if isinstance(err, Mapping):
        return [err.get("input", ""), err.get("stage", ""), err.get("error", "")]
    values = list(err)
    if len(values) != 3:
        raise ValueError(f"an error row needs (input, stage, error), got {err!r}")
    return values


def normalise_errors(errors: Iterable[ReportError | Mapping[str, object] | Sequence[object]] | None) -> list[ReportError]:
    """Accept `ReportError`s, dicts or 3-tuples; return `ReportError`s."""
    return [ReportError(*(str(v) for v in _error_row(e))) for e in (errors or [])]


def write_errors_csv(
    errors: Iterable[ReportError | Mapping[str, object] | Sequence[object]], path: str | os.PathLike[str]
) -> Path:
    """Write `errors.csv` with columns input, stage, error (header only when nothing failed)."""
    rows = [_error_row(e) for e in errors]
    out = atomic_write_bytes(path, _csv_bytes(ERROR_COLUMNS, rows))
    log.info("wrote %d errors to %s", len(rows), out)
    return out


# cards in one report.html by default (past `report_html.DEFER_FROM_CARDS` drawn a page at a time); every pair
# is in report.csv. A card's pictures are held while the report is built (~0.3 MB a card): this bounds the
# report stage's memory (`scan --cards`).
MAX_PAIRS = 1000


def write_report_html(
    pairs: Iterable[ReportPair],
    path: str | os.PathLike[str],
    *,
    title: str = "reusescan report",
    summary: Mapping[str, Any] | None = None,
    errors: Iterable[ReportError | Mapping[str, object] | Sequence[object]] | None = None,
    max_pairs: int | None = MAX_PAIRS,
) -> Path:
    """Write the self-contained, offline `report.html` (see `jobs.report_html`).

    Cards are drawn for the `max_pairs` highest-scoring pairs (None: all), the page says how
    many more are only in report.csv; from `report_html.DEFER_FROM_CARDS` cards on the cards are
    data drawn a page at a time and each distinct picture is kept once (docs/report.md).

    `summary` keys shown as tiles: documents, pages, panels, pairs, errors; a
    `timings` (or `stage_seconds`) dict of stage -> seconds is shown as time per
    stage; any other scalar keys (root, model, threshold, ...) as run details.
    `errors`, when given, are listed in a collapsible table.
    """
    from jobs.report_html import report_html_chunks  # report_html builds on this module: import when used

    chunks = report_html_chunks(
        list(pairs), title=title, summary=dict(summary or {}), errors=normalise_errors(errors), max_pairs=max_pairs
    )
    # written a chunk at a time: a large report's page is never one string in memory (let alone two, str and bytes)
    out = atomic_write_bytes(path, (chunk.encode("utf-8") for chunk in chunks))
    log.info("wrote %s (%.1f kB)", out, out.stat().st_size / 1024)
    return out


def within(bbox: tuple[float, float, float, float], box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A region given as fractions of a panel (`box`) in the panel's page coordinates (`bbox`)."""
    w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    return (bbox[0] + box[0] * w, bbox[1] + box[1] * h, bbox[0] + box[2] * w, bbox[1] + box[3] * h)
