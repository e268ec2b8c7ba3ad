"""What extracting one document yields, and the limits it runs under.

Shared by the dispatcher (`scanner.extract`) and the two backends (`scanner.pdf`,
`scanner.image_files`); it imports neither, so there is no import cycle.
`scanner.extract` re-exports everything here that the README documents.

Stages of an `ExtractError` (the `stage` column of errors.csv):

- `read`: the file could not be read at all (permissions, I/O error);
- `open`: the input is not a readable document (empty, not a PDF/image, encrypted, no pages);
- `repair`: a damaged PDF that MuPDF repaired (its images are still extracted);
- `pages`: pages beyond `max_pages` were skipped;
- `page`: one whole page could not be interpreted (the other pages are still extracted);
- `decode`: one image's pixels could not be produced: a broken image stream, or an
  image refused as a decompression bomb (the other images of the page are still extracted);
- `warning`: MuPDF complained while reading (first message and a count);
- `timeout`: the document ran out of time (pages read before are kept);
- `extract`: anything else, i.e. a bug or an exotic failure (one line, the run goes on).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from scanner.noise import NoiseOptions
from scanner.panels import SplitOptions
from scanner.records import PanelRecord

Stage = Literal["read", "open", "repair", "pages", "page", "decode", "warning", "timeout", "extract"]

# What each stage means to a reviewer, in the words a report uses (one owner for every report).
ERROR_GROUPS: dict[str, tuple[Stage, ...]] = {
    "inputs that could not be read": ("read", "open", "extract"),
    "images that could not be decoded": ("decode",),
    "documents read only in part": ("pages", "page", "timeout"),
    "documents read with warnings": ("repair", "warning"),
}


def error_group(stage: str) -> str:
    """The `ERROR_GROUPS` heading of an errors.csv stage (unknown stages count as unreadable inputs)."""
    for heading, stages in ERROR_GROUPS.items():
        if stage in stages:
            return heading
    return "inputs that could not be read"


@dataclass(frozen=True)
class ExtractLimits:
    """Caps and options that keep one bad document from hurting the run."""

    max_image_pixels: int = 100_000_000   # per image (decompression bombs)
    max_pages: int = 2_000                # per document; later pages are skipped with an error line
    timeout_s: float | None = 300.0       # per document (enforced with SIGALRM in the main thread)
    split: bool = True                    # split compound figures into panels
    split_options: SplitOptions = field(default_factory=SplitOptions)
    noise: NoiseOptions = field(default_factory=NoiseOptions)
    max_render_zoom: float = 8.0          # inline-image fallback rendering


@dataclass(frozen=True)
class ExtractError:
    """One line of errors.csv: which input, at what stage (see the module docstring), and why (single line)."""

    input: str
    stage: str
    error: str


@dataclass
class DocumentResult:
    """What one document yielded."""

    doc: str
    doc_sha256: str
    pages: int = 0
    records: list[PanelRecord] = field(default_factory=list)
    errors: list[ExtractError] = field(default_factory=list)
    seconds: float = 0.0

    def error(self, stage: Stage, message: object) -> None:
        """Record one error line for this document (the message is flattened to one line)."""
        self.errors.append(ExtractError(self.doc, stage, one_line(message)))


class DocumentTimeout(BaseException):
    """The per-document time budget ran out.

    A BaseException, like KeyboardInterrupt: it is raised by a signal handler at
    whatever line is running, often inside a decoder's `except Exception` that
    would otherwise report it as a broken image and carry on past the budget.
    """


def make_figure_id(doc: str, doc_sha256: str, page: int, placement: int, panel: int) -> str:
    """Stable id of a record: same document (path and bytes), page, placement and panel give the same id.

    `panel` is 0 for the whole placement (figure) and 1.. for its split panels.
    The relative path is part of the key because two byte-identical files in one
    corpus (a paper submitted twice) are two documents whose panels must pair up.
    """
    key = f"{doc}:{doc_sha256}:{page}:{placement}:{panel}".encode()
    return hashlib.sha256(key).hexdigest()[:24]


def one_line(text: object, limit: int = 500) -> str:
    """`text` as one line of at most `limit` characters (for errors.csv)."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."
