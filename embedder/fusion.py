"""The reported score: the BTA head's probability, sharpened by the pixel check when the model has one.

`score = sigmoid(w_head * logit(head) + w_match * atanh(correlation) + w_detail * atanh(detail) + bias)`,
a logistic regression on three numbers per pair: the head probability M(x, y),
the NCC of the best placement found by `embedder.verify.align_pair`, and the
NCC of that placement's fine detail (high-pass, at higher resolution). Its four
weights are fitted on generated calibration pairs (`reusescan calibrate`,
`training.fusion`) and stored in the checkpoint meta under `"pixel_check"` with
the search ranges used, so a scan always checks pixels exactly as calibrated. A
checkpoint without that entry scores with the head alone.

Background normalisation (copy-detection style): a reused panel matches its copy far
better than it matches anything else, while a look-alike (the next frame of a run, another
section, another field of one well) matches its sibling about as well as its other
siblings. So when the candidate pairs are known, two more features enter: each pair's
atanh(correlation) and atanh(detail) minus the best of the same over the *other*
candidate pairs of either panel (`background_margin`), with their own fitted weights
(0 in calibrations made before them, which then score exactly as before).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embedder.verify import AlignConfig, Alignment

META_KEY = "pixel_check"
_EPS = 1e-4
_MAX_CORRELATION = 0.999  # atanh(1) is infinite; a perfect match counts as 0.999
# A placement of one panel inside the other at most this large (side ratio) with at least this
# correlation is a confident crop: the head cannot pull it down (module doc).
CROP_MAX_SCALE = 0.9
CROP_MIN_CORRELATION = 0.9
# margins beyond this (in atanh units) say nothing more: an exact copy's 3.8 over a 0.9 background
MARGIN_CLIP = 2.0


def head_feature(head: np.ndarray) -> np.ndarray:
    """logit of the head probability, clipped so that 0 and 1 stay finite."""
    p = np.clip(np.asarray(head, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


def match_feature(correlation: np.ndarray) -> np.ndarray:
    """Fisher transform of a correlation (negative correlations count as none)."""
    return np.arctanh(np.clip(np.asarray(correlation, dtype=np.float64), 0.0, _MAX_CORRELATION))


def background_margin(a: np.ndarray, b: np.ndarray, feature: np.ndarray, clip: float = MARGIN_CLIP) -> np.ndarray:
    """Per pair (a[i], b[i]): feature[i] minus the largest feature of the other pairs sharing a panel.

    A panel without other pairs has background 0. Clipped to [-clip, clip].
    """
    a, b = np.asarray(a), np.asarray(b)
    feature = np.asarray(feature, dtype=np.float64)
    if not len(feature):
        return np.zeros(0, dtype=np.float64)
    panels, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    ia, ib = inverse[:len(a)], inverse[len(a):]
    # per panel the best and second-best feature (a pair's own value must not be its background)
    idx = np.concatenate([ia, ib])
    val = np.concatenate([feature, feature])
    order = np.lexsort((-val, idx))  # by panel, then best first
    idx, val = idx[order], val[order]
    start = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    best = np.full(len(panels), -np.inf)
    second = np.full(len(panels), -np.inf)
    best[idx[start]] = val[start]
    has_second = (start + 1 < len(idx)) & (idx[np.minimum(start + 1, len(idx) - 1)] == idx[start])
    second[idx[start[has_second]]] = val[start[has_second] + 1]

    def others(idx: np.ndarray) -> np.ndarray:
        own_is_best = feature >= best[idx]
        return np.where(own_is_best, second[idx], best[idx])

    background = np.maximum(np.maximum(others(ia), others(ib)), 0.0)  # -inf (no other pair) -> 0
    return np.clip(feature - background, -clip, clip)


@dataclass(frozen=True)
class PixelFusion:
    """Weights of the fused score and the alignment search they were fitted with."""

    w_head: float
    w_match: float
    w_detail: float
    bias: float
    align: AlignConfig = field(default_factory=AlignConfig)
    crop_floor: bool = False  # apply the crop floor (module doc); `scan --crop-vectors` turns it on
    crop_max_scale: float = CROP_MAX_SCALE
    crop_min_correlation: float = CROP_MIN_CORRELATION
    w_match_margin: float = 0.0  # weight of the correlation's background margin (module doc)
    w_detail_margin: float = 0.0  # ... and of the detail's

    @property
    def uses_background(self) -> bool:
        """Whether the score depends on the other candidate pairs (the margins have weight)."""
        return bool(self.w_match_margin or self.w_detail_margin)

    def combine(self, head: np.ndarray, correlation: np.ndarray, detail: np.ndarray,
                scale: np.ndarray | None = None, pair_ids: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """(N,) head probabilities, correlations and detail correlations -> (N,) float32 fused probabilities.

        A pair the pixel check did not run on has correlation and detail 0. With the
        placements' `scale` and `crop_floor` on, a confident crop placement floors the head at 0.5 (module doc).
        `pair_ids` (the two panels' ids per pair, all candidate pairs of the run) turn on the background margins.
        """
        head = np.asarray(head, dtype=np.float64)
        if scale is not None and self.crop_floor:
            crop = (np.asarray(scale) <= self.crop_max_scale) & (np.asarray(correlation) >= self.crop_min_correlation)
            head = np.where(crop, np.maximum(head, 0.5), head)
        m, d = match_feature(correlation), match_feature(detail)
        z = self.w_head * head_feature(head) + self.w_match * m + self.w_detail * d + self.bias
        if pair_ids is not None and self.uses_background:
            z = (z + self.w_match_margin * background_margin(*pair_ids, m)
                 + self.w_detail_margin * background_margin(*pair_ids, d))
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def score(self, head: np.ndarray, alignments: Sequence[Alignment | None] | np.ndarray,
              pair_ids: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """`combine` with the pixel check's results per pair (None: not checked, counts as no match), as
        `Alignment`s or rows of `embedder.verify.ALIGNMENT_DTYPE`."""
        if isinstance(alignments, np.ndarray) and alignments.dtype.names:
            return self.combine(head, alignments["correlation"], alignments["detail"], alignments["scale"], pair_ids)
        correlation = np.array([0.0 if x is None else x.correlation for x in alignments], dtype=np.float64)
        detail = np.array([0.0 if x is None else x.detail for x in alignments], dtype=np.float64)
        scale = np.array([1.0 if x is None else x.scale for x in alignments], dtype=np.float64)
        return self.combine(head, correlation, detail, scale, pair_ids)

    def to_meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"w_head": self.w_head, "w_match": self.w_match, "w_detail": self.w_detail,
                               "bias": self.bias, "align": self.align.to_dict()}
        if self.uses_background:
            out.update(w_match_margin=self.w_match_margin, w_detail_margin=self.w_detail_margin)
        return out

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> PixelFusion | None:
        """The fusion stored in checkpoint meta, or None when the model has none."""
        entry = meta.get(META_KEY)
        if not isinstance(entry, Mapping):
            return None
        return cls(float(entry["w_head"]), float(entry["w_match"]), float(entry["w_detail"]), float(entry["bias"]),
                   AlignConfig.from_dict(dict(entry.get("align", {}))),
                   w_match_margin=float(entry.get("w_match_margin", 0.0)),
                   w_detail_margin=float(entry.get("w_detail_margin", 0.0)))
