"""Extracting every figure and panel of one document, with provenance.

`extract_document(path, root, limits)` reads one PDF or image file and returns a
`DocumentResult`: the panel records plus one-line errors for whatever could not
be read (the rest of the document is still extracted). It never raises for bad
input. The work is split by job:

- `scanner.document`: `DocumentResult`, `ExtractLimits`, `ExtractError` (and its stages),
  `make_figure_id` (all re-exported here, where the README documents them);
- `scanner.placement`: the records of one placement (figure + panels, noise flags);
- `scanner.pdf`: the PDF backend (PyMuPDF, imported on the first PDF; coordinates and
  orientation are described there);
- `scanner.image_files`: the image-file backend (Pillow; multi-page TIFF);
- this module: the dispatch by content, the per-document time budget, file hashing.

PyMuPDF is not thread-safe: call this for one document per process (the `jobs`
layer uses a process pool).
"""
from __future__ import annotations

import hashlib
import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from scanner.discover import document_key, expected_kind, sniff_kind
from scanner.document import (
    DocumentResult,
    DocumentTimeout,
    ExtractError,
    ExtractLimits,
    Stage,
    make_figure_id,
)
from scanner.image_files import extract_image_file
from scanner.placement import records_for_placement

__all__ = [
    "DocumentResult",
    "DocumentTimeout",
    "ExtractError",
    "ExtractLimits",
    "Stage",
    "extract_document",
    "extract_image_file",
    "file_sha256",
    "make_figure_id",
    "records_for_placement",
]

logger = logging.getLogger(__name__)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _timeout_handler(signum: int, frame: FrameType | None) -> None:
    raise DocumentTimeout()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def extract_document(path: Path, root: Path, limits: ExtractLimits | None = None) -> DocumentResult:
    """All panel records of the PDF or image file at `path`; `doc` is its path relative to `root`.

    Never raises for bad input: every problem becomes an `ExtractError` line and
    whatever could be read is still returned. The kind is decided by content
    (a PNG named `.pdf` is read as an image; an HTML page named `.pdf` is an error).
    """
    limits = limits or ExtractLimits()
    path, root = Path(path), Path(root)
    rel = document_key(path, root)
    started = time.monotonic()
    try:
        size = path.stat().st_size
        sha = file_sha256(path)
        with open(path, "rb") as fh:
            head = fh.read(1024)
    except OSError as exc:
        result = DocumentResult(doc=rel, doc_sha256="")
        result.error("read", f"{type(exc).__name__}: {exc}")
        return result
    result = DocumentResult(doc=rel, doc_sha256=sha)
    if size == 0:
        result.error("open", "empty file (0 bytes)")
        return result
    kind = sniff_kind(head)
    if kind is None:
        wanted = expected_kind(path) or "supported"
        sample = head[:16].decode("latin-1").encode("unicode_escape").decode("ascii")
        result.error("open", f"not a {wanted.upper() if wanted == 'pdf' else wanted} file: content starts with '{sample}'")
        return result

    timeout_s = limits.timeout_s
    use_alarm = bool(timeout_s) and _in_main_thread()
    previous = None
    if use_alarm and timeout_s:
        previous = signal.signal(signal.SIGALRM, _timeout_handler)
        signal.setitimer(signal.ITIMER_REAL, float(timeout_s))
    try:
        if kind == "pdf":
            # Imported here, not at the top: PyMuPDF takes a noticeable time to import, and
            # `file_sha256` users and image-only runs never need it.
            from scanner.pdf import extract_pdf

            extract_pdf(path, result, limits)
        else:
            extract_image_file(path, result, limits)
    except DocumentTimeout:
        result.error("timeout", f"document took longer than {limits.timeout_s:g} s; kept the {result.pages} pages read before")
    except Exception as exc:  # a bug or an exotic failure: still one line, the run goes on
        logger.exception("unexpected failure on %s", rel)
        result.error("extract", f"{type(exc).__name__}: {exc}")
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
    result.seconds = time.monotonic() - started
    return result
