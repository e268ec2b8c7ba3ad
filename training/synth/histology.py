"""H&E and DAB (immunohistochemistry) textures by Beer–Lambert mixing of stain maps.

Hematoxylin (nuclei), eosin (stroma, cytoplasm) and DAB (positive cells)
concentration maps are built from cells, fibrous stroma and lumens, then turned
into RGB with perturbed stain vectors, as a slide scanner would see them.
"""
from __future__ import annotations

import numpy as np

from training.synth._common import blur, clustered_points, smooth_noise, splat_ellipses, to_uint8

# Optical-density stain vectors (Ruifrok & Johnston), rows: hematoxylin, eosin, DAB.
_OD = np.asarray([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], np.float32)


def _fibres(field: np.random.Generator, size: tuple[int, int], period: float, angle: float, warp: float) -> np.ndarray:
    """Wavy collagen-like fibres: a domain-warped sinusoid, values in [0, 1]."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    n1 = smooth_noise(field, size, period * 6, 3) - 0.5
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period) + warp * 12 * n1
    return (0.5 + 0.5 * np.sin(phase)) ** 2


def _tissue(style: np.random.Generator, field: np.random.Generator, size: tuple[int, int]) -> dict[str, np.ndarray | float]:
    h, w = size
    s = float(np.sqrt(min(size) / 256.0))
    nuc_r = style.uniform(2.5, 7.0) * s
    n_lumens_rate = style.uniform(0.0, 4.0) * (h * w) / 256 ** 2
    stroma_density = style.uniform(0.4, 0.9)
    cell_density = style.uniform(0.05, 0.35)
    fib_period = style.uniform(4.0, 14.0) * s
    fib_angle = style.uniform(0, np.pi)
    fib_warp = style.uniform(0.2, 1.2)
    lymph = style.uniform(0.0, 0.3)

    # lumens (white holes) with glandular nuclei along their rims
    n_lum = int(field.poisson(n_lumens_rate))
    lum_c = field.random((n_lum, 2)).astype(np.float32) * [h, w]
    lum_r = field.uniform(8, 40, (n_lum, 1)) * s * field.uniform(0.6, 1.0, (n_lum, 2))
    lum_wob = np.stack([field.uniform(0.05, 0.25, n_lum), field.uniform(0, 0.1, n_lum), field.uniform(0, 6.28, n_lum)], 1)
    lumen = splat_ellipses(size, lum_c, lum_r, field.uniform(0, np.pi, n_lum), np.ones(n_lum), "disk", lum_wob) if n_lum else np.zeros(size, np.float32)
    rim_pts = []
    for i in range(n_lum):  # one iteration per gland, vectorised over its nuclei
        k = int(2 * np.pi * lum_r[i].mean() / (nuc_r * 2.2)) + 3
        t = np.linspace(0, 2 * np.pi, k, endpoint=False) + field.uniform(0, 1)
        rr = lum_r[i].mean() * 1.15 + nuc_r
        rim_pts.append(np.stack([lum_c[i, 0] + rr * np.sin(t), lum_c[i, 1] + rr * np.cos(t)], 1) + field.normal(0, 1.0, (k, 2)))
    n_free = int(field.poisson(cell_density * h * w / (np.pi * (nuc_r * 3) ** 2)) + 1)
    free = clustered_points(field, n_free, size, field.uniform(0, 0.6))
    pts = np.concatenate(rim_pts + [free], 0).astype(np.float32) if rim_pts else free
    pts = np.clip(pts, 0, [h - 1, w - 1])
    n = len(pts)
    is_lymph = field.random(n) < lymph
    rr = nuc_r * field.lognormal(0, 0.2, n)
    el = np.where(is_lymph, 1.0, field.uniform(1.0, 2.6, n))
    radii = np.stack([rr, rr * el], 1)
    radii[is_lymph] *= 0.75
    wob = np.stack([field.uniform(0, 0.12, n), field.uniform(0, 0.06, n), field.uniform(0, 6.28, n)], 1)
    angles = field.uniform(0, np.pi, n)
    vals = np.where(is_lymph, 1.4, 1.0) * field.uniform(0.7, 1.1, n)
    nuclei = splat_ellipses(size, pts, radii, angles, vals, "disk", wob)
    chrom = smooth_noise(field, size, max(nuc_r * 0.5, 2.0), 2)
    nuclei = nuclei * (0.65 + 0.5 * chrom)
    cyto = blur(splat_ellipses(size, pts, radii * 2.2, angles, np.ones(n), "disk", wob), nuc_r * 0.5)
    fib = _fibres(field, size, fib_period, fib_angle, fib_warp)
    patch = smooth_noise(field, size, fib_period * 4, 3)
    fib2 = _fibres(field, size, fib_period * 1.7, fib_angle + field.uniform(0.6, 1.2), fib_warp * 1.5)
    stroma = stroma_density * (0.25 + 0.45 * (fib * patch + fib2 * (1 - patch)) + 0.3 * smooth_noise(field, size, fib_period, 3))
    stroma = stroma * (0.6 + 0.8 * smooth_noise(field, size, min(size) / 4, 3))
    hole = np.clip(lumen, 0, 1)
    return {"nuclei": nuclei, "cyto": cyto, "stroma": stroma, "hole": hole, "pts": pts, "radii": radii, "angles": angles, "wob": wob}


def _compose(conc: np.ndarray, od: np.ndarray, field: np.random.Generator, blur_sigma: float) -> np.ndarray:
    """conc (h, w, k) stain concentrations, od (k, 3) -> RGB uint8 via Beer–Lambert."""
    optical = np.tensordot(conc, od, axes=([2], [0]))
    rgb = np.exp(-optical * np.log(10.0)) * 0.97
    rgb = blur(rgb, blur_sigma) + field.normal(0, 0.01, rgb.shape).astype(np.float32)
    return to_uint8(rgb)


def he(style: np.random.Generator, field: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Hematoxylin & eosin: purple nuclei, pink stroma and cytoplasm, white lumens."""
    od = _OD[:2] * style.uniform(0.8, 1.2, (2, 3)).astype(np.float32)
    h_gain, e_gain = style.uniform(0.7, 1.3), style.uniform(0.25, 0.7)
    t = _tissue(style, field, size)
    keep = 1.0 - np.asarray(t["hole"])
    H = (np.asarray(t["nuclei"]) * 0.9 + 0.04 * np.asarray(t["stroma"])) * h_gain * keep
    E = (np.asarray(t["stroma"]) * 0.7 + 0.5 * np.asarray(t["cyto"])) * e_gain * keep
    return _compose(np.stack([H, E], 2), od, field, field.uniform(0.3, 1.0))


def dab(style: np.random.Generator, field: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """DAB immunohistochemistry: blue hematoxylin counterstain, brown positive cells (nuclear or membranous)."""
    od = _OD[[0, 2]] * style.uniform(0.85, 1.15, (2, 3)).astype(np.float32)
    positive_fraction = style.uniform(0.05, 0.7)
    pattern = str(style.choice(["nuclear", "membrane", "cytoplasm"]))
    h_gain, d_gain = style.uniform(0.35, 0.8), style.uniform(0.6, 1.4)
    t = _tissue(style, field, size)
    keep = 1.0 - np.asarray(t["hole"])
    pts, radii, angles, wob = (np.asarray(t[k]) for k in ("pts", "radii", "angles", "wob"))
    n = len(pts)
    pos = (field.random(n) < positive_fraction).astype(np.float32) * field.uniform(0.5, 1.2, n)
    size2 = np.asarray(t["nuclei"]).shape
    if pattern == "nuclear":
        d = splat_ellipses(size2, pts, radii * 1.05, angles, pos, "disk", wob)
    else:
        outer = splat_ellipses(size2, pts, radii * 2.4, angles, pos, "disk", wob)
        inner = splat_ellipses(size2, pts, radii * 1.9, angles, pos, "disk", wob)
        d = outer - (0.8 * inner if pattern == "membrane" else 0.3 * inner)
    H = (np.asarray(t["nuclei"]) * 0.8 + 0.05 * np.asarray(t["stroma"])) * h_gain * keep
    D = blur(np.clip(d, 0, None), 0.8) * d_gain * keep + 0.03 * np.asarray(t["stroma"]) * keep
    return _compose(np.stack([H, D], 2), od, field, field.uniform(0.3, 1.0))
