"""Keypoint candidates: a turned crop and a mirrored crop of a panel are found, unrelated panels are not."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from embedder.verify import grey_image
from index.keypoints import KeypointOptions, keypoint_pairs, orb_descriptors, strongest_per_panel
from training.synth import KINDS, generate_specimen_field

SIDE = 128  # the stored grey side the scan uses (jobs.pixel_check.GREY_SIDE)


@pytest.fixture(scope="module")
def panels() -> list[Image.Image]:
    """One field of each generated kind, then a crop of field 0 (39% of it) turned 90 degrees, and a
    mirrored crop of another part of field 0 (37%)."""
    fields = [generate_specimen_field(kind, 7 + i, 0, (384, 320)) for i, kind in enumerate(KINDS)]
    turned = fields[0].crop((30, 40, 280, 230)).rotate(90, expand=True)
    mirrored = fields[0].crop((120, 110, 360, 300)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return [*fields, turned, mirrored]


def _pairs(panels: list[Image.Image], options: KeypointOptions) -> set[tuple[int, int]]:
    ids = np.arange(len(panels))
    vectors = np.eye(len(panels), dtype=np.float32)
    found = keypoint_pairs(ids, [grey_image(p, SIDE) for p in panels], vectors, options)
    assert np.allclose(found.sim, 0.0)  # sim is the vectors' cosine (orthogonal here)
    return set(zip(found.a.tolist(), found.b.tolist()))


def test_turned_and_mirrored_crops_are_the_candidates(panels: list[Image.Image]) -> None:
    turned, mirrored = len(KINDS), len(KINDS) + 1
    assert _pairs(panels, KeypointOptions(min_votes=10)) == {(0, turned), (0, mirrored)}


def test_flat_or_tiny_panels_have_no_descriptors() -> None:
    assert orb_descriptors(np.full((128, 128), 90, np.uint8)).shape == (0, 32)
    assert orb_descriptors(np.zeros((0, 0), np.uint8)).shape == (0, 32)
    assert orb_descriptors(np.random.default_rng(0).integers(0, 255, (16, 16), dtype=np.uint8)).shape == (0, 32)


def test_strongest_per_panel_keeps_the_top_partners_of_either_panel() -> None:
    a = np.array([0, 0, 0, 1, 2])
    b = np.array([1, 2, 3, 3, 3])
    votes = np.array([9, 5, 1, 7, 2])
    # per panel, 1 partner: 0 -> 1 (9), 1 -> 0 (9), 2 -> 0 (5), 3 -> 1 (7)
    assert strongest_per_panel(a, b, votes, 1).tolist() == [True, True, False, True, False]
