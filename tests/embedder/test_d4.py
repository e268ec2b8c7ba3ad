"""The D4 transform names: one order, inverses, and the same action on PIL images, arrays and tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from embedder.d4 import (
    D4_NAMES,
    apply_to_array,
    apply_to_tensor,
    apply_transform,
    decompose,
    describe_transform,
    inverse_transform,
    inverse_view,
    transform_name,
    view_index,
)


def test_names_follow_the_embedder_view_order() -> None:
    assert [transform_name(k, False) for k in range(4)] == ["identity", "rot90", "rot180", "rot270"]
    assert [transform_name(k, True) for k in range(4)] == ["flip_h", "transpose", "flip_v", "transverse"]
    assert [decompose(n) for n in D4_NAMES] == [(f, k) for f in (False, True) for k in range(4)]
    with pytest.raises(KeyError):
        view_index("rot45")


@pytest.mark.parametrize("name", D4_NAMES)
def test_one_action_on_images_arrays_and_tensors_and_its_inverse(name: str) -> None:
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    view = view_index(name)
    expected = np.asarray(apply_transform(Image.fromarray(arr), name))
    assert np.array_equal(apply_to_array(arr, view), expected)
    assert np.array_equal(apply_to_tensor(torch.from_numpy(arr), view).numpy(), expected)
    back = apply_to_array(apply_to_array(arr, view), inverse_view(view))
    assert np.array_equal(back, arr)
    assert D4_NAMES[inverse_view(view)] == inverse_transform(name)
    assert describe_transform(name)
