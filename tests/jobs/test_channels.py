"""One panel a single channel of the other, a merge (`channel_of`), on real two-channel microscopy merges."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.channels import channel_of

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "real-sample" / "images" / "neubias"
MERGES = ["xyc_8bit__membranes_nuclei.png", "xyc_16bit__nuclei_golgi.png"]  # red + green channels, NEUBIAS (CC BY 4.0)


def encoded(image: Image.Image, fmt: str = "PNG", **kwargs: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(params=MERGES)
def merge(request: pytest.FixtureRequest) -> np.ndarray:
    return np.asarray(Image.open(SAMPLE / request.param).convert("RGB"))


def test_a_channel_beside_its_merge_is_named(merge: np.ndarray) -> None:
    m = encoded(Image.fromarray(merge))
    red, green = Image.fromarray(merge[..., 0]), merge[..., 1]
    green_hue = Image.fromarray(np.stack([np.zeros_like(green), green, np.zeros_like(green)], axis=-1))
    assert channel_of(m, encoded(red), "identity") == "b is the red channel of a"  # shown in grey
    assert channel_of(m, encoded(green_hue), "identity") == "b is the green channel of a"  # shown in its own colour
    assert channel_of(m, encoded(red, "JPEG", quality=60), "identity") == "b is the red channel of a"
    # the channel as panel a, turned: `transform` (rot90) maps b, the merge, onto it
    assert channel_of(encoded(red.transpose(Image.Transpose.ROTATE_90)), m, "rot90") == "a is the red channel of b"


def test_copies_of_the_whole_merge_and_unrelated_panels_are_not_channels(merge: np.ndarray) -> None:
    m = encoded(Image.fromarray(merge))
    assert channel_of(m, m, "identity") == ""
    assert channel_of(m, encoded(Image.fromarray(merge).convert("L")), "identity") == ""  # a grey copy of the merge
    assert channel_of(m, encoded(Image.fromarray(merge[..., [1, 0, 2]])), "identity") == ""  # recoloured
    other = np.asarray(Image.open(SAMPLE / "xyz_8bit__em_volume_tiff_series" / "c_elegans_em_z0000.png").convert("L"))
    assert channel_of(m, encoded(Image.fromarray(other)), "identity") == ""  # another picture altogether
    assert channel_of(m, encoded(Image.fromarray(merge[..., 0])), None) == ""  # orientation unknown: not compared
    assert channel_of(m, b"not an image", "identity") == ""
