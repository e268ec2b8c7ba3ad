"""FAISS index choice, recall against brute force, incremental adds, persistence, rebuilds."""
from __future__ import annotations

import json
import math

import faiss
import numpy as np
import pytest

from index.faiss_index import (
    IndexSpec,
    VectorIndex,
    choose_index_spec,
    exact_knn,
    exact_knn_blocks,
    gpu_count,
    recall_at_k,
    sync_index,
)
from index.store import MANIFEST, FigureStore, StoreMismatchError
from scanner.records import FLAG_COMPOUND, FLAG_TINY, FLAG_UNIFORM
from tests.index.helpers import clustered, simple_table


def test_choice_follows_faiss_guidelines() -> None:
    assert choose_index_spec(10_000, 256).factory == "Flat"
    for n in (60_000, 250_000, 1_000_000):
        spec = choose_index_spec(n, 256)
        assert spec.factory == f"IVF{spec.nlist},Flat"
        assert 4 * math.sqrt(n) / math.sqrt(2) <= spec.nlist <= 4 * math.sqrt(n) * math.sqrt(2)
        assert spec.nlist & (spec.nlist - 1) == 0
        assert spec.train_size == min(n, 39 * spec.nlist) and spec.train_size >= 39 * spec.nlist
    tiny_ivf = choose_index_spec(3300, 16, flat_max=2000)
    assert tiny_ivf.nlist == 64 and tiny_ivf.nlist * 39 <= 3300
    assert choose_index_spec(5_000_000, 256).factory == "IVF65536_HNSW32,Flat"
    assert choose_index_spec(50_000_000, 256).factory == "IVF262144_HNSW32,SQ8"
    assert choose_index_spec(500_000_000, 256).factory == "IVF1048576_HNSW32,PQ32"
    # GPUs search the coarse centroids by brute force
    assert choose_index_spec(5_000_000, 256, gpu=True).factory == "IVF65536,Flat"
    # the size class changes when nlist doubles (4x the vectors)
    assert choose_index_spec(300_000, 64).size_class != choose_index_spec(1_200_000, 64).size_class


def test_flat_index_is_exact() -> None:
    x = clustered(3000, 32, seed=1)
    vi = VectorIndex.build(np.arange(3000) + 100, x, model_id="m")
    assert vi.spec.factory == "Flat"
    D, I = vi.search(x[:50], 5)
    De, Ie = exact_knn(x[:50], x, 5)
    np.testing.assert_array_equal(I, Ie + 100)
    np.testing.assert_allclose(D, De, atol=1e-5)


def test_ivf_recall_against_brute_force() -> None:
    base = clustered(20_000, 32, seed=2)
    spec = choose_index_spec(len(base), 32, flat_max=1000)
    assert spec.is_ivf
    vi = VectorIndex.build(np.arange(len(base)), base, model_id="m", spec=spec)
    assert vi.info["tuning"]["recall"] >= 0.97
    assert 1 <= vi.spec.nprobe < vi.spec.nlist  # tuned, and not exhaustive
    queries = base[np.random.default_rng(5).choice(len(base), 300, replace=False)]
    _, I = vi.search(queries, 11)
    _, Ie = exact_knn(queries, base, 11)
    assert recall_at_k(I[:, 1:], Ie[:, 1:]) >= 0.95


def test_exact_search_over_blocks_and_both_tuning_truths_agree() -> None:
    base = clustered(6000, 32, seed=8)
    ids = np.arange(6000) + 7
    q = base[:40]
    D, I = exact_knn_blocks(q, ((ids[s:s + 1000], base[s:s + 1000]) for s in range(0, 6000, 1000)), 9)
    De, Ie = exact_knn(q, base, 9)
    np.testing.assert_array_equal(I, Ie + 7)
    np.testing.assert_allclose(D, De, atol=1e-5)
    spec = choose_index_spec(6000, 32, flat_max=1000)
    a = VectorIndex.build(ids, base, model_id="m", spec=spec)              # BLAS ground truth
    b = VectorIndex.build(ids, base, model_id="m", spec=spec, tune=False)
    b.tune()                                                                # exhaustive IVF ground truth
    assert a.spec.nprobe == b.spec.nprobe
    assert a.info["tuning"]["recall"] == b.info["tuning"]["recall"]


def test_tuning_with_a_similarity_floor_on_unstructured_vectors() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(20_000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    src, dst = np.arange(0, 4000, 2), np.arange(1, 4000, 2)  # 2,000 planted near-duplicates
    y = x[src] + 0.03 * rng.normal(size=(len(src), 32)).astype(np.float32)
    x[dst] = y / np.linalg.norm(y, axis=1, keepdims=True)
    spec = choose_index_spec(len(x), 32, flat_max=1000)
    ids = np.arange(len(x))
    plain = VectorIndex.build(ids, x, model_id="m", spec=spec)   # recall@10 of noise neighbours: costly
    floor = VectorIndex.build(ids, x, model_id="m", spec=spec, tune=False)
    floor.tune(min_sim=0.9, base=lambda: [(ids, x)])
    assert floor.spec.nprobe * 8 <= plain.spec.nprobe
    _, I = floor.search(x[src], 2)
    found = np.mean([d in row for d, row in zip(dst, I)])
    assert found >= 0.95


def test_incremental_add_equals_full_build() -> None:
    x = clustered(12_000, 32, seed=3)
    ids = np.arange(len(x)) * 3  # any int64 ids
    spec = IndexSpec(factory="IVF64,Flat", dim=32, nlist=64, nprobe=4, train_size=3000)
    sample = x[:3000]
    inc = VectorIndex.empty(spec, sample, model_id="m")
    for s in range(0, len(x), 5000):
        inc.add(ids[s:s + 5000], x[s:s + 5000])
    full = VectorIndex.empty(spec, sample, model_id="m")
    full.add(ids, x)
    q = x[::97]
    Di, Ii = inc.search(q, 10)
    Df, If = full.search(q, 10)
    np.testing.assert_array_equal(Ii, If)
    np.testing.assert_array_equal(Di, Df)


def _store(tmp_path, n_batches: int, per: int, dim: int = 16, model_id: str = "m"):
    store = FigureStore.create(tmp_path / "store", model_id=model_id, dim=dim)
    x = clustered(n_batches * per, dim, seed=4)
    for b in range(n_batches):
        store.append(simple_table(per, start=b * per), x[b * per:(b + 1) * per], model_id=model_id,
                     run_id=f"run-{b}")
    return store, x


def test_sync_index_incremental_equals_rebuild_and_round_trips(tmp_path) -> None:
    store, x = _store(tmp_path, 3, 400)
    first = sync_index(store)
    assert first.ntotal == 1200 and first.spec.factory == "Flat"
    more = clustered(500, 16, seed=9)
    store.append(simple_table(500, start=5000), more, model_id="m", run_id="nightly")
    inc = sync_index(store)  # loads the saved index and adds only the new file
    assert inc.files == store.files and inc.ntotal == 1700
    assert inc.info["built"] == first.info["built"]
    fresh = VectorIndex.build(*store.read_vectors(), model_id="m")
    q = np.vstack([x[:20], more[:20]])
    Di, Ii = inc.search(q, 8)
    Df, If = fresh.search(q, 8)
    np.testing.assert_array_equal(Ii, If)
    np.testing.assert_allclose(Di, Df, atol=1e-6)
    # persistence round trip: store and index reopened from disk
    loaded = VectorIndex.load(FigureStore.open(store.root).index_dir)
    Dl, Il = loaded.search(q, 8)
    np.testing.assert_array_equal(Il, Ii)
    np.testing.assert_array_equal(Dl, Di)
    assert loaded.spec == inc.spec and loaded.files == store.files
    manifest = json.loads((store.root / MANIFEST).read_text())
    assert manifest["index"]["factory"] == "Flat" and manifest["index"]["ntotal"] == 1700


def test_sync_index_rebuilds_when_size_class_changes(tmp_path) -> None:
    store, x = _store(tmp_path, 2, 900)
    small = sync_index(store, flat_max=2000)
    assert small.spec.factory == "Flat" and small.ntotal == 1800
    store.append(simple_table(1500, start=9000), clustered(1500, 16, seed=7), model_id="m", run_id="r3")
    big = sync_index(store, flat_max=2000)
    assert big.spec.is_ivf and big.spec.factory == f"IVF{big.spec.nlist},Flat"
    assert big.ntotal == 3300 and big.files == store.files
    np.testing.assert_array_equal(np.sort(big.ids), np.arange(3300))
    saved = json.loads((store.root / MANIFEST).read_text())["index"]
    assert saved["factory"] == big.spec.factory and saved["nprobe"] == big.spec.nprobe
    assert saved["tuning"]["recall"] >= 0.97


def test_sync_index_leaves_out_noise(tmp_path) -> None:
    from tests.index.helpers import figures_table

    store = FigureStore.create(tmp_path / "s", model_id="m", dim=8)
    t = figures_table([{"flags": (FLAG_TINY,)}, {}, {"flags": (FLAG_UNIFORM, FLAG_COMPOUND)}, {}], images=False)
    store.append(t, np.eye(8)[:4] + 0.1, model_id="m", run_id="r")
    vi = sync_index(store)
    np.testing.assert_array_equal(np.sort(vi.ids), [1, 3])


def test_model_change_rebuilds_and_wrong_dimension_is_refused(tmp_path) -> None:
    store, _ = _store(tmp_path, 1, 300)
    vi = sync_index(store)
    with pytest.raises(StoreMismatchError):
        vi.add(np.arange(2), np.ones((2, 32), np.float32))
    with pytest.raises(StoreMismatchError):
        vi.search(np.ones((1, 32), np.float32), 3)
    # a second store for another model reusing the same index folder gets a fresh index
    other = FigureStore.create(tmp_path / "other", model_id="m2", dim=16)
    other.append(simple_table(50), clustered(50, 16, seed=1), model_id="m2", run_id="r")
    vi2 = sync_index(other, directory=store.index_dir)
    assert vi2.model_id == "m2" and vi2.ntotal == 50


def test_interrupted_save_is_detected(tmp_path) -> None:
    vi = VectorIndex.build(np.arange(100), clustered(100, 8), model_id="m")
    vi.save(tmp_path / "ix")
    np.save(tmp_path / "ix" / "ids.npy", np.arange(99))
    with pytest.raises(ValueError, match="interrupted save"):
        VectorIndex.load(tmp_path / "ix")


def test_cpu_fallback_without_gpus() -> None:
    assert gpu_count() == faiss.get_num_gpus()
    vi = VectorIndex.build(np.arange(100), clustered(100, 8), model_id="m")
    if gpu_count() == 0:
        assert vi._searcher() is vi.index


@pytest.mark.skipif(gpu_count() == 0, reason="needs faiss-gpu and a GPU")
def test_gpu_search_matches_cpu() -> None:
    x = clustered(5000, 32)
    vi = VectorIndex.build(np.arange(5000), x, model_id="m", use_gpu=False)
    D, I = vi.search(x[:100], 5)  # GPU clone
    Dc, Ic = vi.index.search(x[:100], 5)
    assert recall_at_k(I, Ic) >= 0.99
