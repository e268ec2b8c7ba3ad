"""Noise that must not reach matching: tiny images, near-uniform images, boilerplate.

`tiny` and `uniform` are properties of one image; `boilerplate` (the same pixels on
many pages or in many documents, e.g. a publisher logo) needs the whole corpus, so
it is a separate pass (`flag_boilerplate`) run after all documents are read.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from scanner.records import FLAG_BOILERPLATE, PanelRecord


@dataclass(frozen=True)
class NoiseOptions:
    """Thresholds of the per-image noise flags."""

    min_side_px: int = 24        # tiny: a side shorter than this many pixels ...
    min_pixels: int = 40 * 40    # ... or fewer pixels than this ...
    min_side_pt: float = 14.0    # ... or (PDF placements) a side shorter than this on the page
    uniform_std: float = 4.0     # uniform: grey-level standard deviation below this ...
    uniform_share: float = 0.995 # ... or this share of pixels within +-6 levels of the median


def is_tiny(width: int, height: int, opts: NoiseOptions, bbox_pt: tuple[float, float] | None = None) -> bool:
    """Icon- or bullet-sized: too few pixels, or drawn tiny on the page."""
    if min(width, height) < opts.min_side_px or width * height < opts.min_pixels:
        return True
    if bbox_pt is not None and min(bbox_pt) < opts.min_side_pt:
        return True
    return False


def is_uniform(rgb: np.ndarray, opts: NoiseOptions) -> bool:
    """Near-constant image (blank, solid fill): nothing to match on."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))  # subsample big images
    gray = rgb[::step, ::step].astype(np.float32).mean(axis=2)
    if gray.size == 0 or float(gray.std()) < opts.uniform_std:
        return True
    hist = np.bincount(np.clip(gray, 0, 255).astype(np.uint8).ravel(), minlength=256)
    peak = int(hist.argmax())
    return float(hist[max(0, peak - 6): peak + 7].sum()) / gray.size >= opts.uniform_share


def pixel_hash(image_png: bytes) -> str:
    """Hash of a record's pixels (the PNG bytes are a deterministic function of them)."""
    return hashlib.sha256(image_png).hexdigest()


def boilerplate_hashes(
    occurrences: Iterable[tuple[str, str, int]], min_docs: int = 3, min_pages: int = 4
) -> set[str]:
    """Pixel hashes that occur in >= `min_docs` documents or on >= `min_pages` distinct pages.

    `occurrences` are (pixel_hash, doc, page) triples, one per record.
    """
    docs: dict[str, set[str]] = defaultdict(set)
    pages: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for h, doc, page in occurrences:
        docs[h].add(doc)
        pages[h].add((doc, page))
    return {h for h in docs if len(docs[h]) >= min_docs or len(pages[h]) >= min_pages}


def logo_hashes(
    placements: Iterable[tuple[str, str, tuple[float, float, float, float]]],
    min_docs: int = 2, max_side_pt: float = 150.0, tolerance_pt: float = 2.0,
) -> set[str]:
    """Pixel hashes of logo-like placements: small and at the same spot in >= `min_docs` documents.

    `placements` are (pixel_hash, doc, bbox) triples. A journal template puts its logo at
    the same place in every paper, so two papers suffice; a reused panel is neither at the
    identical page position nor logo-sized (max side <= `max_side_pt`) in both.
    """
    spots: dict[str, list[tuple[str, tuple[float, float, float, float]]]] = defaultdict(list)
    for h, doc, bbox in placements:
        if max(bbox[2] - bbox[0], bbox[3] - bbox[1]) <= max_side_pt:
            spots[h].append((doc, bbox))
    found: set[str] = set()
    for h, items in spots.items():
        for _, bbox in items:
            docs = {d for d, b in items if max(abs(b[i] - bbox[i]) for i in range(4)) <= tolerance_pt}
            if len(docs) >= min_docs:
                found.add(h)
                break
    return found


def add_flag(flags: Iterable[str], flag: str) -> tuple[str, ...]:
    """`flags` with `flag` appended once (order kept)."""
    flags = tuple(flags)
    return flags if flag in flags else flags + (flag,)


def flag_boilerplate(records: list[PanelRecord], min_docs: int = 3, min_pages: int = 4) -> list[PanelRecord]:
    """Records with `boilerplate` added where the same pixels recur across the corpus.

    Flagged: the same pixels in >= `min_docs` documents or on >= `min_pages` pages
    (defaults deliberately above what image reuse in papers looks like: a panel
    duplicated once or twice; below a logo on every page), and logo-sized images
    at the same page position in two or more documents (`logo_hashes`).
    """
    hashes = [pixel_hash(r.image) for r in records]
    flagged = boilerplate_hashes(
        ((h, r.doc, r.page) for h, r in zip(hashes, records)), min_docs=min_docs, min_pages=min_pages
    ) | logo_hashes((h, r.doc, r.bbox) for h, r in zip(hashes, records))
    return [
        replace(r, flags=add_flag(r.flags, FLAG_BOILERPLATE)) if h in flagged else r
        for h, r in zip(hashes, records)
    ]
