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


def test_embed_panels_adds_region_vectors_only_for_large_record_rows() -> None:
    import io

    import pyarrow as pa
    from PIL import Image

    from jobs.pipeline import REGION_COLUMN, ROW_DOC, ROW_RECORD, EmbedPanels

    def png(size: tuple[int, int]) -> bytes:
        out = io.BytesIO()
        Image.fromarray(np.random.default_rng(size[0]).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
            out, format="PNG")
        return out.getvalue()

    batch = pa.table({"row_kind": [ROW_RECORD, ROW_DOC, ROW_RECORD],
                      "image": [png((200, 150)), None, png((60, 60))]})
    out = EmbedPanels(None, batch_size=8, crop_vectors=True)(batch)
    regions = out.column(REGION_COLUMN).to_pylist()
    dim = len(out.column("vector")[0].as_py())
    assert len(regions[0]) == 5 * dim and regions[1] is None and regions[2] is None  # 60 px: too small
    assert REGION_COLUMN not in EmbedPanels(None, batch_size=8)(batch).column_names  # off by default
