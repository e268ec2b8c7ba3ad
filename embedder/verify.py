"""Pixel check of a candidate pair: does one panel, turned, cropped and rescaled, lie on the other?

The BTA head compares two pooled vectors, so it cannot tell a reused field from
another field of the same specimen: they share colours, texture and density. A
reused panel, however, shows the *same pixels* after the alteration, so a dense
search for the alteration finds a placement with a normalised cross-correlation
(NCC) near 1, while another field of the same specimen does not line up anywhere.

The search covers what the alterations do (training.alterations):
- the 8 rotations/flips (D4), as a view of the panel taken as the template;
- crops (keep 0.6-0.9 per side), as template scales relative to the container, and
  after the fine stage a slight stretch of one side against the other (a crop rarely
  keeps the same share of both sides, and a figure slot can squeeze a panel);
- small rotations (up to ±15°), as template angles;
- recolouring and grey: NCC on luminance is blind to gain and offset;
- noise, blur, JPEG and rescaling: both sides are compared at low resolution.
Either panel can be the cropped one, so both directions are tried. The template
is the centre of the (turned, rescaled) panel, so it always lies inside the
container even when aspect ratios differ slightly or corners were rotated away.

Coarse to fine: every hypothesis is scored at `coarse_side` pixels, the best few
are refined with finer scale and angle steps at `fine_side` pixels. A pair whose best
coarse placement correlates below `AlignConfig.screen` is clearly not a copy and stops
there (a cascade: most k-NN candidates of real papers are such pairs). Correlations
are batched: one direct `conv2d` per coarse scale, one FFT for all templates of a later
stage (`benchmarks/bench_pixel_check.py` times it; docs/pixel-check.md#cost).

Detail: at low resolution two samples of one texture (two flow plots of the same
population, two fields of one tissue) can still correlate at 0.95, because their
shared *density* dominates. The best placement is therefore checked once more at
`detail_side` pixels on the high-pass residual (image minus its local mean),
where only the same dots, cells and edges correlate. Blur and noise weaken that
`detail` correlation for true copies too, which is why it is one input of the
fused score (embedder.fusion) and not a veto.
"""
from __future__ import annotations

import bisect
import functools
import heapq
import io
import itertools
import logging
import math
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from embedder.d4 import D4_NAMES, IDENTITY, apply_to_tensor, inverse_view

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class AlignConfig:
    """Search ranges of the pixel check. Stored in the checkpoint meta next to the fusion weights."""

    coarse_side: int = 32  # geometric-mean side of the container at the coarse stage, in pixels
    fine_side: int = 64  # ... and at the fine stage
    scales: tuple[float, ...] = (1.0, 0.85, 0.72, 0.6)  # side of the cropped panel / side of the container
    angles: tuple[float, ...] = (0.0, -6.0, 6.0, -12.0, 12.0)  # degrees, counter-clockwise
    aspects: tuple[float, ...] = (0.93, 1.0, 1.07)  # template height stretch against its width (stretch pass)
    centre: float = 0.8  # fraction of the template side kept (its centre) for the search
    refine_top: int = 3  # coarse hypotheses refined at the fine stage
    min_side: int = 8  # templates smaller than this are not tried
    detail_side: int = 128  # geometric-mean side of the container at the detail stage
    detail_kernel: int = 5  # side of the local mean the detail stage subtracts, in detail pixels
    # stretch pass also tries the template's own aspect ratio (a crop keeping 0.67 x 0.54 of the sides is
    # otherwise squeezed into the container's shape; off in calibrations made before it: issue 13)
    own_aspect: bool = False
    # cascade: a pair whose best coarse placement correlates below this is reported from the coarse stage,
    # without the fine, stretch (and detail) searches (docs/pixel-check.md#cost); 0 searches every pair in full
    screen: float = 0.6
    screen_detail: bool = True  # a screened pair still gets its detail correlation, at the coarse placement

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlignConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("scales", "angles", "aspects"):
            if key in known:
                known[key] = tuple(float(v) for v in known[key])
        return cls(**known)


@dataclass(frozen=True)
class Alignment:
    """The best placement found between panels a and b.

    `correlation` is the NCC of the placement in [-1, 1] (0 when nothing could be
    compared, e.g. a uniform panel). `transform` names the D4 view mapping **b onto a**
    (jobs.report's convention), `angle` the counter-clockwise turn in degrees that
    follows that view in mapping b onto a,
    `scale` the side of the smaller (cropped) content relative to the other panel,
    `b_inside_a` which of the two is the cropped one, and `detail` the NCC of the
    placement's high-pass residuals at the detail stage (module docstring).
    """

    correlation: float
    detail: float = 0.0
    transform: str = IDENTITY
    angle: float = 0.0
    scale: float = 1.0
    b_inside_a: bool = True


# Many pairs' `Alignment`s as one structured array, a row each: what the pixel check of a scan returns.
# As objects they held ~300 bytes a pair in the driver, as rows 34 (`benchmarks/bench_pair_results.py`).
ALIGNMENT_DTYPE = np.dtype([("correlation", "f8"), ("detail", "f8"), ("view", "u1"), ("angle", "f8"),
                            ("scale", "f8"), ("b_inside_a", "?")])


def pack_alignments(found: Sequence[Alignment]) -> np.ndarray:
    """`found` as rows of `ALIGNMENT_DTYPE` (the transform by its index in `D4_NAMES`)."""
    return np.array([(x.correlation, x.detail, D4_NAMES.index(x.transform), x.angle, x.scale, x.b_inside_a)
                     for x in found], dtype=ALIGNMENT_DTYPE)


def unpack_alignment(row: np.void) -> Alignment:
    """The `Alignment` of one row of `ALIGNMENT_DTYPE`."""
    return Alignment(float(row["correlation"]), float(row["detail"]), D4_NAMES[int(row["view"])],
                     float(row["angle"]), float(row["scale"]), bool(row["b_inside_a"]))


def unpack_alignments(rows: np.ndarray) -> list[Alignment]:
    """The `Alignment` of each row of `ALIGNMENT_DTYPE`."""
    return [unpack_alignment(row) for row in rows]


def no_alignments(n: int) -> np.ndarray:
    """`n` rows of `ALIGNMENT_DTYPE` as `Alignment(0.0)`: pairs not checked (the fusion reads them so)."""
    return pack_alignments([Alignment(0.0)]).repeat(n)


@dataclass(frozen=True)
class _Hypothesis:
    b_inside_a: bool
    view: int
    scale: float
    angle: float
    correlation: float
    position: int  # flat index of the template's top-left corner in the container
    aspect: float = 1.0  # the template's height scale is scale * aspect


def luminance(image: Image.Image, side: int) -> torch.Tensor:
    """Grey (H, W) float tensor in [0, 1] whose geometric-mean side is `side` (aspect kept)."""
    return torch.from_numpy(grey_image(image, side).astype(np.float32) / 255.0)


def rotate(t: torch.Tensor, angles: Sequence[float]) -> torch.Tensor:
    """Rotate a (H, W) or (N, H, W) tensor by each angle (degrees, counter-clockwise) -> (A, N, H, W).

    Rotation is about the centre with edge pixels repeated; angle 0 is an exact copy.
    """
    stack = t[None] if t.dim() == 2 else t
    n, h, w = stack.shape
    turned = tuple(float(a) for a in angles if a != 0.0)
    if not turned:  # angle 0 stays an exact copy, not resampled
        return stack[None].repeat(len(angles), 1, 1, 1)
    # the n images as channels of one sample per angle: one grid per angle, reused across calls
    src = stack[None].expand(len(turned), n, h, w)
    sampled = iter(F.grid_sample(src, _rotation_grid(turned, h, w), mode="bilinear", padding_mode="border",
                                 align_corners=False))
    return torch.stack([stack if a == 0.0 else next(sampled) for a in angles])


@functools.lru_cache(maxsize=512)
def _rotation_grid(angles: tuple[float, ...], h: int, w: int) -> torch.Tensor:
    """`affine_grid` of the turns by `angles` of an h x w image (A, h, w, 2); cached: the same sides recur."""
    thetas = []
    for angle in angles:
        rad = math.radians(angle)
        c, s = math.cos(rad), math.sin(rad)
        # affine_grid maps output to input coordinates, normalised per axis (y down): the inverse turn,
        # corrected for the aspect ratio so that the turn is rigid
        thetas.append([[c, -s * h / w, 0.0], [s * w / h, c, 0.0]])
    theta = torch.tensor(thetas, dtype=torch.float32)[:, :, :, None]  # (A, 2, 3, 1)
    # F.affine_grid's product of the base grid (x, y, 1) and theta, summed in its order (the same numbers bit for
    # bit, tests/embedder/test_verify.py), as broadcast products: a batched matmul with an inner size of 3 cost more
    x, y, _ = _base_grid(h, w)[0].T
    grid = x * theta[:, :, 0] + y * theta[:, :, 1] + theta[:, :, 2]  # (A, 2, h * w)
    return grid.transpose(1, 2).reshape(len(angles), h, w, 2)


@functools.lru_cache(maxsize=512)
def _base_grid(h: int, w: int) -> torch.Tensor:
    """The (1, h*w, 3) grid of pixel centres (x, y, 1), normalised to [-1, 1] as `F.affine_grid` makes it."""
    grid = torch.empty(1, h, w, 3)
    grid[..., 0] = torch.linspace(-1, 1, w) * (w - 1) / w
    grid[..., 1] = (torch.linspace(-1, 1, h) * (h - 1) / h)[:, None]
    grid[..., 2] = 1.0
    return grid.view(1, h * w, 3)


def _resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(t[None, None], size=size, mode="bilinear", antialias=True, align_corners=False)[0, 0]


def _window_sums(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Sum of every h x w window of a (H, W) tensor, from an integral image (float64 against drift)."""
    ii = F.pad(t.double().cumsum(0).cumsum(1), (1, 0, 1, 0))
    return (ii[h:, w:] - ii[:-h, w:] - ii[h:, :-w] + ii[:-h, :-w]).float()


# Containers of at least this many pixels are correlated by FFT, smaller ones directly:
# `benchmarks/bench_pixel_check.py --kernels` measured direct conv2d faster at 32-64 px and
# the FFT 1.7-6x faster at 128 px (the detail stage), on one thread.
FFT_MIN_PIXELS = 96 * 96


def correlate_direct(container: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """(H, W) container, (N, h, w) templates -> (N, H - h + 1, W - w + 1) sums of products per placement."""
    return F.conv2d(container[None, None], templates[:, None])[0]


def correlate_fft(container: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """The same as `correlate_direct`, as a circular correlation through the FFT (valid placements never wrap)."""
    H, W = container.shape
    _, h, w = templates.shape
    spectrum = torch.fft.rfft2(container)[None] * torch.fft.rfft2(templates, s=(H, W)).conj()
    return torch.fft.irfft2(spectrum, s=(H, W))[:, :H - h + 1, :W - w + 1]


def cross_correlate(container: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """`correlate_direct` or `correlate_fft`, whichever is faster for the container's size."""
    H, W = container.shape
    return correlate_direct(container, templates) if H * W < FFT_MIN_PIXELS else correlate_fft(container, templates)


def best_ncc(container: torch.Tensor, templates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Highest NCC of each template (N, h, w) over all placements inside `container` (H, W).

    Returns `(ncc (N,), flat position (N,))`; the position indexes the
    (H - h + 1) x (W - w + 1) grid of top-left corners.
    """
    n, h, w = templates.shape
    H, W = container.shape
    if h > H or w > W:
        return torch.full((n,), -1.0), torch.zeros(n, dtype=torch.long)
    tpl = templates - templates.mean(dim=(1, 2), keepdim=True)
    tpl_norm = tpl.flatten(1).norm(dim=1)
    cross = cross_correlate(container, tpl)  # zero-mean template: the container's mean drops out
    s1 = _window_sums(container, h, w)
    s2 = _window_sums(container * container, h, w)
    window_norm = (s2 - s1 * s1 / (h * w)).clamp_min(0.0).sqrt()
    denom = tpl_norm[:, None, None] * window_norm[None]
    # a flat template or window (std below one grey level) carries no evidence: NCC 0 there
    ncc = torch.where(denom > h * w / 255.0**2, cross / denom.clamp_min(1e-12), torch.zeros_like(cross))
    return ncc.flatten(1).max(dim=1)


def _templates(views: Sequence[torch.Tensor], container_shape: tuple[int, int], scale: float, angles: Sequence[float],
               centre: float, aspect: float = 1.0) -> torch.Tensor | None:
    """Views (V, h, w) rescaled to `scale` of the container (height `scale * aspect`), turned by each angle,
    centres cut -> (V*A, ...).

    Ordered view-major: index = view_position * len(angles) + angle_position.
    """
    full = _template_size(container_shape, scale, aspect)
    cut = (max(1, round(full[0] * centre)), max(1, round(full[1] * centre)))
    if min(cut) < 4:
        return None
    resized = torch.stack([_resize(v, full) for v in views])
    turned = rotate(resized, angles).transpose(0, 1)  # (V, A, H, W)
    y0, x0 = (full[0] - cut[0]) // 2, (full[1] - cut[1]) // 2
    return turned[:, :, y0:y0 + cut[0], x0:x0 + cut[1]].reshape(-1, *cut)


def _template_size(container: tuple[int, int], scale: float, aspect: float) -> tuple[int, int]:
    """Height and width of a template at `scale` of the container (height stretched by `aspect`), before its centre cut."""
    H, W = container
    return max(4, round(H * scale * aspect)), max(4, round(W * scale))


def own_aspects(container: torch.Tensor, template: torch.Tensor, view: int, scale: float) -> tuple[float, ...]:
    """The height stretch that gives a template placed at `scale` its own aspect ratio (view applied).

    Templates are shaped like the container (`_templates`); this is the `aspect` that keeps
    the template's proportions instead, when it differs from 1 by more than 5% and the
    template still fits.
    """
    h, w = template.shape[-2:]
    if view % 2:  # a quarter turn swaps the template's sides
        h, w = w, h
    H, W = container.shape[-2:]
    aspect = (h / w) / (H / W)
    if abs(aspect - 1.0) < 0.05 or scale * math.sqrt(max(aspect, 1.0 / aspect)) > 1.0:
        return ()
    return (aspect,)


def _scales_around(scale: float, factors: Sequence[float]) -> list[float]:
    """`scale` times each factor, capped at 1 (a template never outgrows its container), largest first."""
    return sorted({min(1.0, scale * f) for f in factors}, reverse=True)


def _angles_around(angle: float, step: float) -> tuple[float, ...]:
    return (angle - step, angle, angle + step) if step else (angle,)


# ------------------------------------------------------------------ precomputed luminances
# What the search needs of a panel is its luminance at three sides (coarse, fine, detail):
# uint8 grey images (`luminance` is a uint8 image / 255), so they are stored exactly,
# computed once when the panel is embedded (`jobs.pipeline.EmbedPanels`) instead of
# decoding the full-resolution panel for every pair it is in.
_PIXELS_MAGIC = b"RSP1"
_PIXELS_HEADER = struct.Struct("<4sB")   # magic, number of sides
_PIXELS_SIDE = struct.Struct("<HHH")     # side, height, width; then height * width uint8


def feature_sides(config: AlignConfig) -> tuple[int, ...]:
    """The luminance sides `align_pair` reads under `config` (distinct, ascending)."""
    return tuple(sorted({config.coarse_side, config.fine_side, config.detail_side}))


def grey_image(image: Image.Image, side: int) -> np.ndarray:
    """The uint8 grey image `luminance(image, side)` is made of (luminance = this / 255)."""
    image = image.convert("RGB")
    w, h = image.size
    if w <= 0 or h <= 0:
        raise ValueError("empty image")
    f = side / math.sqrt(w * h)
    size = (max(4, round(w * f)), max(4, round(h * f)))
    return np.asarray(image.convert("L").resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), dtype=np.uint8)


@dataclass(frozen=True)
class PanelPixels:
    """A panel's grey images at the sides the pixel check reads (side -> (H, W) uint8)."""

    greys: dict[int, np.ndarray]
    # what the search derives from this panel (containers, templates), kept while the panel object lives:
    # a scan's task compares each panel with several candidates in a row (`jobs.pixel_check.align_chunk`)
    memo: dict[tuple[int, int], _Container] = field(default_factory=dict, compare=False, repr=False)

    def luminance(self, side: int) -> torch.Tensor:
        """The same tensor as `luminance(image, side)` of the panel these were computed from."""
        return torch.from_numpy(self.greys[side].astype(np.float32) / 255.0)

    def covers(self, config: AlignConfig) -> bool:
        return all(s in self.greys for s in feature_sides(config))

    def to_bytes(self) -> bytes:
        parts = [_PIXELS_HEADER.pack(_PIXELS_MAGIC, len(self.greys))]
        for side, grey in sorted(self.greys.items()):
            parts += [_PIXELS_SIDE.pack(side, *grey.shape), np.ascontiguousarray(grey, np.uint8).tobytes()]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> PanelPixels:
        """Inverse of `to_bytes`; ValueError for anything else."""
        buf = memoryview(data)
        if len(buf) < _PIXELS_HEADER.size:
            raise ValueError("not panel pixels")
        magic, n = _PIXELS_HEADER.unpack_from(buf, 0)
        if magic != _PIXELS_MAGIC:
            raise ValueError("not panel pixels")
        pos, greys = _PIXELS_HEADER.size, {}
        for _ in range(n):
            side, h, w = _PIXELS_SIDE.unpack_from(buf, pos)
            pos += _PIXELS_SIDE.size
            if pos + h * w > len(buf):
                raise ValueError("truncated panel pixels")
            greys[side] = np.frombuffer(buf[pos:pos + h * w], dtype=np.uint8).reshape(h, w)
            pos += h * w
        return cls(greys)


def pixel_features(image: Image.Image, config: AlignConfig = AlignConfig()) -> bytes:
    """What the pixel check needs of a panel under `config`, as bytes (`PanelPixels.to_bytes`).

    Raises ValueError for an empty image.
    """
    return PanelPixels({side: grey_image(image, side) for side in feature_sides(config)}).to_bytes()


def panel_pixels(data: bytes | memoryview | None, config: AlignConfig) -> PanelPixels | None:
    """Stored `pixel_features` as `PanelPixels`, or None when absent, unreadable or made for other sides."""
    if data is None:
        return None
    try:
        pixels = PanelPixels.from_bytes(data)
    except (ValueError, struct.error):
        return None
    return pixels if pixels.covers(config) else None


Panel = Image.Image | PanelPixels  # what `align_pair` compares


def _luminance_of(panel: Panel, side: int) -> torch.Tensor:
    return panel.luminance(side) if isinstance(panel, PanelPixels) else luminance(panel, side)


class _Container:
    """A container luminance and what every correlation against it reuses: integral images, spectra, window norms."""

    def __init__(self, t: torch.Tensor) -> None:
        self.t = t
        self.shape = (int(t.shape[0]), int(t.shape[1]))
        self._ii: tuple[torch.Tensor, torch.Tensor] | None = None
        self._norms: dict[tuple[int, int], torch.Tensor] = {}
        self._spectra: dict[tuple[int, int], torch.Tensor] = {}
        self._templates: dict[tuple[Any, ...], _Prepared | None] = {}
        self._template_bytes = 0

    def templates(self, key: tuple[Any, ...], make: Callable[[], _Prepared | None]) -> _Prepared | None:
        """This panel's templates for `key`, made once (its candidates' template sizes recur)."""
        if key not in self._templates:
            found = make()
            size = 0 if found is None else found.zero_mean.numel() * found.zero_mean.element_size()
            if self._template_bytes + size > MEMO_TEMPLATE_BYTES:  # bounded: a panel's memo stays small
                self._templates.clear()
                self._template_bytes = 0
            self._templates[key] = found
            self._template_bytes += size
        return self._templates[key]

    def window_norm(self, h: int, w: int) -> torch.Tensor:
        """Norm of every zero-mean h x w window (the NCC's denominator on the container's side)."""
        norm = self._norms.get((h, w))
        if norm is None:
            if self._ii is None:  # float64 against drift, as `_window_sums` (the same numbers bit for bit)
                self._ii = (F.pad(self.t.double().cumsum(0).cumsum(1), (1, 0, 1, 0)),
                            F.pad((self.t * self.t).double().cumsum(0).cumsum(1), (1, 0, 1, 0)))
            s1, s2 = _box_sums(self._ii[0], h, w), _box_sums(self._ii[1], h, w)
            if len(self._norms) >= MEMO_WINDOW_NORMS:
                self._norms.clear()
            norm = self._norms[(h, w)] = (s2 - s1 * s1 / (h * w)).clamp_min(0.0).sqrt()
        return norm

    def spectrum(self, size: tuple[int, int]) -> torch.Tensor:
        found = self._spectra.get(size)
        if found is None:
            found = self._spectra[size] = torch.fft.rfft2(self.t, s=size)
        return found


# What a panel keeps of its coarse templates (bytes; the templates of ~4 partners' sizes) and window norms (sizes);
# beyond it they are dropped and remade as needed.
MEMO_TEMPLATE_BYTES = 1 << 20
MEMO_WINDOW_NORMS = 64


@dataclass(frozen=True)
class _Prepared:
    """A group of templates ready to correlate: zero-mean (N, h, w) and each one's norm (N,)."""

    zero_mean: torch.Tensor
    norm: torch.Tensor


def _prepare(templates: torch.Tensor | None) -> _Prepared | None:
    if templates is None:
        return None
    zero_mean = templates - templates.mean(dim=(1, 2), keepdim=True)
    return _Prepared(zero_mean, zero_mean.flatten(1).norm(dim=1))


def _box_sums(ii: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return (ii[h:, w:] - ii[:-h, w:] - ii[h:, :-w] + ii[:-h, :-w]).float()


def _fft_size(n: int) -> int:
    """The smallest n' >= n with no prime factor above 5 (pocketfft is slow on large primes: a 37-px side)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def _best_ncc_groups(container: _Container, groups: Sequence[_Prepared | None],
                     fft: bool) -> list[tuple[list[float], list[int]] | None]:
    """`best_ncc` of each group of same-sized templates (`_prepare`d) in one container; None for a group
    that is None or does not fit. With `fft`, every group is correlated in one batched FFT (one
    call instead of one per group: at 64-128 px with few templates per group the calls' overhead
    and large direct kernels dominated); else by direct `conv2d` per group (faster at 32 px)."""
    H, W = container.shape
    live = [i for i, g in enumerate(groups) if g is not None and g.zero_mean.shape[1] <= H and g.zero_mean.shape[2] <= W]
    crosses: list[torch.Tensor | None] = [None] * len(groups)
    if fft and live:
        size = (_fft_size(H), _fft_size(W))
        padded = [F.pad(t, (0, size[1] - t.shape[2], 0, size[0] - t.shape[1]))
                  for t in (_live(groups[i]).zero_mean for i in live)]
        spectrum = container.spectrum(size)[None] * torch.fft.rfft2(torch.cat(padded)).conj()
        full = torch.fft.irfft2(spectrum, s=size)
        at = 0
        for i in live:
            n, h, w = _live(groups[i]).zero_mean.shape
            crosses[i] = full[at:at + n, :H - h + 1, :W - w + 1]
            at += n
    out: list[tuple[list[float], list[int]] | None] = [None] * len(groups)
    for i in live:
        g = _live(groups[i])
        n, h, w = g.zero_mean.shape
        cross = crosses[i]
        if cross is None:
            cross = correlate_direct(container.t, g.zero_mean)
        denom = g.norm[:, None, None] * container.window_norm(h, w)[None]
        # a flat template or window (std below one grey level) carries no evidence: NCC 0 there
        ncc = torch.where(denom > h * w / 255.0**2, cross / denom.clamp_min(1e-12), torch.zeros_like(cross))
        scores, where = ncc.flatten(1).max(dim=1)
        out[i] = (scores.tolist(), where.tolist())
    return out


def _live(group: _Prepared | None) -> _Prepared:
    assert group is not None
    return group


@dataclass(frozen=True)
class _Spec:
    """One group of templates to score: template panel's `views` at `scale` (height x `aspect`), each turned by
    every angle of `angles`, the template taken from direction `b_inside_a`."""

    b_inside_a: bool
    views: tuple[int, ...]
    scale: float
    angles: tuple[float, ...]
    aspect: float = 1.0


def _spec_templates(spec: _Spec, container: tuple[int, int], template: _Container,
                    config: AlignConfig) -> _Prepared | None:
    """The templates of `spec` ((V*A, h, w), view-major as `_templates`), None when too small to try;
    the coarse stage's (all views) made once per template panel and template size (`_Container.templates`)."""
    if len(spec.views) == 1:  # later stages: templates around one pair's hypotheses, which do not recur
        return _prepare(_make_spec_templates(spec, container, template.t, config))
    # the templates depend on the container only through their size: containers of other shapes share them
    key = (_template_size(container, spec.scale, spec.aspect), spec.views, spec.angles, config.centre, config.min_side)
    return template.templates(key, lambda: _prepare(_make_spec_templates(spec, container, template.t, config)))


def _make_spec_templates(spec: _Spec, container: tuple[int, int], template: torch.Tensor,
                         config: AlignConfig) -> torch.Tensor | None:
    if len(spec.views) == 1:
        tpl = _templates([apply_to_tensor(template, spec.views[0])], container, spec.scale, spec.angles,
                         config.centre, spec.aspect)
    else:
        tpl = _all_view_templates(template, container, spec.views, spec.scale, spec.angles, config.centre,
                                  spec.aspect)
    return None if tpl is None or min(tpl.shape[1:]) < config.min_side // 2 else tpl


def _all_view_templates(template: torch.Tensor, container: tuple[int, int], views: Sequence[int], scale: float,
                        angles: Sequence[float], centre: float, aspect: float) -> torch.Tensor | None:
    """`_templates` of many D4 views of one panel, resized and turned twice rather than once per view.

    A D4 view commutes with resizing (to the view's own sides) and with a turn (whose sense a
    mirror reverses), so each view's templates are views of the panel resized to the container's
    sides, or to them swapped for a quarter turn, and turned by +-each angle; all of them are then
    cut out of those two turned stacks by one gather (`_view_gather`).
    """
    full = _template_size(container, scale, aspect)
    cut = (max(1, round(full[0] * centre)), max(1, round(full[1] * centre)))
    if min(cut) < 4:
        return None
    need = tuple(sorted(set(angles) | {-a for a in angles}))
    swaps = tuple(sorted({v % 2 == 1 for v in views}))
    turned = [rotate(_resize(template, (full[1], full[0]) if swap else full), need)[:, 0].reshape(len(need), -1)
              for swap in swaps]  # (A', h * w) each: a quarter turn keeps the number of pixels
    index = _view_gather(full, cut, tuple(views), tuple(angles), need, swaps)
    return torch.take(torch.cat(turned) if len(turned) > 1 else turned[0], index)


@functools.lru_cache(maxsize=1024)
def _view_gather(full: tuple[int, int], cut: tuple[int, int], views: tuple[int, ...], angles: tuple[float, ...],
                 need: tuple[float, ...], swaps: tuple[bool, ...]) -> torch.Tensor:
    """Flat indices into the turned stacks of `_all_view_templates` -> (V*A, cut) templates, view-major.

    View v of angle a is view v of the stack turned by a (by -a for a mirror, which reverses the
    turn's sense), centre cut; the indices are found by taking the same views and cuts of the
    stacks' own flat positions, so the gather moves exactly the pixels the views would.
    """
    y0, x0 = (full[0] - cut[0]) // 2, (full[1] - cut[1]) // 2
    pixels = full[0] * full[1]
    rows = []
    for v in views:
        swap = v % 2 == 1
        shape = (full[1], full[0]) if swap else full
        where = apply_to_tensor(torch.arange(pixels).reshape(shape), v)[y0:y0 + cut[0], x0:x0 + cut[1]]
        first = swaps.index(swap) * len(need)
        for angle in angles:
            rows.append((first + need.index(-angle if v >= 4 else angle)) * pixels + where)
    return torch.stack(rows)


def _search_specs(containers: dict[bool, _Container], templates: dict[bool, _Container], specs: Sequence[_Spec],
                  config: AlignConfig, fft: bool) -> list[list[_Hypothesis]]:
    """Every hypothesis of each spec (views major, angles minor), one correlation batch per direction."""
    found = _correlate_specs(containers, templates, specs, config, fft)
    return [[_hypothesis(s, j, f) for j in range(len(f[0]))] if f is not None else [] for s, f in zip(specs, found)]


def _best_hypotheses(containers: dict[bool, _Container], templates: dict[bool, _Container], specs: Sequence[_Spec],
                     config: AlignConfig, fft: bool, k: int) -> list[_Hypothesis]:
    """The k best hypotheses of `specs`, best first: `_search_specs`' hypotheses, flattened and sorted by
    correlation (a stable sort), cut to k, without making the hundreds of others (the coarse stage has 320)."""
    found = [(s, f) for s, f in zip(specs, _correlate_specs(containers, templates, specs, config, fft)) if f is not None]
    scores = [c for _, f in found for c in f[0]]
    starts = list(itertools.accumulate((len(f[0]) for _, f in found), initial=0))
    best = heapq.nlargest(k, range(len(scores)), key=scores.__getitem__)  # = sorted(..., reverse=True)[:k], stably
    out = []
    for flat in best:
        i = bisect.bisect_right(starts, flat) - 1
        out.append(_hypothesis(found[i][0], flat - starts[i], found[i][1]))
    return out


def _correlate_specs(containers: dict[bool, _Container], templates: dict[bool, _Container], specs: Sequence[_Spec],
                     config: AlignConfig, fft: bool) -> list[tuple[list[float], list[int]] | None]:
    """Per spec, each template's best correlation and its position (views major, angles minor); None when
    nothing was tried (too small, does not fit). One correlation batch per direction."""
    out: list[tuple[list[float], list[int]] | None] = [None] * len(specs)
    for b_inside_a, container in containers.items():
        mine = [i for i, s in enumerate(specs) if s.b_inside_a == b_inside_a]
        if not mine:
            continue
        groups = [_spec_templates(specs[i], container.shape, templates[b_inside_a], config) for i in mine]
        for i, found in zip(mine, _best_ncc_groups(container, groups, fft)):
            out[i] = found
    return out


def _hypothesis(spec: _Spec, j: int, found: tuple[list[float], list[int]]) -> _Hypothesis:
    """The hypothesis of template j of `spec` (view-major: view j // angles, angle j % angles) and what it found."""
    view, angle = spec.views[j // len(spec.angles)], spec.angles[j % len(spec.angles)]
    return _Hypothesis(spec.b_inside_a, view, spec.scale, angle, found[0][j], found[1][j], spec.aspect)


def _containers(a: Panel, b: Panel, side: int, kernel: int = 0
                ) -> tuple[dict[bool, _Container], dict[bool, _Container]]:
    """Containers and template panels at `side` pixels by direction (True: b inside a, False: a inside b);
    with `kernel`, of the high-pass residuals (`high_pass`)."""
    ca, cb = _container_of(a, side, kernel), _container_of(b, side, kernel)
    return {True: ca, False: cb}, {True: cb, False: ca}


def _container_of(panel: Panel, side: int, kernel: int) -> _Container:
    """`panel` at `side` (high-passed with `kernel` > 0) as a `_Container`; kept in a `PanelPixels`' memo."""
    if isinstance(panel, PanelPixels) and (side, kernel) in panel.memo:
        return panel.memo[(side, kernel)]
    t = _luminance_of(panel, side)
    found = _Container(high_pass(t, kernel) if kernel else t)
    if isinstance(panel, PanelPixels):
        panel.memo[(side, kernel)] = found
    return found


def _use_fft(side: int) -> bool:
    return side * side >= FFT_MIN_BATCHED_PIXELS


# Stages whose containers have at least this many pixels correlate all their templates in one batched FFT,
# smaller ones (the 32 px coarse stage: 40 templates per group) by direct conv2d per group; measured by
# `benchmarks/bench_pixel_check.py --kernels`.
FFT_MIN_BATCHED_PIXELS = 48 * 48


@torch.inference_mode()
def align_pair(a: Panel, b: Panel, config: AlignConfig = AlignConfig()) -> Alignment:
    """Search the placement of b in a (and of a in b) that correlates best; see the module docstring.

    a and b are images, or their `PanelPixels` (the luminances precomputed at the
    config's sides, `pixel_features`): the result is the same bit for bit.
    """
    containers, templates = _containers(a, b, config.coarse_side)
    specs = [_Spec(d, tuple(range(8)), s, tuple(config.angles)) for d in (True, False) for s in config.scales]
    hyps = _best_hypotheses(containers, templates, specs, config, _use_fft(config.coarse_side),
                            max(1, config.refine_top))
    if not hyps:
        return Alignment(0.0)
    if hyps[0].correlation < config.screen:  # clearly unrelated: no finer search can make it a copy
        return _alignment(hyps[0], _detail_at(a, b, hyps[0], config) if config.screen_detail else 0.0)

    containers, templates = _containers(a, b, config.fine_side)
    fft = _use_fft(config.fine_side)
    angle_step = _half_step(config.angles)
    specs = _merged([_Spec(h.b_inside_a, (h.view,), scale, _angles_around(h.angle, angle_step))
                     for h in hyps[:config.refine_top] for scale in _scales_around(h.scale, (0.93, 1.0, 1.07))])
    best: _Hypothesis | None = None
    for found in _search_specs(containers, templates, specs, config, fft):
        for r in found:
            if best is None or r.correlation > best.correlation:
                best = r
    if best is None:  # the fine stage could not place a template: keep the coarse answer
        best = hyps[0]
    elif len(config.aspects) > 1:  # stretch pass: view and angle stay, the two sides may scale apart
        specs = [_Spec(best.b_inside_a, (best.view,), scale, (best.angle,), aspect)
                 for scale in _scales_around(best.scale, (0.97, 1.0, 1.03)) for aspect in config.aspects]
        if config.own_aspect:  # a crop that kept its own proportions: also its own aspect, at the same area
            container, template = containers[best.b_inside_a], templates[best.b_inside_a]
            for aspect in own_aspects(container.t, template.t, best.view, best.scale):
                specs += [_Spec(best.b_inside_a, (best.view,), scale, (best.angle,), aspect)
                          for scale in _scales_around(best.scale / math.sqrt(aspect), (0.95, 1.0, 1.05))]
        for found in _search_specs(containers, templates, specs, config, fft):
            for r in found:
                if r.correlation > best.correlation:
                    best = r
    return _alignment(best, _detail_at(a, b, best, config))


def _merged(specs: Sequence[_Spec]) -> list[_Spec]:
    """`specs` with those of one direction, view, scale and aspect made one (their angles joined, each once):
    the top coarse hypotheses are often neighbours, and one template group costs less than several."""
    angles: dict[tuple[bool, tuple[int, ...], float, float], list[float]] = {}
    for s in specs:
        found = angles.setdefault((s.b_inside_a, s.views, s.scale, s.aspect), [])
        found += [a for a in s.angles if a not in found]
    return [_Spec(d, views, scale, tuple(a), aspect) for (d, views, scale, aspect), a in angles.items()]


def _alignment(best: _Hypothesis, detail: float) -> Alignment:
    """The reported `Alignment` of the winning hypothesis (transform mapping b onto a)."""
    correlation = float(max(0.0, min(1.0, best.correlation)))
    # view v of b lies on a -> b is mapped onto a by v; view v of a lies on b -> by v's inverse
    # (a mirror reverses the sense of a rotation it is swapped with)
    view = best.view if best.b_inside_a else inverse_view(best.view)
    angle = best.angle if best.b_inside_a or best.view >= 4 else -best.angle
    return Alignment(correlation, max(0.0, min(1.0, detail)), D4_NAMES[view], float(angle), float(best.scale),
                     best.b_inside_a)


def high_pass(t: torch.Tensor, kernel: int) -> torch.Tensor:
    """(H, W) image minus its local mean over `kernel` x `kernel` pixels (edges replicated)."""
    x = t[None, None]
    pad = kernel // 2
    local_mean = F.avg_pool2d(F.pad(x, (pad, kernel - 1 - pad, pad, kernel - 1 - pad), mode="replicate"), kernel, stride=1)
    return (x - local_mean)[0, 0]


def _detail_at(a: Panel, b: Panel, h: _Hypothesis, config: AlignConfig) -> float:
    """Best NCC of the high-pass residuals at `detail_side`, searched just around hypothesis h."""
    containers, templates = _containers(a, b, config.detail_side, config.detail_kernel)
    angles = _angles_around(h.angle, _half_step(config.angles) / 2.0)
    specs = [_Spec(h.b_inside_a, (h.view,), scale, angles, h.aspect)
             for scale in _scales_around(h.scale, (0.97, 1.0, 1.03))]
    found = _search_specs({h.b_inside_a: containers[h.b_inside_a]}, templates, specs, config,
                          _use_fft(config.detail_side))
    return max((r.correlation for hyps in found for r in hyps), default=0.0)


def _half_step(values: Sequence[float]) -> float:
    """Half the smallest gap between distinct values (0 for a single value)."""
    distinct = sorted(set(values))
    gaps = [y - x for x, y in zip(distinct, distinct[1:])]
    return min(gaps) / 2.0 if gaps else 0.0


def align_encoded(a: bytes, b: bytes, config: AlignConfig = AlignConfig()) -> Alignment:
    """`align_pair` on two encoded images (PNG/JPEG bytes as stored); an undecodable one gives correlation 0.

    Never raises for bad pixels: one broken panel must not take down a scan.
    """
    try:
        with Image.open(io.BytesIO(a)) as ia, Image.open(io.BytesIO(b)) as ib:
            return align_pair(ia.convert("RGB"), ib.convert("RGB"), config)
    except (OSError, ValueError, RuntimeError) as exc:
        log.warning("pixel check skipped for an unreadable panel: %s", exc)
        return Alignment(0.0)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (the pixel check's tensors are tiny).

    Torch's thread pool costs more than it gains there, and against a busy machine
    it is 20x slower (measured before the detail stage: 24 ms a pair on one thread,
    625 ms on two while another process trains). Parallelism comes from running
    several batches at once (Ray tasks in `jobs`).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def align_images(a: Sequence[Image.Image], b: Sequence[Image.Image], config: AlignConfig = AlignConfig(),
                 progress: Callable[[int], None] | None = None) -> list[Alignment]:
    """`align_pair` over aligned lists of images, on one thread; `progress(1)` after each pair."""
    out: list[Alignment] = []
    with single_thread():
        for x, y in zip(a, b, strict=True):
            out.append(align_pair(x, y, config))
            if progress is not None:
                progress(1)
    return out


def align_many(a: Sequence[bytes], b: Sequence[bytes], config: AlignConfig = AlignConfig()) -> list[Alignment]:
    """`align_encoded` over aligned lists of encoded images (as stored), on one thread."""
    with single_thread():
        return [align_encoded(x, y, config) for x, y in zip(a, b, strict=True)]
