"""Sub-region vectors through ingest and matching: flat column -> store side file -> extra queries."""
from __future__ import annotations

import numpy as np

from index.store import FigureStore
from jobs.ingest import split_region_vectors
from jobs.match import with_region_queries
from tests.index.helpers import figures_table


def test_region_column_splits_into_owners_and_vectors() -> None:
    owners, vecs = split_region_vectors([None, [1.0, 0.0, 0.0, 1.0], [], [0.5, 0.5]], 2)
    assert owners.tolist() == [1, 1, 3] and vecs.tolist() == [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    owners, vecs = split_region_vectors([None, None], 4)
    assert owners.shape == (0,) and vecs.shape == (0, 4)


def test_region_queries_only_for_the_queried_rows(tmp_path) -> None:
    store = FigureStore.create(tmp_path / "s", model_id="m", dim=4)
    rng = np.random.default_rng(0)
    info = store.append(figures_table([{"doc": f"d{i}.pdf"} for i in range(3)]), rng.normal(size=(3, 4)),
                        model_id="m", run_id="r")
    store.write_region_vectors(info, np.array([0, 2, 2]), rng.normal(size=(3, 4)))
    ids = np.array([1, 2])
    q_ids, q_vecs = with_region_queries(store, ids, store.dense_vectors()[ids])
    assert q_ids.tolist() == [1, 2, 2, 2] and q_vecs.shape == (4, 4)
