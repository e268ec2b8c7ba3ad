"""The shipped default checkpoint: loadable, within budget, invariant, and it separates copies from others."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from embedder.fusion import META_KEY
from embedder.inference import DEFAULT_CHECKPOINT, Embedder


@pytest.fixture(scope="module")
def default() -> Embedder:
    if not DEFAULT_CHECKPOINT.is_file():
        pytest.fail(f"the default model must ship at {DEFAULT_CHECKPOINT}")
    return Embedder.load(device="cpu", precision="fp32")


def test_budget_and_config(default: Embedder) -> None:
    assert DEFAULT_CHECKPOINT.stat().st_size < 50e6
    assert default.dim <= 512 and default.config.d4_pool
    assert default.meta["head_trained"] and default.model.head.symmetric
    assert (DEFAULT_CHECKPOINT.parent / "MODEL_CARD.md").is_file()


def test_copies_score_above_different_specimens(default: Embedder) -> None:
    from training.synth import generate_specimen_field

    base = [generate_specimen_field(k, 2_000_000 + i, 0, (120, 96)) for i, k in enumerate(["fluorescence", "western_blot", "histology_he"])]
    other = [generate_specimen_field(k, 3_000_000 + i, 0, (120, 96)) for i, k in enumerate(["fluorescence", "western_blot", "histology_he"])]
    copies = [im.transpose(Image.Transpose.ROTATE_270).resize((80, 100)) for im in base]
    va, vc, vo = default.embed(base), default.embed(copies), default.embed(other)
    same, diff = default.score(va, vc), default.score(va, vo)
    assert (same > 0.5).all(), same
    assert (diff < same).all(), (same, diff)
    np.testing.assert_allclose(default.score(vc, va), same, atol=1e-6)


def test_the_shipped_pixel_check_confirms_copies_and_rejects_other_fields(default: Embedder) -> None:
    from embedder.fusion import PixelFusion
    from embedder.verify import align_pair
    from training.synth import KINDS, generate_specimen_field

    fusion = PixelFusion.from_meta(default.meta)
    assert fusion is not None, "the shipped model must carry its pixel-check calibration"
    threshold = default.meta[META_KEY]["threshold"]
    assert 0.5 <= threshold < 1.0
    base = [generate_specimen_field(k, 2_100_000 + i, 0, (140, 110)) for i, k in enumerate(KINDS)]
    # another field of the same specimen: the look-alike the head alone confuses most
    others = [generate_specimen_field(k, 2_100_000 + i, 1, (140, 110)) for i, k in enumerate(KINDS)]
    copies = [im.crop((12, 10, 128, 100)).transpose(Image.Transpose.FLIP_TOP_BOTTOM) for im in base]

    def fused(a: list[Image.Image], b: list[Image.Image]) -> np.ndarray:
        head = default.score(default.embed(a), default.embed(b))
        found = [align_pair(x, y, fusion.align) for x, y in zip(a, b)]
        # each pair as a scan sees a pair without other candidates: its background margins are its own features
        ids = np.arange(2 * len(a)).reshape(2, -1)
        return fusion.combine(head, np.array([f.correlation for f in found]), np.array([f.detail for f in found]),
                              pair_ids=(ids[0], ids[1]))

    assert (fused(base, copies) >= threshold).all(), fused(base, copies)
    assert (fused(base, others) < threshold).all(), fused(base, others)
