"""A scan's scoring rules that other commands share, importable without Ray or PyMuPDF.

`reusescan query` scores one file against a store exactly as a scan scores its
pairs; it must not pay for importing Ray (seconds) to read the same rules, so
they live here and `jobs.pipeline`, `jobs.match` and `jobs.report_rows`
re-export them where their callers have always found them.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from embedder.inference import Embedder
    from embedder.verify import Alignment

DEFAULT_THRESHOLD = 0.5


def model_id_of(model_path: str | None) -> str:
    """A stable id of a model: its backbone name and the digest of its config and weights.

    Vectors of two models are not comparable; the store keys on this id to refuse
    mixing them, and a resumed scan or a nightly run checks it before any work.
    The checkpoint's meta (threshold, pixel-check calibration) is not part of it.
    """
    from embedder.checkpoint import checkpoint_weights_digest, read_checkpoint  # torch: imported when used
    from embedder.inference import DEFAULT_CHECKPOINT

    data = read_checkpoint(Path(model_path) if model_path else Path(DEFAULT_CHECKPOINT))
    return f"{data.get('config', {}).get('backbone', 'model')}-{checkpoint_weights_digest(data)[:16]}"


def model_threshold(embedder: Embedder, *, fused: bool = False) -> float:
    """The acceptance threshold calibrated for this model, else `DEFAULT_THRESHOLD` (0.5).

    The head alone uses the checkpoint meta `threshold`; the fused score (head +
    pixel check) uses `pixel_check.threshold`. Calibration:
    `benchmarks/bench_scan.py` on a generated corpus whose seed is not used for
    evaluation reports the lowest score that keeps precision at 0.9; that number
    is written into the checkpoint's meta when it ships.
    """
    from embedder.fusion import META_KEY  # torch: imported when used (Ray's extraction workers import this module)

    source = embedder.meta.get(META_KEY, {}) if fused else embedder.meta
    value = source.get("threshold") if isinstance(source, dict) else None
    return float(value) if isinstance(value, (int, float)) and 0.0 <= float(value) <= 1.0 else DEFAULT_THRESHOLD


def describe_placement(alignment: Alignment) -> str:
    """Where the pixel check put one panel on the other, in words (crop share, extra turn)."""
    parts = []
    if alignment.scale < 0.97:
        inner, outer = ("b", "a") if alignment.b_inside_a else ("a", "b")
        parts.append(f"{inner} shows part of {outer} ({alignment.scale:.0%} of its width)")
    if abs(alignment.angle) > 0.5:  # alignment.angle turns b onto a: b itself is turned the other way
        sense = "clockwise" if alignment.angle > 0 else "counter-clockwise"
        parts.append(f"b turned a further {abs(alignment.angle):.0f}° {sense}")
    return ", ".join(parts) or "whole panel"
