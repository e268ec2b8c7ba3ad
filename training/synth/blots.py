"""Western blots and electrophoresis gels.

The *style* generator fixes the layout (lanes, band rows, ladder, smiling,
background); the *field* generator draws the band intensities and positions, so
two fields of one specimen are "the same layout with different bands".
"""
from __future__ import annotations

from typing import TypedDict

import numpy as np

from training.synth._common import blur, smooth_noise, to_uint8


def _band_density(
    size: tuple[int, int],
    lane_x: np.ndarray,
    lane_w: float,
    rows_y: np.ndarray,
    intensity: np.ndarray,
    thickness: np.ndarray,
    smile: float,
    tail: float,
) -> np.ndarray:
    """Sum of band densities: one Python iteration per lane, numpy over (y, x, band).

    lane_x (L,) lane centres; rows_y (L, R) band centres per lane; intensity and
    thickness (L, R). Bands curve upward at the lane edges by `smile` pixels.
    """
    h, w = size
    out = np.zeros(size, np.float32)
    yy = np.arange(h, dtype=np.float32)[:, None, None]
    for li, xc in enumerate(lane_x):
        x0, x1 = max(0, int(xc - lane_w)), min(w, int(xc + lane_w) + 1)
        if x0 >= x1:
            continue
        xs = np.arange(x0, x1, dtype=np.float32)
        u = (xs - xc) / (lane_w / 2.0)
        xprof = 1.0 / (1.0 + np.exp((np.abs(u) - 1.0) * 8.0))            # flat top, soft edges
        yc = rows_y[li][None, None, :] - smile * (u[None, :, None] ** 2)   # (1, lw, R)
        d = yy - yc
        th = thickness[li][None, None, :]
        prof = np.exp(-0.5 * (d / th) ** 2)
        if tail > 0:
            prof = prof + tail * np.exp(-np.clip(d, 0, None) / (3 * th)) * (d > 0)
        out[:, x0:x1] += (prof * intensity[li][None, None, :]).sum(axis=2) * xprof[None, :]
    return out


class _Layout(TypedDict):
    """Where the lanes and band rows of one blot or gel are (pixels)."""

    lane_x: np.ndarray      # lane centres
    lane_w: float
    rows: np.ndarray        # band row centres
    thick: np.ndarray       # band thickness per row
    smile: float            # how much the bands curve ("smiling" gel)
    ladder: int             # lane of the size ladder, -1 for none
    ladder_rows: np.ndarray
    presence: float         # probability that a band is present
    lane_skew: np.ndarray   # vertical offset per lane


def _layout(style: np.random.Generator, size: tuple[int, int], many_rows: bool) -> _Layout:
    h, w = size
    n_lanes = int(style.integers(3, 17))
    margin = style.uniform(0.02, 0.1) * w
    pitch = (w - 2 * margin) / n_lanes
    lane_w = pitch * style.uniform(0.55, 0.9)
    lane_x = margin + pitch * (np.arange(n_lanes) + 0.5)
    n_rows = int(style.integers(6, 22)) if many_rows else int(style.integers(1, max(2, min(6, h // 24 + 2))))
    top = style.uniform(0.05, 0.2) * h
    rows = np.sort(style.uniform(top, h * 0.95, n_rows))
    return {
        "lane_x": lane_x,
        "lane_w": float(lane_w),
        "rows": rows,
        "thick": style.uniform(0.006, 0.03) * h * style.uniform(0.7, 1.3, n_rows),
        "smile": float(style.uniform(0.0, 0.03) * h),
        "ladder": int(style.choice([-1, 0, n_lanes - 1], p=[0.4, 0.45, 0.15])),
        "ladder_rows": np.linspace(top, h * 0.95, int(style.integers(5, 12))),
        "presence": float(style.uniform(0.6, 1.0)),
        "lane_skew": style.normal(0, 0.01 * h, n_lanes),
    }


def _bands(field: np.random.Generator, lay: _Layout, h: int, strength: float) -> tuple[np.ndarray, ...]:
    lane_x = np.asarray(lay["lane_x"])
    rows = np.asarray(lay["rows"])
    n_l, n_r = len(lane_x), len(rows)
    inten = field.lognormal(0.0, 0.7, (n_l, n_r)) * strength
    inten *= field.random((n_l, n_r)) < float(lay["presence"])
    inten *= field.uniform(0.3, 1.0, (1, n_r))                   # per-protein abundance
    ys = rows[None, :] + np.asarray(lay["lane_skew"])[:, None] + field.normal(0, 0.004 * h, (n_l, n_r))
    thick = np.broadcast_to(np.asarray(lay["thick"]), (n_l, n_r)) * (0.8 + 0.25 * np.clip(inten / strength, 0, 2))
    ladder = int(lay["ladder"])
    if ladder >= 0:
        lr = np.asarray(lay["ladder_rows"])
        k = min(len(lr), n_r)
        ys[ladder] = np.full(n_r, -1000.0)
        ys[ladder, :k] = lr[:k]
        inten[ladder] = 0.0
        inten[ladder, :k] = strength * 0.6
        thick[ladder, :k] = np.asarray(lay["thick"]).mean() * 0.7
    return ys, inten, thick


def western_blot(style: np.random.Generator, field: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Dark bands on a light-grey membrane with gradient, blotches, smiling and saturation."""
    h, w = size
    lay = _layout(style, size, many_rows=False)
    bg = style.uniform(0.72, 0.9)
    grad = style.uniform(-0.12, 0.12, 2)
    saturate = style.uniform(0.55, 0.95)
    blotch = style.uniform(0.0, 0.12)
    tail = style.uniform(0.0, 0.25)
    warm = style.random() < 0.3
    ys, inten, thick = _bands(field, lay, h, strength=1.0)
    dens = _band_density(size, np.asarray(lay["lane_x"]), float(lay["lane_w"]), ys, inten, thick, float(lay["smile"]), tail)
    dens = np.minimum(dens * 0.8, saturate)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    back = bg + grad[0] * (yy / h - 0.5) + grad[1] * (xx / w - 0.5)
    back -= blotch * smooth_noise(field, size, min(size) / 3, octaves=3)
    img = back * (1.0 - dens)
    img = blur(img, field.uniform(0.3, 1.2)) + field.normal(0, 0.012, size).astype(np.float32)
    rgb = np.repeat(img[:, :, None], 3, axis=2)
    if warm:
        rgb *= np.asarray([1.0, 0.97, 0.9], np.float32)
    return to_uint8(rgb)


def gel(style: np.random.Generator, field: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """An agarose gel (bright bands on black, UV) or a Coomassie-stained protein gel (blue bands)."""
    h, w = size
    coomassie = style.random() < 0.45
    lay = _layout(style, size, many_rows=True)
    tail = style.uniform(0.0, 0.4)
    ys, inten, thick = _bands(field, lay, h, strength=0.8)
    lane_x, lane_w = np.asarray(lay["lane_x"]), float(lay["lane_w"])
    dens = _band_density(size, lane_x, lane_w, ys, inten, thick * 0.8, float(lay["smile"]), tail)
    # lane smear and wells
    wells_y = np.full((len(lane_x), 1), float(np.asarray(lay["rows"])[0]) * 0.4)
    wells = _band_density(size, lane_x, lane_w, wells_y, np.full((len(lane_x), 1), 0.5), np.full((len(lane_x), 1), 0.01 * h + 1), 0.0, 0.0)
    dens = dens + wells + 0.08 * _band_density(size, lane_x, lane_w, np.full((len(lane_x), 1), h * 0.5), np.ones((len(lane_x), 1)), np.full((len(lane_x), 1), h * 0.4), 0.0, 0.0)
    dens = blur(dens, field.uniform(0.4, 1.5))
    if coomassie:
        back = style.uniform(0.8, 0.95) - 0.1 * smooth_noise(field, size, min(size) / 2, 2)
        d = np.clip(dens, 0, 1.2)
        rgb = np.stack([back - 0.75 * d, back - 0.6 * d, back - 0.2 * d], axis=2)
    else:
        sat = style.uniform(0.7, 1.0)
        glow = np.minimum(dens * 1.3, sat) + 0.05 * smooth_noise(field, size, min(size) / 3, 2) + style.uniform(0.0, 0.08)
        colour = np.asarray([1.0, 1.0, 1.0] if style.random() < 0.6 else [1.0, 0.55, 0.2], np.float32)
        rgb = glow[:, :, None] * colour
    rgb = rgb + field.normal(0, 0.01, rgb.shape).astype(np.float32)
    return to_uint8(rgb)
