"""Cheap exact / near-exact matches: a 64-bit perceptual hash over the 8 rotations/flips.

Used only by `benchmarks/bench_candidates.py` (the product does not union hash
matches in: the embedding's D4 invariance finds rotated and flipped copies). A second
candidate source to union with the k-NN pairs (`index.candidates.union_pairs`):
copies that were only recompressed, rescaled, or rotated/flipped by multiples of
90 degrees hash within a few bits of each other whatever the embedding does. Earlier
measurements gave this hash a pair AUC of 0.61 alone, 0.82 taking the best
of the 8 views, so it is a recall booster for near-exact copies, not a detector:
whether it raises recall at equal precision is measured on the benchmark corpus
once the model is trained.

`dihedral_phash` is the classic DCT pHash (32x32 grey, 8x8 lowest frequencies,
bit = coefficient above their median) of each of the 8 dihedral views.
`hash_candidates` finds every pair whose identity hash is within `max_distance`
bits of any view of the other, with FAISS's multi-index hashing (exact by the
pigeonhole principle: split 64 bits into max_distance+1 parts, one part matches).
"""
from __future__ import annotations

import io
import logging

import numpy as np

from index.candidates import Pairs

logger = logging.getLogger(__name__)

HASH_BITS = 64
_N = 32  # side of the grey image the DCT is taken on


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT = _dct_matrix(_N)


def _grey32(image: bytes | np.ndarray) -> np.ndarray:
    from PIL import Image

    if isinstance(image, (bytes, bytearray, memoryview)):
        src: Image.Image = Image.open(io.BytesIO(bytes(image)))
    else:
        src = Image.fromarray(np.asarray(image))
    grey = src.convert("L").resize((_N, _N), Image.Resampling.BOX)
    return np.asarray(grey, dtype=np.float64)


def dihedral_views(a: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations/flips of a 2-D array: rot 0/90/180/270, then the same after a left-right flip."""
    out = [np.rot90(a, r) for r in range(4)]
    f = np.fliplr(a)
    return out + [np.rot90(f, r) for r in range(4)]


def _phash_grey(g: np.ndarray) -> np.uint64:
    c = (_DCT @ g @ _DCT.T)[:8, :8].ravel()
    bits = c > np.median(c[1:])  # the DC term (overall brightness) does not set the threshold
    return np.uint64(int("".join("1" if b else "0" for b in bits), 2))


def dihedral_phash(image: bytes | np.ndarray) -> np.ndarray:
    """(8,) uint64 pHashes of the image's 8 dihedral views; element 0 is the image as is."""
    g = _grey32(image)
    return np.array([_phash_grey(np.ascontiguousarray(v)) for v in dihedral_views(g)], dtype=np.uint64)


def hamming(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance between uint64 arrays (broadcasting)."""
    z = np.bitwise_xor(np.asarray(x, dtype=np.uint64), np.asarray(y, dtype=np.uint64))
    flat = np.ascontiguousarray(z.reshape(-1, 1)).view(np.uint8)
    return np.unpackbits(flat, axis=1).sum(1).reshape(z.shape)


def _as_codes(h: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(h, dtype=np.uint64).reshape(-1, 1)).view(np.uint8).reshape(-1, 8)


def hash_candidates(ids: np.ndarray, hashes: np.ndarray, *, max_distance: int = 4) -> Pairs:
    """Pairs of row ids whose hashes are within `max_distance` bits under some rotation/flip.

    `hashes` is (n, 8) from `dihedral_phash` aligned with `ids`. `sim` of a pair is
    1 - distance / 64 (the best view). Trivial pairs are not removed here: pass the
    result through `candidates.drop_trivial`.
    """
    import faiss

    ids = np.asarray(ids, dtype=np.int64)
    h = np.asarray(hashes, dtype=np.uint64)
    if h.ndim != 2 or h.shape[1] != 8 or len(h) != len(ids):
        raise ValueError(f"hashes must be (n, 8) aligned with ids, got {h.shape} for {len(ids)} ids")
    if len(ids) < 2:
        return Pairs.empty()
    nhash = max_distance + 1
    index = faiss.IndexBinaryMultiHash(HASH_BITS, nhash, HASH_BITS // nhash)
    index.add(_as_codes(h[:, 0]))
    lims, D, I = index.range_search(_as_codes(h.reshape(-1)), max_distance + 1)
    counts = np.diff(lims).astype(np.int64)
    query_rows = np.repeat(np.arange(len(h) * 8) // 8, counts)
    return Pairs.from_arrays(ids[query_rows], ids[I], 1.0 - D.astype(np.float32) / HASH_BITS)
