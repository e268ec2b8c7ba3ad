"""Flow-cytometry plots: density (pseudocolour) or dot plots of Gaussian populations, with axes and gates."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from training.synth._common import blur, to_uint8


def _jet(v: np.ndarray) -> np.ndarray:
    """The classic cytometry pseudocolour ramp (blue→cyan→green→yellow→red), v in [0, 1]."""
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return np.stack([r, g, b], -1)


def flow_plot(style: np.random.Generator, field: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A bivariate flow-cytometry plot on white with a dark frame (so panel borders are never white)."""
    h, w = size
    mode = str(style.choice(["density", "dots", "contour"], p=[0.5, 0.35, 0.15]))
    n_pop = int(style.integers(1, 6))
    means = style.uniform(0.15, 0.85, (n_pop, 2))
    scales = style.uniform(0.03, 0.14, (n_pop, 2))
    corr = style.uniform(-0.7, 0.7, n_pop)
    weights = style.dirichlet(np.ones(n_pop))
    n_events = int(style.choice([2000, 5000, 10000, 30000]))
    gate = style.random() < 0.6
    axis_frac = style.uniform(0.1, 0.18)
    dot_colour = np.asarray(style.choice(np.array([[0, 0, 0], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])), np.float32)

    ml, mb = int(axis_frac * w), int(axis_frac * h)
    pw, ph = max(4, w - ml - 3), max(4, h - mb - 3)
    wts = weights * field.uniform(0.8, 1.2, n_pop)
    counts = field.multinomial(n_events, wts / wts.sum())
    pts = []
    for k in range(n_pop):  # one draw per population, vectorised over events
        c = corr[k] * scales[k, 0] * scales[k, 1]
        cov = [[scales[k, 0] ** 2, c], [c, scales[k, 1] ** 2]]
        pts.append(field.multivariate_normal(means[k] + field.normal(0, 0.01, 2), cov, int(counts[k])))
    p = np.concatenate(pts, 0) if pts else np.zeros((0, 2))
    # log-like compression near the axes, as on biexponential scales
    p = np.clip(p, -0.05, 1.02)
    hist, _, _ = np.histogram2d(1 - p[:, 1], p[:, 0], bins=(ph, pw), range=((0, 1), (0, 1)))
    img = np.ones((h, w, 3), np.float32)
    if mode == "dots":
        mask = hist > 0
        sub = np.where(mask[..., None], dot_colour, 1.0)
    else:
        d = blur(hist.astype(np.float32), 1.0 + 0.004 * min(pw, ph))
        d = np.log1p(d * 4) / (np.log1p(d.max() * 4) + 1e-6)
        if mode == "density":
            sub = np.where((d > 0.03)[..., None], _jet(0.15 + 0.85 * d), 1.0)
        else:
            levels = np.floor(d * 8) / 8
            edge = (np.abs(np.diff(levels, axis=0, prepend=levels[:1])) + np.abs(np.diff(levels, axis=1, prepend=levels[:, :1]))) > 0
            sub = np.where(edge[..., None], dot_colour, 1.0)
    img[3 : 3 + ph, ml : ml + pw] = sub
    pil = Image.fromarray(to_uint8(img))
    draw = ImageDraw.Draw(pil)
    draw.rectangle([ml - 1, 2, ml + pw, 3 + ph], outline=(0, 0, 0))
    for i in range(1, 5):  # log-decade ticks
        x = ml + int(pw * i / 5)
        y = 3 + int(ph * i / 5)
        draw.line([x, 3 + ph, x, 3 + ph + max(2, mb // 5)], fill=(0, 0, 0))
        draw.line([ml - 1 - max(2, ml // 5), y, ml - 1, y], fill=(0, 0, 0))
    if gate:
        g = means[int(style.integers(0, n_pop))]
        gx0, gx1 = ml + int((g[0] - 0.15) * pw), ml + int((g[0] + 0.15) * pw)
        gy0, gy1 = 3 + int((1 - g[1] - 0.15) * ph), 3 + int((1 - g[1] + 0.15) * ph)
        draw.rectangle([gx0, gy0, gx1, gy1], outline=(0, 0, 0), width=1)
    # a frame around the whole plot: compound-figure gutters stay distinguishable from the plot
    draw.rectangle([0, 0, w - 1, h - 1], outline=(40, 40, 40), width=1)
    return np.asarray(pil)
