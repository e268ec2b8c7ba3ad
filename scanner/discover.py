"""Finding the inputs of a scan: PDFs and image files under a folder, by content.

Extensions lie (a PDF saved as `.dat`, an HTML error page saved as `.pdf`), so a
file is an input when its first bytes look like a PDF or a supported image, or
when its extension says it should be one (so a broken `.pdf` is still reported
in errors.csv instead of silently skipped).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

Kind = Literal["pdf", "image"]

PDF_EXTENSIONS = frozenset({".pdf"})
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".dib", ".webp"}
)

# (offset, magic) -> kind. PDFs may carry junk before the header (up to 1 KiB is tolerated by readers).
_IMAGE_MAGICS: tuple[bytes, ...] = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",          # JPEG
    b"II*\x00",               # TIFF little-endian
    b"MM\x00*",               # TIFF big-endian
    b"II+\x00",               # BigTIFF
    b"MM\x00+",
    b"BM",                    # BMP
)


def sniff_kind(head: bytes) -> Kind | None:
    """Kind of a file from its first bytes (at least 1 KiB is best), or None."""
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if any(head.startswith(m) for m in _IMAGE_MAGICS):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    return None


def sniff_path(path: Path) -> Kind | None:
    """Kind of the file at `path` from its content (None if unreadable or unknown)."""
    try:
        with open(path, "rb") as fh:
            return sniff_kind(fh.read(1024))
    except OSError:
        return None


def expected_kind(path: Path) -> Kind | None:
    """Kind that the file name promises (None for other extensions)."""
    suffix = path.suffix.lower()
    if suffix in PDF_EXTENSIONS:
        return "pdf"
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    return None


def document_key(path: Path, root: Path) -> str:
    """A document's name in every output and in the store: its POSIX path relative to the scan root.

    The file name when `root` is the file itself. Symlinks are not resolved, so a
    linked file keeps the name it has under `root`; resuming a scan and the
    nightly "seen before" check both compare these keys, so this is their only
    definition.
    """
    p, r = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    if p == r:
        return p.name
    try:
        return p.relative_to(r).as_posix()
    except ValueError:  # not under root: keep the path as given
        return Path(path).as_posix()


def find_inputs(root: Path) -> list[Path]:
    """All PDFs and image files under `root` (recursive, sorted; `root` itself if it is a file).

    A file qualifies by its extension or, failing that, by sniffing its content.
    Hidden files and folders (dot-names) are skipped. Symlinked folders are not
    followed (no cycles).
    """
    root = Path(root)
    if root.is_file():
        return [root]
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if not path.is_file():
                continue
            if expected_kind(path) is not None or sniff_path(path) is not None:
                found.append(path)
    found.sort(key=lambda p: document_key(p, root))
    logger.info("found %d inputs under %s", len(found), root)
    return found
