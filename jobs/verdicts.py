"""Reviewers' verdicts on reported pairs: kept in `STORE/verdicts.sqlite`, respected by later runs.

A verdict says what an integrity editor decided about one reported pair:
`confirmed` (real reuse, to raise with the authors), `dismissed` (a legitimate
repeat: do not show it again) or `unsure`. It is keyed **by content**, not by
name: the pair key is the two panels' pixel hashes (sha256 of the panel image
bytes kept in the store, `panel_hash`), sorted, so the same two panels keep
their verdict whatever the documents are called (a resubmitted manuscript) and
whichever of the two is "a".

The database lives beside the Parquet store (`verdict_db_path`): SQLite in WAL
mode, one short transaction per write and a busy timeout, so two reviewers
saving at once and a crash mid-write never lose a verdict. The table is
append-only: every decision is a row (history), and the latest one per pair key
wins (by decision time, then insertion order).

`apply_verdicts` is what `scan` and `nightly` call after the pairs are built:
it sets `ReportPair.verdict` to the pair's latest verdict, or to
`touches-confirmed` when a pair without its own verdict shares a panel with a
confirmed pair. The writers then leave dismissed pairs out of report.csv (they
go to `dismissed.csv`, and stay in report.html behind the verdict filter).

Pure: no web code, no Ray (the review app in `jobs.review` and the command
`reusescan review` sit on top of it).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from jobs.report import ReportPair, content_pair_key
from scanner.noise import pixel_hash
from scanner.records import format_bbox

log = logging.getLogger(__name__)

DB_NAME = "verdicts.sqlite"
CONFIRMED = "confirmed"
DISMISSED = "dismissed"
UNSURE = "unsure"
#: What a reviewer can decide.
VERDICTS: tuple[str, ...] = (CONFIRMED, DISMISSED, UNSURE)
#: Set by later runs on a pair without a verdict of its own that shares a panel with a confirmed pair.
TOUCHES_CONFIRMED = "touches-confirmed"
#: Every value of the report's `verdict` column ("" when none).
REPORT_VERDICTS: tuple[str, ...] = ("", *VERDICTS, TOUCHES_CONFIRMED)
#: The `format` field of an exported verdicts file (report.html's "export verdicts").
EXPORT_FORMAT = "reusescan-verdicts/1"
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    pair_key    TEXT NOT NULL,
    hash_a      TEXT NOT NULL,
    hash_b      TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('confirmed', 'dismissed', 'unsure')),
    note        TEXT NOT NULL DEFAULT '',
    reviewer    TEXT NOT NULL DEFAULT '',
    decided_at  TEXT NOT NULL,
    doc_a       TEXT NOT NULL DEFAULT '',
    page_a      INTEGER,
    bbox_a      TEXT NOT NULL DEFAULT '',
    figure_id_a TEXT NOT NULL DEFAULT '',
    doc_b       TEXT NOT NULL DEFAULT '',
    page_b      INTEGER,
    bbox_b      TEXT NOT NULL DEFAULT '',
    figure_id_b TEXT NOT NULL DEFAULT '',
    source      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS verdicts_by_key ON verdicts (pair_key, decided_at, id);
CREATE VIEW IF NOT EXISTS latest_verdicts AS
    SELECT v.* FROM verdicts v
    WHERE v.id = (SELECT w.id FROM verdicts w WHERE w.pair_key = v.pair_key
                  ORDER BY w.decided_at DESC, w.id DESC LIMIT 1);
"""


# The content hash of a panel (sha256 of its image bytes as kept in the store): the one the
# boilerplate rule uses, so a verdict and a logo key on the same definition.
panel_hash = pixel_hash


pair_key = content_pair_key  # the order-independent key of two panel hashes (owned by jobs.report)


def verdict_db_path(store_dir: str | Path) -> Path:
    """`STORE/verdicts.sqlite` (for a scan, `OUT/store/verdicts.sqlite`)."""
    return Path(store_dir) / DB_NAME


def now_iso() -> str:
    """The current time, UTC, ISO 8601 with seconds (how `decided_at` is written)."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Verdict:
    """One decision on a pair, with the two panels' provenance for the record.

    `hash_a`/`hash_b` are the panels' content hashes (`panel_hash`); `doc_*`,
    `page_*`, `bbox_*` (report bbox text) and `figure_id_*` say where each panel
    was when the decision was taken (the key does not depend on them).
    """

    hash_a: str
    hash_b: str
    verdict: str
    note: str = ""
    reviewer: str = ""
    decided_at: str = ""
    doc_a: str = ""
    page_a: int | None = None
    bbox_a: str = ""
    figure_id_a: str = ""
    doc_b: str = ""
    page_b: int | None = None
    bbox_b: str = ""
    figure_id_b: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}; got {self.verdict!r}")
        for h in (self.hash_a, self.hash_b):
            if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
                raise ValueError(f"a panel hash is 64 lower-case hex digits (sha256); got {h!r}")
        if not self.decided_at:
            object.__setattr__(self, "decided_at", now_iso())

    @property
    def pair_key(self) -> str:
        return pair_key(self.hash_a, self.hash_b)

    @classmethod
    def for_pair(cls, pair: ReportPair, verdict: str, *, note: str = "", reviewer: str = "", source: str = "",
                 decided_at: str = "") -> Verdict:
        """A verdict on `pair` (its panels must carry their hashes)."""
        if not pair.a.image_sha256 or not pair.b.image_sha256:
            raise ValueError("the pair's panels carry no content hash")
        return cls(hash_a=pair.a.image_sha256, hash_b=pair.b.image_sha256, verdict=verdict, note=note,
                   reviewer=reviewer, decided_at=decided_at, source=source,
                   doc_a=pair.a.doc, page_a=pair.a.page, bbox_a=format_bbox(pair.a.bbox), figure_id_a=pair.a.figure_id,
                   doc_b=pair.b.doc, page_b=pair.b.page, bbox_b=format_bbox(pair.b.bbox), figure_id_b=pair.b.figure_id)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "") -> Verdict:
        """From a dict (an exported JSON entry, a POST body); unknown keys are ignored."""
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data and data[k] is not None}
        for k in ("page_a", "page_b"):
            if k in fields:
                fields[k] = int(fields[k])
        for k, v in list(fields.items()):
            if k not in ("page_a", "page_b"):
                fields[k] = str(v)
        if source:
            fields["source"] = source
        return cls(**fields)


class VerdictStore:
    """The verdicts of one store folder (`verdicts.sqlite`), safe for several writers.

    Every call opens its own connection (so one object can serve many threads),
    in WAL mode with a busy timeout; each write is one `BEGIN IMMEDIATE`
    transaction, committed before the call returns.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def for_store(cls, store_dir: str | Path) -> VerdictStore:
        return cls(verdict_db_path(store_dir))

    def exists(self) -> bool:
        return self.path.exists()

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(_SCHEMA)
            yield conn
        finally:
            conn.close()

    def add(self, verdict: Verdict) -> int:
        """Record one verdict (one transaction); its row id."""
        return self.add_many([verdict])[0]

    def add_many(self, verdicts: Iterable[Verdict], *, skip_known: bool = False) -> list[int]:
        """Record several verdicts in one transaction; their row ids (-1 for skipped ones).

        With `skip_known`, a verdict already recorded (same key, verdict, note,
        reviewer and time) is not added again: importing one file twice is harmless.
        """
        items = list(verdicts)
        ids: list[int] = []
        columns = [f for f in Verdict.__dataclass_fields__]
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for v in items:
                    if skip_known and conn.execute(
                        "SELECT 1 FROM verdicts WHERE pair_key = ? AND verdict = ? AND note = ? AND reviewer = ? "
                        "AND decided_at = ?", (v.pair_key, v.verdict, v.note, v.reviewer, v.decided_at)).fetchone():
                        ids.append(-1)
                        continue
                    values = asdict(v)
                    cur = conn.execute(
                        f"INSERT INTO verdicts (pair_key, {', '.join(columns)}) "
                        f"VALUES (?, {', '.join('?' for _ in columns)})",
                        (v.pair_key, *(values[c] for c in columns)))
                    ids.append(int(cur.lastrowid or 0))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return ids

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        with self._connect() as conn:
            return [dict(r) for r in conn.execute(sql, params).fetchall()]

    def latest(self) -> dict[str, dict[str, Any]]:
        """pair key -> its latest verdict row (all columns, plus `pair_key` and `id`)."""
        return {r["pair_key"]: r for r in self._rows("SELECT * FROM latest_verdicts")}

    def history(self, key: str | None = None) -> list[dict[str, Any]]:
        """Every recorded verdict (of one pair key when given), oldest first."""
        if key is None:
            return self._rows("SELECT * FROM verdicts ORDER BY decided_at, id")
        return self._rows("SELECT * FROM verdicts WHERE pair_key = ? ORDER BY decided_at, id", (key,))

    def confirmed_panels(self) -> set[str]:
        """Hashes of every panel that belongs to a pair whose latest verdict is `confirmed`."""
        out: set[str] = set()
        for r in self.latest().values():
            if r["verdict"] == CONFIRMED:
                out.update((r["hash_a"], r["hash_b"]))
        return out

    def import_json(self, path: str | Path) -> tuple[int, int]:
        """Load an exported verdicts file (report.html's "export verdicts"); (added, already known)."""
        entries = parse_export(Path(path).read_text(encoding="utf-8"))
        ids = self.add_many([Verdict.from_mapping(e, source=f"import:{Path(path).name}") for e in entries],
                            skip_known=True)
        added = sum(1 for i in ids if i >= 0)
        return added, len(ids) - added


def parse_export(text: str) -> list[dict[str, Any]]:
    """The verdict entries of an exported file: `{"format": EXPORT_FORMAT, "verdicts": [...]}` (or a bare list)."""
    data = json.loads(text)
    if isinstance(data, dict):
        if data.get("format") not in (None, EXPORT_FORMAT):
            raise ValueError(f"not a reusescan verdicts file (format {data.get('format')!r}, expected {EXPORT_FORMAT!r})")
        data = data.get("verdicts", [])
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ValueError("a verdicts file holds a list of objects under \"verdicts\"")
    return data


def annotate(pairs: Iterable[ReportPair], latest: Mapping[str, Mapping[str, Any]],
             confirmed_panels: set[str]) -> list[ReportPair]:
    """Pairs with `verdict` set from `latest` (pair key -> row), else `touches-confirmed` when they share a panel."""
    out = []
    for p in pairs:
        key = p.pair_key
        verdict = ""
        if key and key in latest:
            verdict = str(latest[key]["verdict"])
        elif key and (p.a.image_sha256 in confirmed_panels or p.b.image_sha256 in confirmed_panels):
            verdict = TOUCHES_CONFIRMED
        out.append(p if verdict == p.verdict else replace(p, verdict=verdict))
    return out


def apply_verdicts(pairs: Sequence[ReportPair], store_dir: str | Path) -> list[ReportPair]:
    """`pairs` with the verdicts of `store_dir` applied (see the module docstring); unchanged when none."""
    store = VerdictStore.for_store(store_dir)
    if not pairs or not store.exists():
        return list(pairs)
    latest = store.latest()
    out = annotate(pairs, latest, store.confirmed_panels())
    counts = {v: sum(1 for p in out if p.verdict == v) for v in REPORT_VERDICTS if v}
    log.info("verdicts applied: %s", ", ".join(f"{k} {n}" for k, n in counts.items()))
    return out


def split_dismissed(pairs: Iterable[ReportPair]) -> tuple[list[ReportPair], list[ReportPair]]:
    """(pairs to report, dismissed pairs)."""
    kept: list[ReportPair] = []
    dismissed: list[ReportPair] = []
    for p in pairs:
        (dismissed if p.verdict == DISMISSED else kept).append(p)
    return kept, dismissed
