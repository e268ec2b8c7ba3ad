"""`benchmarks/fake_store.py`: a large valid store fabricated from a small real one."""
from __future__ import annotations

import numpy as np

from benchmarks.fake_store import PANELS_PER_DOC, fabricate
from index.faiss_index import sync_index
from index.store import FigureStore
from tests.index.helpers import figures_table


def test_fabricated_rows_are_valid_moved_copies(tmp_path) -> None:
    src = FigureStore.create(tmp_path / "src", model_id="m", dim=16)
    rng = np.random.default_rng(7)  # not fabricate's seed: its noise would replay these very numbers
    source_vecs = rng.normal(size=(6, 16))
    src.append(figures_table([{"doc": "a.pdf"} for _ in range(6)]), source_vecs, model_id="m", run_id="r")
    store = fabricate(tmp_path / "src", tmp_path / "fake", 100, spread=0.5, file_rows=32)
    assert (store.num_rows, len(store.files), store.model_id, store.dim) == (100, 4, "m", 16)
    table = store.read_table(["figure_id", "doc", "run_id"])
    assert len(set(table.column("figure_id").to_pylist())) == 100
    assert len(set(table.column("doc").to_pylist())) == 100 // PANELS_PER_DOC + 1
    assert set(table.column("run_id").to_pylist()) == {"fake-old"}
    _, vecs = store.read_vectors()
    unit = source_vecs / np.linalg.norm(source_vecs, axis=1, keepdims=True)
    best = (vecs @ unit.T).max(axis=1)  # each fake vector near its source, none a copy
    assert 0.7 < best.min() and best.max() < 0.9999
    assert len(sync_index(store).ids) == 100
