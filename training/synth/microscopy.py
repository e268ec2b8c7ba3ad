"""Fluorescence microscopy fields and bright-field cell images.

Each renderer takes a *style* generator (seeded by the specimen: magnification,
channels, density, focus, noise) and a *field* generator (seeded by specimen
and field index: where the cells are), so two fields of one specimen share
their statistics but not their content — the hard negatives of the benchmark.
"""
from __future__ import annotations

import numpy as np

from training.synth._common import (
    add_sensor_noise,
    blur,
    clustered_points,
    smooth_noise,
    splat_ellipses,
    to_uint8,
)

# Channel colours of common fluorophores (RGB weights): DAPI, GFP/FITC, Cy3/TRITC, Cy5 as magenta.
_PALETTE = {
    "blue": (0.25, 0.45, 1.0),
    "green": (0.1, 1.0, 0.15),
    "red": (1.0, 0.12, 0.1),
    "magenta": (1.0, 0.1, 0.9),
    "cyan": (0.1, 0.9, 1.0),
    "yellow": (1.0, 0.9, 0.1),
    "white": (1.0, 1.0, 1.0),
}


def _scale(size: tuple[int, int]) -> float:
    return float(np.sqrt(min(size) / 256.0))


def fluorescence(style: np.random.Generator, field: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A 1–4 channel fluorescence field (nuclei, cytoplasm, puncta, membrane) as uint8 RGB (h, w, 3)."""
    h, w = size
    n_channels = int(style.choice([1, 2, 3, 4], p=[0.25, 0.3, 0.3, 0.15]))
    nuc_r = style.uniform(3.0, 14.0) * _scale(size)
    elong = style.uniform(1.0, 1.6)
    density = style.uniform(0.08, 0.55)
    clustering = style.uniform(0.0, 0.8)
    focus = style.uniform(0.0, 2.2) if style.random() < 0.6 else 0.0
    photons = style.uniform(15.0, 400.0)
    read_sigma = style.uniform(0.003, 0.03)
    background = style.uniform(0.0, 0.08)
    cyto_factor = style.uniform(1.6, 3.2)
    chromatin = style.uniform(0.1, 0.6)
    single_colour = str(style.choice(["white", "green", "red", "blue", "cyan"]))
    order = ["blue", "green", "red", "magenta"]
    if style.random() < 0.3:
        order = ["blue", "red", "green", "cyan"]
    gains = style.uniform(0.6, 1.2, 4)
    puncta_per_cell = style.uniform(2, 25)

    area_per_cell = np.pi * (nuc_r * cyto_factor) ** 2
    n_cells = max(1, int(field.poisson(max(density * h * w / area_per_cell, 1.0))))
    n_cells = min(n_cells, 1500)
    centers = clustered_points(field, n_cells, size, clustering)
    rr = nuc_r * field.lognormal(0.0, 0.18, n_cells)
    radii = np.stack([rr, rr * field.uniform(1.0, elong, n_cells)], axis=1)
    angles = field.uniform(0, np.pi, n_cells)
    wob = np.stack([field.uniform(0, 0.12, n_cells), field.uniform(0, 0.06, n_cells), field.uniform(0, 6.28, n_cells)], 1)
    nuc_vals = field.lognormal(0.0, 0.25, n_cells) * 0.7
    mitotic = field.random(n_cells) < 0.03
    nuc_vals[mitotic] *= 1.6
    radii[mitotic] *= 0.7

    channels: list[np.ndarray] = []
    texture = smooth_noise(field, size, max(nuc_r * 0.6, 2.0), octaves=2)
    nuclei = splat_ellipses(size, centers, radii, angles, nuc_vals, "disk", wob)
    nuclei *= (1.0 - chromatin) + chromatin * texture
    channels.append(nuclei)
    if n_channels >= 2:
        cy_radii = radii * cyto_factor * field.uniform(0.8, 1.2, (n_cells, 1))
        cy_wob = np.stack([field.uniform(0.05, 0.3, n_cells), field.uniform(0, 0.15, n_cells), field.uniform(0, 6.28, n_cells)], 1)
        cyto = splat_ellipses(size, centers, cy_radii, field.uniform(0, np.pi, n_cells), field.lognormal(-0.9, 0.35, n_cells), "disk", cy_wob)
        fib = smooth_noise(field, size, max(nuc_r * 1.5, 3.0), octaves=3)
        channels.append(blur(cyto, nuc_r * 0.25) * (0.5 + 0.8 * fib))
    if n_channels >= 3:
        n_p = int(n_cells * puncta_per_cell)
        owner = field.integers(0, n_cells, n_p)
        off = field.normal(0, 1, (n_p, 2)) * (radii[owner] * cyto_factor * 0.5)
        pts = np.clip(centers[owner] + off, 0, [h - 1, w - 1]).astype(int)
        spots: np.ndarray = np.zeros(size, np.float32)
        np.add.at(spots, (pts[:, 0], pts[:, 1]), field.lognormal(0, 0.5, n_p).astype(np.float32))
        spots = blur(spots, max(0.7, nuc_r * 0.12)) * (nuc_r * 0.9)
        channels.append(spots)
    if n_channels >= 4:
        base = channels[1] if len(channels) > 1 else nuclei
        gy, gx = np.gradient(blur(base, 1.0))
        channels.append(np.sqrt(gx * gx + gy * gy) * nuc_r * 1.5)

    rgb = np.zeros((h, w, 3), np.float32)
    for i, ch in enumerate(channels):
        ch = blur(ch, focus) if focus > 0 else ch
        peak = float(np.percentile(ch, 99.7)) + 1e-6
        ch = ch / peak * gains[i] * 0.9 + background
        ch = add_sensor_noise(field, ch, photons, read_sigma)
        colour = _PALETTE[single_colour] if n_channels == 1 else _PALETTE[order[i]]
        rgb += ch[:, :, None] * np.asarray(colour, np.float32)
    return to_uint8(rgb)


def brightfield(style: np.random.Generator, field: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Unstained cells in bright-field / phase contrast: dark rims, bright halos, uneven illumination."""
    h, w = size
    r0 = style.uniform(5.0, 20.0) * _scale(size)
    elong = style.uniform(1.0, 2.5)
    density = style.uniform(0.05, 0.45)
    clustering = style.uniform(0.0, 0.7)
    bg_level = style.uniform(0.45, 0.8)
    contrast = style.uniform(0.15, 0.4)
    tint = np.asarray([1.0, style.uniform(0.95, 1.02), style.uniform(0.82, 1.0)], np.float32)
    if style.random() < 0.5:
        tint = np.ones(3, np.float32)
    vignette = style.uniform(0.0, 0.35)
    focus = style.uniform(0.0, 1.5)
    noise_sigma = style.uniform(0.005, 0.025)

    n_cells = min(1200, max(1, int(field.poisson(max(density * h * w / (np.pi * r0 * r0 * elong), 1.0)))))
    centers = clustered_points(field, n_cells, size, clustering)
    rr = r0 * field.lognormal(0, 0.2, n_cells)
    radii = np.stack([rr, rr * field.uniform(1.0, elong, n_cells)], 1)
    wob = np.stack([field.uniform(0, 0.15, n_cells), field.uniform(0, 0.08, n_cells), field.uniform(0, 6.28, n_cells)], 1)
    cells = splat_ellipses(size, centers, radii, field.uniform(0, np.pi, n_cells), field.uniform(0.6, 1.2, n_cells), "ring", wob, combine="add")
    inner = splat_ellipses(size, centers, radii * 0.35, field.uniform(0, np.pi, n_cells), field.uniform(0.1, 0.4, n_cells), "gauss", None)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h * field.uniform(0.3, 0.7), w * field.uniform(0.3, 0.7)
    illum = 1.0 - vignette * (((yy - cy) / h) ** 2 + ((xx - cx) / w) ** 2) * 2.0
    tex = smooth_noise(field, size, r0 * 3, octaves=3) - 0.5
    img = (bg_level + contrast * (cells - inner) + 0.06 * tex) * illum
    img = blur(img, focus)
    img = img + field.normal(0, noise_sigma, img.shape).astype(np.float32)
    return to_uint8(img[:, :, None] * tint)
