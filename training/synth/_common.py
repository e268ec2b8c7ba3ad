"""Shared numpy helpers for the procedural generators.

Everything here is vectorised over pixels; Python loops only ever run over
objects (cells, lanes, bands), each touching a small window of the image.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def rng_for(*keys: int) -> np.random.Generator:
    """A generator seeded by a tuple of non-negative integers (stable across runs and platforms)."""
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in keys])


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float, octaves: int = 3) -> np.ndarray:
    """Fractal value noise in [0, 1]: low-resolution random grids upsampled (spline) and summed.

    `scale` is the feature size of the coarsest octave in pixels.
    """
    h, w = shape
    out = np.zeros(shape, dtype=np.float32)
    amp, total = 1.0, 0.0
    s = max(scale, 2.0)
    for _ in range(octaves):
        gh, gw = max(2, int(np.ceil(h / s)) + 2), max(2, int(np.ceil(w / s)) + 2)
        grid = rng.random((gh, gw), dtype=np.float32)
        up = ndimage.zoom(grid, (h / (gh - 1), w / (gw - 1)), order=1, mode="nearest", grid_mode=False)
        out += amp * up[:h, :w]
        total += amp
        amp *= 0.5
        s = max(s / 2.0, 2.0)
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / (hi - lo + 1e-6)


def blur(arr: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur over the two spatial axes (channels untouched)."""
    if sigma <= 0.05:
        return arr
    if arr.ndim == 3:
        return ndimage.gaussian_filter(arr, sigma=(sigma, sigma, 0), mode="reflect")
    return ndimage.gaussian_filter(arr, sigma=sigma, mode="reflect")


def splat_ellipses(
    shape: tuple[int, int],
    centers: np.ndarray,
    radii: np.ndarray,
    angles: np.ndarray,
    values: np.ndarray,
    profile: str = "disk",
    wobble: np.ndarray | None = None,
    combine: str = "max",
) -> np.ndarray:
    """Render ellipses (one Python iteration per ellipse, numpy inside its window).

    centers (n, 2) as (y, x); radii (n, 2) as (ry, rx); angles (n,) radians;
    values (n,) peak intensity. `profile` 'disk' gives a soft-edged flat disk,
    'gauss' a Gaussian, 'ring' a dark-rim/bright-halo profile (bright-field cells,
    returned as signed values). `wobble` (n, 3) adds low-order shape harmonics
    so cells are not perfect ellipses.
    """
    h, w = shape
    out = np.zeros(shape, dtype=np.float32)
    for i in range(len(centers)):
        cy, cx = float(centers[i, 0]), float(centers[i, 1])
        ry, rx = float(radii[i, 0]), float(radii[i, 1])
        reach = 1.6 if profile == "ring" else (2.5 if profile == "gauss" else 1.3)
        r = max(ry, rx) * reach + 2
        y0, y1 = max(0, int(cy - r)), min(h, int(cy + r) + 1)
        x0, x1 = max(0, int(cx - r)), min(w, int(cx + r) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dy, dx = yy - cy, xx - cx
        ca, sa = np.cos(angles[i]), np.sin(angles[i])
        u = (dx * ca + dy * sa) / max(rx, 0.5)
        v = (-dx * sa + dy * ca) / max(ry, 0.5)
        d = np.sqrt(u * u + v * v)
        if wobble is not None:
            theta = np.arctan2(v, u)
            d = d * (1.0 + wobble[i, 0] * np.cos(2 * theta + wobble[i, 2]) + wobble[i, 1] * np.cos(3 * theta))
        if profile == "disk":
            val = np.clip((1.0 - d) * 4.0, 0.0, 1.0)
        elif profile == "gauss":
            val = np.exp(-2.0 * d * d)
        else:  # ring: dark rim at d=1, bright halo just outside, mild interior
            val = -np.exp(-((d - 1.0) ** 2) / 0.012) + 0.6 * np.exp(-((d - 1.22) ** 2) / 0.02) - 0.15 * (d < 1.0)
        val = val.astype(np.float32) * float(values[i])
        win = out[y0:y1, x0:x1]
        if combine == "max":
            np.maximum(win, val, out=win)
        else:
            win += val
    return out


def clustered_points(rng: np.random.Generator, n: int, shape: tuple[int, int], clustering: float) -> np.ndarray:
    """n points (y, x) in the image, mixing uniform placement with Gaussian clusters."""
    h, w = shape
    n_clustered = int(round(n * clustering))
    pts = [rng.random((n - n_clustered, 2)) * [h, w]]
    if n_clustered:
        k = int(rng.integers(1, 6))
        cent = rng.random((k, 2)) * [h, w]
        which = rng.integers(0, k, n_clustered)
        spread = rng.uniform(0.05, 0.2) * min(h, w)
        pts.append(cent[which] + rng.normal(0, spread, (n_clustered, 2)))
    p = np.concatenate(pts, axis=0)
    return np.clip(p, 0, [h - 1, w - 1]).astype(np.float32)


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Clip a [0, 1] float array to uint8."""
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def add_sensor_noise(rng: np.random.Generator, img: np.ndarray, photons: float, read_sigma: float) -> np.ndarray:
    """Poisson shot noise at `photons` counts per unit intensity plus Gaussian read noise."""
    if photons > 0:
        img = rng.poisson(np.clip(img, 0, None) * photons).astype(np.float32) / photons
    if read_sigma > 0:
        img = img + rng.normal(0, read_sigma, img.shape).astype(np.float32)
    return img
