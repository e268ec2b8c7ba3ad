"""The dihedral perceptual hash of `benchmarks/phash.py` (bench_candidates' second candidate source)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from benchmarks.phash import dihedral_phash, hamming, hash_candidates


def _smooth_image(seed: int, h: int = 96, w: int = 128) -> np.ndarray:
    """A blobby grey-level picture (low frequencies dominate, as in micrographs)."""
    rng = np.random.default_rng(seed)
    small = rng.random((6, 8))
    img = Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    a = np.asarray(img, dtype=np.float64) + rng.normal(0, 4, size=(h, w))
    return np.clip(a, 0, 255).astype(np.uint8)


def _jpeg(a: np.ndarray, quality: int = 60) -> bytes:
    out = io.BytesIO()
    Image.fromarray(a).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def test_rotations_and_flips_match_a_view() -> None:
    a = _smooth_image(0)
    h = dihedral_phash(a)
    assert h.shape == (8,) and h.dtype == np.uint64
    for t in (np.rot90(a), np.rot90(a, 2), np.fliplr(a), np.flipud(np.rot90(a))):
        h2 = dihedral_phash(np.ascontiguousarray(t))
        assert hamming(h, h2[0]).min() <= 2
    assert hamming(h[0], dihedral_phash(_smooth_image(1))[0]) > 10


def test_hash_candidates_find_altered_copies_only() -> None:
    images = [_smooth_image(s) for s in range(30)]
    copies = {30: 3, 31: 7, 32: 11}  # id -> original
    images += [np.ascontiguousarray(np.rot90(images[3])), np.fliplr(images[7]), images[11]]
    hashes = np.stack([dihedral_phash(_jpeg(np.ascontiguousarray(im))) for im in images])
    ids = np.arange(len(images)) + 1000
    pairs = hash_candidates(ids, hashes, max_distance=6)
    found = pairs.as_set()
    for c, o in copies.items():
        assert (o + 1000, c + 1000) in found
    # nothing else among unrelated pictures (allowing none of the 30x29/2 unrelated pairs)
    assert found == {(o + 1000, c + 1000) for c, o in copies.items()}
    assert (pairs.sim >= 1 - 6 / 64).all()
