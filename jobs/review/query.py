"""The review app's "ask the archive about one image": a dropped file matched against the app's store.

The model and the store's index are loaded on the first query and kept (a query
then takes the seconds of its own work, not of loading them again); the index is
reloaded when the store gained files. The answer is the report's cards
(`jobs.report_html.render_card`, pictures inlined as `data:` URIs since the query
panel is not in the store) plus a one-line summary.
"""
from __future__ import annotations

import re
import tempfile
import threading
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from jobs.query import QueryOptions, format_table, query_pairs, run_query
from jobs.report import sort_pairs
from jobs.report_html import _ImageCache, render_card

MAX_QUERY_BYTES = 64 * 1024 * 1024  # a dropped figure or paper; larger is refused before reading
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A file name from the browser reduced to a harmless base name (the scanner sniffs the content anyway)."""
    base = _SAFE_NAME.sub("_", Path(name.replace("\\", "/")).name).lstrip(".")
    return base[:120] or "query"


@dataclass
class QueryEngine:
    """The loaded model and index of one store, shared by the app's request threads (one query at a time)."""

    store_dir: Path
    _embedder: Any = None
    _index: Any = None
    _files: int = -1
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _index_for(self, store: Any) -> Any:
        from jobs.query import load_index

        if self._index is None or self._files != len(store.files):
            self._index, self._files = load_index(store, include_noise=False), len(store.files)
        return self._index

    def ask(self, name: str, data: bytes, *, page: int | None = None) -> dict[str, Any]:
        """Match the file `name` with bytes `data` against the store; the answer as the app sends it (JSON)."""
        from embedder.inference import Embedder

        with self._lock, tempfile.TemporaryDirectory(prefix="reusescan-query-") as tmp:
            path = Path(tmp) / safe_name(name)
            path.write_bytes(data)
            if self._embedder is None:
                self._embedder = Embedder.load()
            result = run_query(path, self.store_dir, QueryOptions(page=page), embedder=self._embedder,
                               index_cache=self._index_for)
            # The query panel is not in the store: its pairs carry no content key, so no verdict controls.
            pairs = sort_pairs(query_pairs(result, self.store_dir, keys=False))
        cache = _ImageCache()
        cards = "".join(render_card(p, rank, cache) for rank, p in enumerate(pairs, start=1))
        best = result.candidates[0].score if result.candidates else None
        note = (f"{len(pairs)} match(es) at or above the threshold {result.threshold:.4f}" if pairs else
                f"nothing at or above the threshold {result.threshold:.4f}"
                + (f" (best candidate {best:.4f})" if best is not None else " (no candidate)"))
        summary = (f"{escape(path.name)}: {len(result.panels)} panel(s) against {result.store_rows:,} stored; "
                   f"{note}; {result.seconds.get('total', 0.0):.1f} s")
        return {"matches": len(pairs), "candidates": len(result.candidates), "threshold": result.threshold,
                "summary": summary, "html": cards, "table": format_table(result)}
