"""The reported score: the BTA head's probability, sharpened by the pixel check when the model has one.

`score = sigmoid(w_head * logit(head) + w_match * atanh(correlation) + w_detail * atanh(detail) + bias)`,
a logistic regression on three numbers per pair: the head probability M(x, y),
the NCC of the best placement found by `embedder.verify.align_pair`, and the
NCC of that placement's fine detail (high-pass, at higher resolution). Its four
weights are fitted on generated calibration pairs (`reusescan calibrate`,
`training.fusion`) and stored in the checkpoint meta under `"pixel_check"` with
the search ranges used, so a scan always checks pixels exactly as calibrated. A
checkpoint without that entry scores with the head alone.
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


def head_feature(head: np.ndarray) -> np.ndarray:
    """logit of the head probability, clipped so that 0 and 1 stay finite."""
    p = np.clip(np.asarray(head, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


def match_feature(correlation: np.ndarray) -> np.ndarray:
    """Fisher transform of a correlation (negative correlations count as none)."""
    return np.arctanh(np.clip(np.asarray(correlation, dtype=np.float64), 0.0, _MAX_CORRELATION))


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

    def combine(self, head: np.ndarray, correlation: np.ndarray, detail: np.ndarray,
                scale: np.ndarray | None = None) -> np.ndarray:
        """(N,) head probabilities, correlations and detail correlations -> (N,) float32 fused probabilities.

        A pair the pixel check did not run on has correlation and detail 0. With the
        placements' `scale` and `crop_floor` on, a confident crop placement floors the head at 0.5 (module doc).
        """
        head = np.asarray(head, dtype=np.float64)
        if scale is not None and self.crop_floor:
            crop = (np.asarray(scale) <= self.crop_max_scale) & (np.asarray(correlation) >= self.crop_min_correlation)
            head = np.where(crop, np.maximum(head, 0.5), head)
        z = (self.w_head * head_feature(head) + self.w_match * match_feature(correlation)
             + self.w_detail * match_feature(detail) + self.bias)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def score(self, head: np.ndarray, alignments: Sequence[Alignment | None]) -> np.ndarray:
        """`combine` with the pixel check's results per pair (None: not checked, counts as no match)."""
        correlation = np.array([0.0 if x is None else x.correlation for x in alignments], dtype=np.float64)
        detail = np.array([0.0 if x is None else x.detail for x in alignments], dtype=np.float64)
        scale = np.array([1.0 if x is None else x.scale for x in alignments], dtype=np.float64)
        return self.combine(head, correlation, detail, scale)

    def to_meta(self) -> dict[str, Any]:
        return {"w_head": self.w_head, "w_match": self.w_match, "w_detail": self.w_detail, "bias": self.bias,
                "align": self.align.to_dict()}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> PixelFusion | None:
        """The fusion stored in checkpoint meta, or None when the model has none."""
        entry = meta.get(META_KEY)
        if not isinstance(entry, Mapping):
            return None
        return cls(float(entry["w_head"]), float(entry["w_match"]), float(entry["w_detail"]), float(entry["bias"]),
                   AlignConfig.from_dict(dict(entry.get("align", {}))))
