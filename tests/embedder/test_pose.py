"""The pose check on real microscopy: crops in every D4 view, partial overlaps, and the look-alikes it must refuse."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from embedder.d4 import D4_NAMES, apply_transform, inverse_transform
from embedder.pose import (
    PanelPose,
    PoseOptions,
    PoseRule,
    encoded_panel_pose,
    mutual_matches,
    panel_pose,
    pose_grey_bytes,
    pose_grey_side,
    ransac_similarity,
    stored_panel_pose,
    verify_pose,
)
from embedder.verify import grey_image

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "real-sample" / "images"
NUCLEI = SAMPLE / "cellprofiler/ExampleHuman/images/AS_09125_050116030001_D03f00d0.png"
MOVIE = SAMPLE / "neubias/mitocheck-movie/EMBO_2012_Group3--empty--empty--W0002--P001--T000{:02d}--Z000--C.png"


def _pose(image: Image.Image) -> PanelPose:
    return panel_pose(grey_image(image, 256))


def _field() -> Image.Image:
    return Image.open(NUCLEI).convert("RGB")


@pytest.mark.parametrize("name", D4_NAMES)
def test_a_quarter_crop_is_found_in_every_view_with_its_place_in_the_source(name: str) -> None:
    field = _field()
    w, h = field.size
    crop = field.crop((int(0.2 * w), int(0.3 * h), int(0.7 * w), int(0.8 * h)))  # a quarter of the area
    pose = verify_pose(_pose(field), _pose(apply_transform(crop, inverse_transform(name))), rule=PoseRule())
    assert pose.transform == name
    assert PoseRule().accepts(pose)
    assert pose.correlation > 0.98 and pose.detail > 0.95
    assert pose.share_a == pytest.approx(0.25, abs=0.03) and pose.share_b == pytest.approx(1.0, abs=0.02)
    assert pose.box_a == pytest.approx((0.2, 0.3, 0.7, 0.8), abs=0.02)
    assert pose.scale == pytest.approx(0.5, abs=0.04)  # geometric-mean sides: the crop's content is half as wide on a


def test_two_crops_sharing_part_of_a_field_are_a_partial_copy_with_both_regions() -> None:
    field = _field()
    w, h = field.size
    left, right = field.crop((0, 0, int(0.65 * w), h)), field.crop((int(0.35 * w), 0, w, h))  # share x 35-65 %
    pose = verify_pose(_pose(left), _pose(right.transpose(Image.Transpose.FLIP_LEFT_RIGHT)), rule=PoseRule())
    assert PoseRule().accepts(pose) and pose.transform == "flip_h"
    assert pose.share_a == pytest.approx(0.3 / 0.65, abs=0.04) and pose.share_b == pytest.approx(0.3 / 0.65, abs=0.04)
    assert pose.box_a == pytest.approx((0.35 / 0.65, 0.0, 1.0, 1.0), abs=0.03)
    # b's region in its own (mirrored) orientation: the shared strip is on its right
    assert pose.box_b == pytest.approx((1.0 - 0.3 / 0.65, 0.0, 1.0, 1.0), abs=0.03)


def test_a_turned_partial_copy_names_its_region_in_b_as_b_stands() -> None:
    field = _field()
    w, h = field.size
    left, right = field.crop((0, 0, int(0.6 * w), h)), field.crop((int(0.3 * w), 0, w, h))  # share x 30-60 %
    pose = verify_pose(_pose(left), _pose(right.transpose(Image.Transpose.ROTATE_270)), rule=PoseRule())
    assert PoseRule().accepts(pose) and pose.transform == "rot90"
    # b turned 90 degrees clockwise: its shared strip (its left part) is now its top rows
    assert pose.box_b == pytest.approx((0.0, 0.0, 1.0, 0.3 / 0.7), abs=0.03)
    assert pose.box_a == pytest.approx((0.3 / 0.6, 0.0, 1.0, 1.0), abs=0.03)
    # a strip of a fifth of the field (a third of each panel) is missed: ORB leaves a 31 px border out
    narrow = field.crop((int(0.4 * w), 0, w, h))
    assert not PoseRule().accepts(verify_pose(_pose(left), _pose(narrow), rule=PoseRule()))


def test_unrelated_fields_and_flat_panels_have_no_pose() -> None:
    other = Image.open(SAMPLE / "cellprofiler/ExampleIlluminationCorrection/images/AS_09047_050428030001_O01f00d2.png")
    field = _pose(_field())
    assert verify_pose(field, _pose(other.convert("RGB")), rule=PoseRule()).inliers < PoseRule().min_inliers
    flat = _pose(Image.new("RGB", (300, 200), (90, 90, 90)))
    assert len(flat.own) == 0
    assert verify_pose(field, flat).inliers == 0 and not PoseRule().accepts(verify_pose(flat, field))


def test_a_crop_of_one_movie_frame_is_not_a_copy_of_the_next_frame() -> None:
    frame, later = Image.open(str(MOVIE).format(10)).convert("RGB"), Image.open(str(MOVIE).format(12)).convert("RGB")
    w, h = frame.size
    crop = frame.crop((int(0.1 * w), int(0.2 * h), int(0.65 * w), int(0.75 * h)))
    assert PoseRule().accepts(verify_pose(_pose(frame), _pose(crop), rule=PoseRule()))  # its own frame: a copy
    # the next frame shows the same cells, moved: the whole frames share a pose, not a crop's detail
    assert not PoseRule().accepts(verify_pose(_pose(later), _pose(crop), rule=PoseRule()))
    assert not PoseRule().accepts(verify_pose(_pose(later), _pose(frame), rule=PoseRule()))


def test_ransac_recovers_a_similarity_among_outliers() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, 60) + 1j * rng.uniform(0, 200, 60)
    m, t = 0.6 * np.exp(1j * np.radians(30.0)), 40 + 25j
    dst = m * src + t + rng.normal(0, 0.3, 60) + 1j * rng.normal(0, 0.3, 60)
    dst[:25] = rng.uniform(0, 200, 25) + 1j * rng.uniform(0, 200, 25)  # 25 of 60 matches wrong
    found_m, found_t, inliers = ransac_similarity(src, dst, residual=2.0, trials=300)
    assert inliers[25:].all() and inliers[:25].sum() <= 2
    assert abs(found_m - m) < 0.01 and abs(found_t - t) < 1.0


def _mutual_matches_by_sorting(a: np.ndarray, b: np.ndarray, max_distance: int, max_ratio: float) -> np.ndarray:
    """`mutual_matches` spelled out: distances by unpacked bits, nearest by a stable sort (the first of equals)."""
    d = (np.unpackbits(a, axis=1)[:, None, :] != np.unpackbits(b, axis=1)[None, :, :]).sum(axis=2)
    ab, ba = np.argsort(d, axis=1, kind="stable"), np.argsort(d.T, axis=1, kind="stable")
    out = [(i, int(ab[i, 0])) for i in range(len(a))
           if ba[ab[i, 0], 0] == i and d[i, ab[i, 0]] <= max_distance
           and d[i, ab[i, 0]] < max_ratio * max(d[i, ab[i, 1]], 1)]
    return np.array(out, np.int64).reshape(-1, 2)


def test_mutual_matches_are_the_mutual_nearest_with_ties_to_the_first() -> None:
    rng = np.random.default_rng(1)
    for _ in range(30):  # few distinct descriptors, lightly flipped: many equal distances
        base = rng.integers(0, 256, (20, 32), dtype=np.uint8)
        a, b = (base[rng.integers(0, 20, n)] ^ (rng.random((n, 32)) < 0.01).astype(np.uint8)
                for n in rng.integers(2, 120, 2))
        found = mutual_matches(a, b, 80, 0.85)
        assert np.array_equal(found, _mutual_matches_by_sorting(a, b, 80, 0.85))
    assert len(found) and mutual_matches(a[:1], b, 80, 0.85).shape == (0, 2)
    with pytest.raises(ValueError, match="one width"):  # not read past the end of the narrower
        mutual_matches(a, b[:, :16], 80, 0.85)


def _scatter_plot(seed: int) -> Image.Image:
    """A scatter plot on a fixed template: axes, ticks, labels and a gate; only the dots depend on `seed`."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (400, 400), "white")
    draw = ImageDraw.Draw(image)
    draw.line((50, 20, 50, 350), fill="black", width=2)
    draw.line((50, 350, 380, 350), fill="black", width=2)
    for t in range(60, 380, 40):
        draw.line((t, 350, t, 358), fill="black", width=2)
        draw.line((42, t - 30, 50, t - 30), fill="black", width=2)
    centre = (200 + rng.uniform(-40, 40), 180 + rng.uniform(-40, 40))
    for x, y in rng.normal(centre, 35, (1500, 2)):
        draw.point((float(x), float(y)), fill=(30, 30, 200))
    draw.rectangle((150, 120, 260, 240), outline="black", width=2)
    return image


def test_plots_on_one_template_are_not_copies_but_a_crop_of_one_is() -> None:
    plot = _pose(_scatter_plot(1))
    assert not PoseRule().accepts(verify_pose(plot, _pose(_scatter_plot(2).crop((0, 60, 330, 400))), rule=PoseRule()))
    assert PoseRule().accepts(verify_pose(plot, _pose(_scatter_plot(1).crop((0, 60, 330, 400))), rule=PoseRule()))


def test_a_stored_grey_image_gives_the_pose_of_the_encoded_panel() -> None:
    field = _field()
    buf = io.BytesIO()
    field.save(buf, format="PNG")
    stored = pose_grey_bytes(field)
    assert pose_grey_side(stored) == 256 and pose_grey_side(b"not one") is None and pose_grey_side(None) is None
    from_png, from_grey = encoded_panel_pose(buf.getvalue()), stored_panel_pose(stored)
    assert np.array_equal(from_grey.grey, from_png.grey)
    assert np.array_equal(from_grey.own.descriptors, from_png.own.descriptors)
    with pytest.raises(ValueError, match="side 192"):
        stored_panel_pose(stored, PoseOptions(side=192))
    with pytest.raises(OSError):
        stored_panel_pose(stored[:60])  # cut short
