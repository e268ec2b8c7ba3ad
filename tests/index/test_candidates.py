"""Candidate pairs: canonical form, trivial pairs dropped, several views per record, scoring."""
from __future__ import annotations

import numpy as np
import pytest

from index.candidates import (
    Pairs,
    RecordKeys,
    bbox_overlap,
    knn_pairs,
    score_candidates,
    self_join,
    union_pairs,
)
from index.faiss_index import VectorIndex
from index.store import FigureStore
from scanner.records import FLAG_BOILERPLATE, FLAG_COMPOUND
from tests.index.helpers import clustered, figures_table, simple_table, unit


def test_pairs_are_canonical() -> None:
    p = Pairs.from_arrays(np.array([5, 2, 2, 7, 3]), np.array([2, 5, 5, 7, 9]), np.array([0.5, 0.9, 0.7, 1.0, 0.6]))
    assert list(zip(p.a.tolist(), p.b.tolist())) == [(2, 5), (3, 9)]
    np.testing.assert_allclose(p.sim, [0.9, 0.6])
    assert np.isnan(p.score).all()
    u = union_pairs(p, Pairs.from_arrays(np.array([9]), np.array([3]), np.array([0.95])))
    np.testing.assert_allclose(u.sim, [0.9, 0.95])


def test_bbox_overlap() -> None:
    a = np.array([[0, 0, 100, 100], [0, 0, 100, 100], [0, 0, 100, 100]], np.float32)
    b = np.array([[100, 0, 200, 100], [10, 10, 60, 60], [50, 0, 150, 100]], np.float32)
    np.testing.assert_allclose(bbox_overlap(a, b), [0.0, 1.0, 0.5])


def _scenario(tmp_path):
    """One reused picture u in many guises, a boilerplate logo z, and an unrelated panel."""
    rng = np.random.default_rng(0)
    u, z, other = rng.normal(size=(3, 16))
    near = lambda v: v + 0.02 * rng.normal(size=16)  # noqa: E731
    A = {"doc": "a.pdf", "doc_sha256": "sha-a", "page": 1}
    rows = [
        {**A, "figure_id": "F", "bbox": (0, 0, 200, 100), "flags": (FLAG_COMPOUND,)},   # 0 compound figure
        {**A, "figure_id": "P1", "bbox": (0, 0, 100, 100), "parent_id": "F"},        # 1 its left panel
        {**A, "figure_id": "P2", "bbox": (100, 0, 200, 100), "parent_id": "F"},      # 2 right panel = P1 reused
        {**A, "figure_id": "S", "bbox": (10, 10, 60, 60)},                           # 3 sub-picture inside P1
        {"doc": "b.pdf", "doc_sha256": "sha-b", "page": 3, "figure_id": "B1"},        # 4 copy in another paper
        {**A, "figure_id": "P1", "bbox": (0, 0, 100, 100), "parent_id": "F"},        # 5 P1 ingested again
        {**A, "page": 2, "figure_id": "L1", "flags": (FLAG_BOILERPLATE,)},              # 6 logo
        {"doc": "b.pdf", "doc_sha256": "sha-b", "page": 1, "figure_id": "L2", "flags": (FLAG_BOILERPLATE,)},  # 7 logo
        {"doc": "c.pdf", "doc_sha256": "sha-c", "figure_id": "L3"},                  # 8 logo, not flagged
        {"doc": "c.pdf", "doc_sha256": "sha-c", "page": 2, "figure_id": "X"},        # 9 unrelated
        {**A, "figure_id": "P2b", "bbox": (100, 0, 200, 100)},                       # 10 P2 drawn twice in place
    ]
    vectors = np.array([near(u)] * 6 + [near(z), near(z), near(z), other, near(u)])
    vectors = np.array([v + 0.02 * rng.normal(size=16) for v in vectors])
    store = FigureStore.create(tmp_path / "s", model_id="m", dim=16)
    store.append(figures_table(rows, images=False), vectors, model_id="m", run_id="r1")
    return store


EXPECTED = {(0, 4), (1, 2), (1, 4), (1, 10), (2, 3), (2, 4), (2, 5), (3, 4), (3, 10), (4, 5), (4, 10), (5, 10)}


def test_self_join_drops_trivial_pairs(tmp_path) -> None:
    store = _scenario(tmp_path)
    keys = RecordKeys.from_table(store.read_keys())
    ids, vecs = store.read_vectors()
    index = VectorIndex.build(ids, vecs, model_id="m")  # noise included, to show the join drops it
    raw = knn_pairs(index, ids, vecs, k=10, min_sim=0.9)
    assert {(6, 7), (6, 8), (7, 8), (0, 1), (1, 5), (2, 10)} <= raw.as_set()
    pairs = self_join(index, ids, vecs, keys, k=10, min_sim=0.9)
    assert pairs.as_set() == EXPECTED
    assert (pairs.a < pairs.b).all() and (pairs.sim >= 0.9).all()
    # with noise kept, only the logo pairs come back
    with_noise = self_join(index, ids, vecs, keys, k=10, min_sim=0.9, exclude_noise=False)
    assert with_noise.as_set() - EXPECTED == {(6, 7), (6, 8), (7, 8)}


def test_several_views_per_record_take_the_best(tmp_path) -> None:
    rng = np.random.default_rng(1)
    v, w = unit(rng.normal(size=(2, 32)))
    stored = np.vstack([v, w, unit(rng.normal(size=(30, 32)))])
    store = FigureStore.create(tmp_path / "s", model_id="m", dim=32)
    store.append(simple_table(len(stored)), stored, model_id="m", run_id="r")
    keys = RecordKeys.from_table(store.read_keys())
    index = VectorIndex.build(*store.read_vectors(), model_id="m")
    one_view = self_join(index, np.array([0]), v[None], keys, k=5, min_sim=0.8)
    assert len(one_view) == 0
    # record 0 queried with a second view (say its 90 degree rotation) that looks like record 1
    views = np.vstack([v, unit(w + 0.05 * rng.normal(size=32))])
    two_views = self_join(index, np.array([0, 0]), views, keys, k=5, min_sim=0.8)
    assert two_views.as_set() == {(0, 1)} and two_views.sim[0] > 0.95


def test_a_nightly_self_join_of_the_new_records_completes_the_earlier_one(tmp_path) -> None:
    x = clustered(300, 16, clusters=5, seed=3)
    x[250:] = unit(x[:50] + 0.05 * np.random.default_rng(0).normal(size=(50, 16)))  # planted copies
    store = FigureStore.create(tmp_path / "s", model_id="m", dim=16)
    store.append(simple_table(200), x[:200], model_id="m", run_id="day1")
    keys = RecordKeys.from_table(store.read_keys())
    day1 = self_join(VectorIndex.build(*store.read_vectors(), model_id="m"), *store.read_vectors(), keys,
                     k=299, min_sim=0.9)
    batch = store.append(simple_table(100, start=200), x[200:], model_id="m", run_id="day2")
    keys = RecordKeys.from_table(store.read_keys())
    index = VectorIndex.build(*store.read_vectors(), model_id="m")
    new_ids, new_vecs = store.read_vectors([batch.file])
    nightly = self_join(index, new_ids, new_vecs, keys, k=299, min_sim=0.9)
    assert all(a >= 200 or b >= 200 for a, b in nightly.as_set())
    assert {(i, 250 + i) for i in range(50)} <= nightly.as_set()
    full = self_join(index, *store.read_vectors(), keys, k=299, min_sim=0.9)
    assert union_pairs(day1, nightly).as_set() == full.as_set()


def cosine_scorer(vec_a: np.ndarray, vec_b: np.ndarray) -> np.ndarray:
    """A stand-in head: cosine of unit vectors mapped to [0, 1]."""
    return np.clip((np.einsum("ij,ij->i", vec_a, vec_b) + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)


def test_score_candidates_with_a_cosine_head() -> None:
    x = unit(np.random.default_rng(2).normal(size=(50, 8)))
    pairs = Pairs.from_arrays(np.arange(0, 40), np.arange(10, 50), np.zeros(40))
    scores = score_candidates(pairs, x, cosine_scorer, batch_size=7)
    expected = (np.sum(x[pairs.a] * x[pairs.b], axis=1) + 1) / 2
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    # a lookup function instead of a dense array gives the same
    np.testing.assert_allclose(score_candidates(pairs, lambda ids: x[ids], cosine_scorer, batch_size=64), scores)
    kept = pairs.with_scores(scores).accept(0.6)
    assert kept.as_set() == {(a, b) for a, b, s in zip(pairs.a, pairs.b, scores) if s >= 0.6}
    assert len(pairs.accept(0.0)) == 0  # unscored pairs are never accepted
    with pytest.raises(ValueError, match="shape"):
        score_candidates(pairs, x, lambda a, b: np.ones(3), batch_size=8)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        score_candidates(pairs, x, lambda a, b: np.full(len(a), 1.5), batch_size=8)



def test_badges_of_two_papers_are_not_a_pair_however_their_pixels_differ() -> None:
    """Icon-sized placements on page 1 / in the header of two PDFs (CrossMark drawn at two resolutions)."""
    import pyarrow as pa

    from index.candidates import trivial_mask

    rows = [
        {"doc": "a.pdf", "page": 1, "bbox": (150, 112, 182, 144)},   # 0 badge, page 1
        {"doc": "b.pdf", "page": 1, "bbox": (37, 225, 73, 271)},     # 1 badge, page 1, other paper
        {"doc": "c.pdf", "page": 5, "bbox": (500, 20, 540, 60)},     # 2 icon in a header band
        {"doc": "d.pdf", "page": 1, "bbox": (60, 400, 160, 500)},    # 3 a 100 pt picture on page 1
        {"doc": "e.pdf", "page": 1, "bbox": (60, 400, 160, 500)},    # 4 the same, another paper
        {"doc": "f.pdf", "page": 4, "bbox": (60, 400, 120, 460)},    # 5 a small picture inside a page
        {"doc": "a.pdf", "page": 1, "bbox": (300, 112, 340, 150)},   # 6 second icon of paper a
        {"doc": "g.png", "page": 1, "bbox": (0, 0, 64, 64)},         # 7 an image file (box in pixels)
        {"doc": "h.png", "page": 1, "bbox": (0, 0, 64, 64)},         # 8 another
    ]
    table = figures_table(rows, images=False)
    keys = RecordKeys.from_table(table.append_column("row_id", pa.array(np.arange(len(rows)), pa.int64())))
    pairs = Pairs.from_arrays(np.array([0, 0, 3, 0, 5, 0, 7]), np.array([1, 2, 4, 5, 1, 6, 8]), np.full(7, 0.9))
    got = dict(zip(zip(pairs.a.tolist(), pairs.b.tolist()), trivial_mask(pairs, keys).tolist()))
    assert got == {(0, 1): True, (0, 2): True, (3, 4): False, (0, 5): False, (1, 5): False, (0, 6): False, (7, 8): False}
    assert not trivial_mask(pairs, keys, exclude_noise=False).any()


def test_small_panels_of_a_figure_on_page_1_still_pair() -> None:
    """The icon rule judges the whole placement: 60-pt panels of a 240-pt figure on page 1 are not badges."""
    import pyarrow as pa

    from index.candidates import trivial_mask

    rows = [
        {"doc": "a.pdf", "page": 1, "figure_id": "FA", "bbox": (100, 200, 340, 260), "flags": (FLAG_COMPOUND,)},
        {"doc": "a.pdf", "page": 1, "figure_id": "PA", "bbox": (100, 200, 160, 260), "parent_id": "FA"},
        {"doc": "b.pdf", "page": 1, "figure_id": "FB", "bbox": (100, 300, 340, 360), "flags": (FLAG_COMPOUND,)},
        {"doc": "b.pdf", "page": 1, "figure_id": "PB", "bbox": (280, 300, 340, 360), "parent_id": "FB"},
        {"doc": "c.pdf", "page": 1, "figure_id": "BC", "bbox": (37, 225, 73, 271), "flags": (FLAG_COMPOUND,)},
        {"doc": "c.pdf", "page": 1, "figure_id": "IC", "bbox": (37, 225, 63, 241), "parent_id": "BC"},
        {"doc": "d.pdf", "page": 1, "figure_id": "BD", "bbox": (150, 112, 182, 144)},
    ]
    table = figures_table(rows, images=False)
    keys = RecordKeys.from_table(table.append_column("row_id", pa.array(np.arange(len(rows)), pa.int64())))
    pairs = Pairs.from_arrays(np.array([1, 5]), np.array([3, 6]), np.full(2, 0.9))
    assert trivial_mask(pairs, keys).tolist() == [False, True]
