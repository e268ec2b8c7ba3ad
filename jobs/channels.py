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

from embedder.d4 import decompose

SIDE = 96  # both panels are compared at this size (whole-panel placements only)
CHANNEL_NAMES = ("red", "green", "blue")
MIN_CHANNEL_CORRELATION = 0.95  # the single panel against its channel of the merge
MIN_GAIN_OVER_LUMINANCE = 0.01  # ... better than against the merge's luminance
MAX_OTHER_CORRELATION = 0.6  # the merge's other channel is not the single panel again
MIN_OTHER_SHARE = 0.25  # ... and carries signal (std relative to the matched channel's)
MONO_SHARE = 0.98  # a single-channel panel: one colour direction holds this share of its variance


def channel_look(image: Image.Image) -> np.ndarray:
    """The panel shrunk to SIDE x SIDE, as (SIDE, SIDE, 3) uint8: what `channel_between` compares of it."""
    return np.asarray(image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0))


def read_look(data: bytes) -> np.ndarray | None:
    """`channel_look` of an encoded panel image; None when unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return channel_look(im)
    except OSError:
        return None


def _turned(array: np.ndarray, transform: str) -> np.ndarray:
    """`array` (H, W[, C]) moved by `transform` as `embedder.d4.apply_transform` moves an image."""
    flipped, quarter_turns = decompose(transform)
    return np.rot90(array[:, ::-1] if flipped else array, quarter_turns)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x.ravel() - x.mean(), y.ravel() - y.mean()
    den = float(np.sqrt((x @ x) * (y @ y)))
    return float(x @ y) / den if den > 0 else 0.0


def single_channel(rgb: np.ndarray) -> np.ndarray | None:
    """The panel's intensity when it shows one channel (grey or one hue), else None."""
    flat = rgb.reshape(-1, 3).astype(np.float64)
    cov = np.cov(flat, rowvar=False)
    values, vectors = np.linalg.eigh(cov)
    if values[-1] <= 0 or values[-1] / max(values.sum(), 1e-12) < MONO_SHARE:
        return None
    direction = vectors[:, -1] * np.sign(vectors[:, -1].sum() or 1.0)
    return (flat @ direction).reshape(rgb.shape[:2])


def is_single_channel(look: np.ndarray) -> bool:
    """Does the panel (its `channel_look`) show one channel? Only such a panel beside a merge can be its channel."""
    return single_channel(look) is not None


def channel_match(single: np.ndarray, merge: np.ndarray) -> str:
    """The name of `merge`'s channel that `single` (H, W intensity) shows, or "" (arrays of one size)."""
    merge = merge.astype(np.float64)
    stds = merge.reshape(-1, 3).std(axis=0)
    correlations = [_corr(single, merge[..., c]) if stds[c] > 0 else 0.0 for c in range(3)]
    best = int(np.argmax(correlations))
    luminance = merge @ np.array([0.299, 0.587, 0.114])
    if correlations[best] < MIN_CHANNEL_CORRELATION or correlations[best] < _corr(single, luminance) + MIN_GAIN_OVER_LUMINANCE:
        return ""
    others = [c for c in range(3) if c != best and stds[c] >= MIN_OTHER_SHARE * stds[best]
              and abs(correlations[c]) < MAX_OTHER_CORRELATION]
    return CHANNEL_NAMES[best] if others else ""


def channel_between(look_a: np.ndarray, look_b: np.ndarray, transform: str | None) -> str:
    """"b is the <colour> channel of a", "a is the <colour> channel of b", or "" (`channel_look`s; `transform`
    maps b onto a: the looks are square, so turning after shrinking is exact)."""
    if transform is None:
        return ""
    a, b = look_a, _turned(look_b, transform)
    single_a, single_b = single_channel(a), single_channel(b)  # each panel's intensity if it shows one channel
    if (single_a is None) == (single_b is None):
        return ""  # both merges, or both single channels: neither is a channel of the other
    if single_b is not None:
        name = channel_match(single_b, a)
        return f"b is the {name} channel of a" if name else ""
    name = channel_match(single_a, b) if single_a is not None else ""
    return f"a is the {name} channel of b" if name else ""


def channel_of(image_a: bytes, image_b: bytes, transform: str | None) -> str:
    """`channel_between` two encoded panel images; "" when either is unreadable."""
    a, b = read_look(image_a), read_look(image_b)
    return "" if a is None or b is None else channel_between(a, b, transform)
