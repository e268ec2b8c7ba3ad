"""Is one panel a single channel of the other, a multi-channel merge? (`channel_of` column).

A figure often shows each fluorescence channel beside their merge: the channel and the merge
are one field, so the pixel check scores them high (0.95–0.98) although nothing was reused.
The tell is colour: the single-channel panel matches **one** channel of the merge better than
the merge's luminance, and the merge holds another channel that the single one does not
explain. A grey or recoloured copy of the whole merge matches the luminance best, so it is
never taken for a channel.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from embedder.d4 import IDENTITY, apply_transform

SIDE = 96  # both panels are compared at this size (whole-panel placements only)
CHANNEL_NAMES = ("red", "green", "blue")
MIN_CHANNEL_CORRELATION = 0.95  # the single panel against its channel of the merge
MIN_GAIN_OVER_LUMINANCE = 0.01  # ... better than against the merge's luminance
MAX_OTHER_CORRELATION = 0.6  # the merge's other channel is not the single panel again
MIN_OTHER_SHARE = 0.25  # ... and carries signal (std relative to the matched channel's)
MONO_SHARE = 0.98  # a single-channel panel: one colour direction holds this share of its variance


def _small_rgb(data: bytes, transform: str) -> np.ndarray | None:
    """The panel image turned by `transform` and shrunk to SIDE x SIDE, as (SIDE, SIDE, 3) floats; None when unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            small = im.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    except OSError:
        return None
    return np.asarray(apply_transform(small, transform), dtype=np.float64)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x.ravel() - x.mean(), y.ravel() - y.mean()
    den = float(np.sqrt((x @ x) * (y @ y)))
    return float(x @ y) / den if den > 0 else 0.0


def single_channel(rgb: np.ndarray) -> np.ndarray | None:
    """The panel's intensity when it shows one channel (grey or one hue), else None."""
    flat = rgb.reshape(-1, 3)
    cov = np.cov(flat, rowvar=False)
    values, vectors = np.linalg.eigh(cov)
    if values[-1] <= 0 or values[-1] / max(values.sum(), 1e-12) < MONO_SHARE:
        return None
    direction = vectors[:, -1] * np.sign(vectors[:, -1].sum() or 1.0)
    return (flat @ direction).reshape(rgb.shape[:2])


def channel_match(single: np.ndarray, merge: np.ndarray) -> str:
    """The name of `merge`'s channel that `single` (H, W intensity) shows, or "" (arrays of one size)."""
    stds = merge.reshape(-1, 3).std(axis=0)
    correlations = [_corr(single, merge[..., c]) if stds[c] > 0 else 0.0 for c in range(3)]
    best = int(np.argmax(correlations))
    luminance = merge @ np.array([0.299, 0.587, 0.114])
    if correlations[best] < MIN_CHANNEL_CORRELATION or correlations[best] < _corr(single, luminance) + MIN_GAIN_OVER_LUMINANCE:
        return ""
    others = [c for c in range(3) if c != best and stds[c] >= MIN_OTHER_SHARE * stds[best]
              and abs(correlations[c]) < MAX_OTHER_CORRELATION]
    return CHANNEL_NAMES[best] if others else ""


def channel_of(image_a: bytes, image_b: bytes, transform: str | None) -> str:
    """"b is the <colour> channel of a", "a is the <colour> channel of b", or "" (panel images; `transform` maps b onto a)."""
    if transform is None:
        return ""
    a, b = _small_rgb(image_a, IDENTITY), _small_rgb(image_b, transform)  # square: turning after shrinking is exact
    if a is None or b is None:
        return ""
    single_a, single_b = single_channel(a), single_channel(b)  # each panel's intensity if it shows one channel
    if (single_a is None) == (single_b is None):
        return ""  # both merges, or both single channels: neither is a channel of the other
    if single_b is not None:
        name = channel_match(single_b, a)
        return f"b is the {name} channel of a" if name else ""
    name = channel_match(single_a, b) if single_a is not None else ""
    return f"a is the {name} channel of b" if name else ""
