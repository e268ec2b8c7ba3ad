"""The 8 rotations/flips of a panel (the dihedral group D4): names, order, inverse, application, words.

The one owner of the transform names that the embedder (its D4 views), the pixel
check (`embedder.verify`) and the reports (`jobs.report`) share.

Convention: view `i = 4 * f + k` is `rot90^k(flip_h^f(x))`: mirror left-right first
when `f` is 1, then `k` quarter turns counter-clockwise as displayed, like
`numpy.rot90` and `torch.rot90(x, k, dims=(-2, -1))`. That is the order of the
embedder's views (`embedder.model`). A reported transform maps panel **b onto
panel a** (`apply_transform(b, name) ≈ a`).

PIL, numpy and torch are imported by the functions that need them, so the report
writers can use the names without loading torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch
    from PIL import Image

IDENTITY = "identity"

#: The 8 transform names in view order: index = 4 * flipped + k.
D4_NAMES: tuple[str, ...] = ("identity", "rot90", "rot180", "rot270", "flip_h", "transpose", "flip_v", "transverse")
TRANSFORM_NAMES = frozenset(D4_NAMES)

# How panel b looks compared with panel a when `transform` maps b onto a
# (that is, b = inverse(transform)(a)); shown to reviewers.
_PHRASES: dict[str, str] = {
    "identity": "same orientation",
    "rot90": "rotated 90° clockwise",
    "rot180": "rotated 180°",
    "rot270": "rotated 90° counter-clockwise",
    "flip_h": "mirrored left–right",
    "flip_v": "mirrored top–bottom",
    "transpose": "rotated 90° and mirrored (flipped over the main diagonal)",
    "transverse": "rotated 90° and mirrored (flipped over the anti-diagonal)",
}


def view_index(name: str) -> int:
    """Index of `name` in `D4_NAMES`; KeyError for an unknown name."""
    try:
        return D4_NAMES.index(name)
    except ValueError:
        raise KeyError(name) from None


def decompose(name: str) -> tuple[bool, int]:
    """(mirrored left-right first?, number of 90° counter-clockwise turns after it) of `name`."""
    view = view_index(name)
    return view >= 4, view % 4


def transform_name(k: int, flipped: bool) -> str:
    """Name of `rot90^k(flip_h(x) if flipped else x)` (k counter-clockwise quarter turns)."""
    return D4_NAMES[4 * int(bool(flipped)) + (int(k) % 4)]


def inverse_view(view: int) -> int:
    """The view index that undoes view `view` (rotations invert, mirrored views are their own inverse)."""
    return view if view >= 4 else (-view) % 4


def inverse_transform(name: str) -> str:
    """The transform that undoes `name` (rotations invert, flips are their own inverse)."""
    return D4_NAMES[inverse_view(view_index(name))]


def describe_transform(name: str | None) -> str:
    """Human phrase for how panel b looks compared with panel a, e.g. "rotated 90° clockwise"."""
    if name is None:
        return "not estimated"
    return _PHRASES[name]


def apply_transform(image: Image.Image, name: str) -> Image.Image:
    """Apply the named transform to a PIL image (lossless: only moves pixels; always a new image)."""
    from PIL import Image

    flipped, k = decompose(name)
    out = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flipped else image
    rotate = {1: Image.Transpose.ROTATE_90, 2: Image.Transpose.ROTATE_180, 3: Image.Transpose.ROTATE_270}
    return out.transpose(rotate[k]) if k else out.copy()


def apply_to_array(arr: np.ndarray, view: int) -> np.ndarray:
    """View `view` of a numpy array's last two axes (H, W): mirror left-right first if view >= 4, then rot90^(view % 4)."""
    import numpy as np

    base = arr[..., ::-1] if view >= 4 else arr
    return np.rot90(base, view % 4, axes=(-2, -1))


def apply_to_tensor(t: torch.Tensor, view: int) -> torch.Tensor:
    """View `view` of a tensor's last two axes (H, W): mirror left-right first if view >= 4, then rot90^(view % 4)."""
    import torch

    base = t.flip(-1) if view >= 4 else t
    return torch.rot90(base, view % 4, dims=(-2, -1))
