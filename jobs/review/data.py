"""What the review app shows: the reports of a scan folder or a nightly store, read back as ReportPairs.

A scan folder `OUT/` has `OUT/report.csv` and its store `OUT/store/`; a nightly
store `STORE/` has one report per night under `STORE/reports/<date>/`. Each
report's pairs are read from its report.csv and dismissed.csv (dismissed pairs
stay reviewable), and every panel is looked up in the store by figure id for
its content hash (the verdict key) and, on demand, its pixels.
"""
from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from index.store import MANIFEST, FigureStore
from jobs.report import IDENTITY, TRANSFORM_NAMES, PanelRef, ReportPair, apply_transform, parse_bbox
from jobs.report_html import THUMB_MAX_PX
from jobs.report_rows import DISMISSED_CSV
from jobs.verdicts import VerdictStore, annotate, panel_hash

PNG_CACHE = 1024  # rendered panels kept in memory by the app
SCAN_NAME = "scan"  # the one "night" of a scan folder


class ReviewError(Exception):
    """The folder holds nothing to review (or a report without its store)."""


@dataclass
class ReviewTarget:
    """A store and its reports: name (a night's date, or "scan") -> report folder, newest first."""

    store_dir: Path
    reports: dict[str, Path]
    kind: str  # "scan" or "nightly"
    _figures: dict[str, int] | None = field(default=None, repr=False)
    _hashes: dict[str, str] = field(default_factory=dict, repr=False)
    _pngs: dict[tuple[str, str, int], bytes | None] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def verdicts(self) -> VerdictStore:
        return VerdictStore.for_store(self.store_dir)

    @property
    def newest(self) -> str:
        return next(iter(self.reports))

    def row_ids(self) -> dict[str, int]:
        """figure id -> store row id (read once: two small columns)."""
        with self._lock:
            if self._figures is None:
                table = FigureStore.open(self.store_dir).read_table(["row_id", "figure_id"])
                self._figures = dict(zip(table.column("figure_id").to_pylist(), table.column("row_id").to_pylist(),
                                         strict=True))
            return self._figures

    def images(self, figure_ids: Iterable[str]) -> dict[str, bytes]:
        """figure id -> the panel image bytes kept in the store (unknown ids are left out)."""
        ids = self.row_ids()
        wanted = {ids[f]: f for f in set(figure_ids) if f in ids}
        if not wanted:
            return {}
        table = FigureStore.open(self.store_dir).read_table(["row_id", "image"], row_ids=sorted(wanted))
        return {wanted[r]: img or b"" for r, img in zip(table.column("row_id").to_pylist(),
                                                        table.column("image").to_pylist(), strict=True)}

    def hashes(self, figure_ids: Iterable[str]) -> dict[str, str]:
        """figure id -> content hash of its panel (`jobs.verdicts.panel_hash`), cached."""
        missing = [f for f in set(figure_ids) if f not in self._hashes]
        if missing:
            found = {f: panel_hash(img) for f, img in self.images(missing).items() if img}
            with self._lock:
                self._hashes.update(found)
        return {f: self._hashes[f] for f in figure_ids if f in self._hashes}

    def pairs(self, name: str) -> list[ReportPair]:
        """The pairs of report `name` (report.csv and dismissed.csv) with the store's current verdicts."""
        if name not in self.reports:
            raise KeyError(name)
        rows = read_rows(self.reports[name])
        hashes = self.hashes([r["figure_id_a"] for r in rows] + [r["figure_id_b"] for r in rows])
        pairs = [pair_from_row(r, hashes) for r in rows]
        store = self.verdicts
        return annotate(pairs, store.latest(), store.confirmed_panels())

    def panel_png(self, figure_id: str, transform: str = IDENTITY, max_px: int = THUMB_MAX_PX) -> bytes | None:
        """The panel as PNG, turned/mirrored by `transform`, at most `max_px` on a side (None: unknown id)."""
        if transform not in TRANSFORM_NAMES:
            raise ValueError(f"unknown transform {transform!r}")
        key = (figure_id, transform, max_px)
        if key not in self._pngs:
            png = self._render(figure_id, transform, max_px)
            with self._lock:
                if len(self._pngs) >= PNG_CACHE:
                    self._pngs.pop(next(iter(self._pngs)))
                self._pngs[key] = png
        return self._pngs[key]

    def _render(self, figure_id: str, transform: str, max_px: int) -> bytes | None:
        from PIL import Image

        data = self.images([figure_id]).get(figure_id)
        if not data:  # unknown id, or a store that keeps no pixels
            return None
        img: Image.Image = Image.open(io.BytesIO(data))
        img.load()
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        if transform != IDENTITY:
            img = apply_transform(img, transform)
        if max(img.size) > max_px:
            img.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()


def resolve(path: Path) -> ReviewTarget:
    """The store and reports of a scan folder (`OUT/`) or a nightly store (`STORE/`); ReviewError if neither."""
    path = path.resolve()
    if (path / "store" / MANIFEST).exists() and (path / "report.csv").exists():
        return ReviewTarget(store_dir=path / "store", reports={SCAN_NAME: path}, kind="scan")
    if (path / MANIFEST).exists():
        nights = sorted((d.name for d in (path / "reports").glob("*") if (d / "report.csv").exists()), reverse=True)
        if not nights:
            raise ReviewError(f"{path} is a store without any report (no reports/<date>/report.csv)")
        return ReviewTarget(store_dir=path, reports={n: path / "reports" / n for n in nights}, kind="nightly")
    raise ReviewError(f"{path} is neither a scan folder (report.csv and store/) nor a nightly store")


def read_rows(report_dir: Path) -> list[dict[str, str]]:
    """The rows of report.csv and dismissed.csv (when present) of one report folder."""
    rows: list[dict[str, str]] = []
    for name in ("report.csv", DISMISSED_CSV):
        path = report_dir / name
        if path.exists():
            with open(path, newline="", encoding="utf-8") as fh:
                rows.extend(csv.DictReader(fh))
    return rows


def _float(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


def pair_from_row(row: dict[str, str], hashes: dict[str, str]) -> ReportPair:
    """A ReportPair from a report.csv row (no thumbnails: the app serves pixels by figure id)."""
    def ref(side: str) -> PanelRef:
        fid = row[f"figure_id_{side}"]
        return PanelRef(doc=row[f"doc_{side}"], page=int(row[f"page_{side}"]), bbox=parse_bbox(row[f"bbox_{side}"]),
                        figure_id=fid, thumbnail=b"", image_sha256=hashes.get(fid, ""))

    extra = {k.replace("_", " "): row[k] for k in ("head_score", "pixel_match", "pixel_detail") if row.get(k)}
    return ReportPair(score=float(row["score"]), a=ref("a"), b=ref("b"), kind=row.get("kind") or None,
                      group_id=int(row.get("group") or 0), transform=row.get("transform") or None,
                      head_score=_float(row.get("head_score")), pixel_match=_float(row.get("pixel_match")),
                      pixel_detail=_float(row.get("pixel_detail")), extra=extra, relation=row.get("relation") or "",
                      channel_of=row.get("channel_of") or "")
