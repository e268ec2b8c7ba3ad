"""The Parquet figure store: round trip, atomic files, refusal to mix models, DuckDB/pandas access."""
from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from index.store import (
    MANIFEST,
    BatchInfo,
    FigureStore,
    StoreCorruptError,
    StoreError,
    StoreMismatchError,
    make_thumbnail,
)
from scanner.records import FLAG_BOILERPLATE, table_to_records
from tests.index.helpers import figures_table, forget_file_sizes, simple_table, unit


def _store_with_two_batches(tmp_path, dtype="float32"):
    store = FigureStore.create(tmp_path / "s", model_id="bta-r18-v1", dim=8, dtype=dtype)
    rng = np.random.default_rng(0)
    v1, v2 = rng.normal(size=(5, 8)), rng.normal(size=(3, 8))
    t1 = figures_table([{"doc": f"a{i}.pdf"} for i in range(5)])
    t2 = figures_table([{"doc": "b.pdf", "flags": (FLAG_BOILERPLATE,) if i == 0 else ()} for i in range(3)])
    b1 = store.append(t1, v1, model_id="bta-r18-v1", run_id="run-1")
    b2 = store.append(t2, v2, model_id="bta-r18-v1", run_id="run-2")
    return store, (t1, t2), (v1, v2), (b1, b2)


def test_round_trip_and_manifest(tmp_path) -> None:
    store, (t1, t2), (v1, v2), (b1, b2) = _store_with_two_batches(tmp_path)
    assert (b1.first_row_id, b1.rows, b2.first_row_id, b2.rows) == (0, 5, 5, 3)
    again = FigureStore.open(tmp_path / "s")
    m = json.loads((tmp_path / "s" / MANIFEST).read_text())
    assert m["model_id"] == "bta-r18-v1" and m["dim"] == 8 and m["dtype"] == "float32"
    assert m["num_rows"] == 8 and m["num_noise"] == 1
    assert m["runs"]["run-1"]["rows"] == 5 and m["runs"]["run-2"]["files"] == ["figures/part-000001.parquet"]
    assert again.files == ["figures/part-000000.parquet", "figures/part-000001.parquet"]
    ids, vecs = again.read_vectors()
    np.testing.assert_array_equal(ids, np.arange(8))
    np.testing.assert_allclose(vecs, unit(np.vstack([v1, v2])), atol=1e-6)
    ids_nn, _ = again.read_vectors(include_noise=False)
    np.testing.assert_array_equal(ids_nn, [0, 1, 2, 3, 4, 6, 7])
    np.testing.assert_allclose(again.dense_vectors()[6], unit(v2[1]), atol=1e-6)
    # the scanner's records come back unchanged
    table = again.read_table()
    assert table_to_records(table) == table_to_records(t1) + table_to_records(t2)
    assert table.column("run_id").to_pylist() == ["run-1"] * 5 + ["run-2"] * 3


def test_float16_vectors(tmp_path) -> None:
    store, _, (v1, v2), _ = _store_with_two_batches(tmp_path, dtype="float16")
    _, vecs = store.read_vectors()
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(vecs, unit(np.vstack([v1, v2])), atol=2e-3)
    schema = pq.read_schema(tmp_path / "s" / store.files[0])
    vtype = schema.field("vector").type
    assert vtype.value_type == pa.float16() and vtype.list_size == 8
    assert store.read_table(["thumbnail"]).column("thumbnail").null_count == 8  # kept in the schema, never written


def test_a_store_written_with_thumbnails_still_reads_and_grows(tmp_path) -> None:
    """Stores written before the thumbnail column went unused hold JPEGs there; they open, read and append alike."""
    store, (t1, t2), (v1, v2), _ = _store_with_two_batches(tmp_path)
    old_file = tmp_path / "s" / store.files[0]
    old = pq.read_table(old_file)
    jpegs = [make_thumbnail(img) for img in old.column("image").to_pylist()]
    pq.write_table(old.set_column(old.schema.get_field_index("thumbnail"), "thumbnail", pa.array(jpegs, pa.binary())), old_file)
    forget_file_sizes(tmp_path / "s")
    again = FigureStore.open(tmp_path / "s")
    again.append(simple_table(2, start=100), np.eye(8)[:2], model_id="bta-r18-v1", run_id="run-3")
    table = again.read_table()
    assert table.num_rows == 10
    assert table_to_records(table)[:8] == table_to_records(t1) + table_to_records(t2)
    assert table.column("thumbnail").null_count == 5  # the 5 old JPEGs come back, the rest are null
    assert table.column("thumbnail")[0].as_py().startswith(b"\xff\xd8")
    ids, vecs = again.read_vectors()
    np.testing.assert_array_equal(ids, np.arange(10))
    np.testing.assert_allclose(vecs[:8], unit(np.vstack([v1, v2])), atol=1e-6)
    assert again.read_table(row_ids=[1, 9]).column("row_id").to_pylist() == [1, 9]


def test_images_can_be_left_out(tmp_path) -> None:
    store = FigureStore.create(tmp_path / "s", model_id="m", dim=4)
    store.append(figures_table([{}, {}]), np.eye(4)[:2], model_id="m", run_id="r", keep_images=False)
    t = store.read_table(["image", "vector"])
    assert t.column("image").null_count == 2 and t.column("vector").null_count == 0


def test_thumbnail_is_bounded() -> None:
    out = io.BytesIO()
    Image.new("RGB", (600, 300), (200, 10, 10)).save(out, format="PNG")
    with Image.open(io.BytesIO(make_thumbnail(out.getvalue(), max_side=128))) as im:
        assert im.size == (128, 64)
    assert make_thumbnail(None) is None


def test_refuses_other_model_or_dimension(tmp_path) -> None:
    store, *_ = _store_with_two_batches(tmp_path)
    with pytest.raises(StoreMismatchError, match="model 'other-model'"):
        store.append(simple_table(2), np.ones((2, 8)), model_id="other-model", run_id="r")
    with pytest.raises(StoreMismatchError, match="16-d"):
        store.append(simple_table(2), np.ones((2, 16)), model_id="bta-r18-v1", run_id="r")
    with pytest.raises(StoreMismatchError):
        FigureStore.open_or_create(tmp_path / "s", model_id="other-model", dim=8)
    with pytest.raises(StoreError):
        FigureStore.create(tmp_path / "s", model_id="bta-r18-v1", dim=8)
    # nothing was written by the refused calls
    assert len(list((tmp_path / "s" / "figures").glob("*"))) == 2
    assert FigureStore.open(tmp_path / "s").num_rows == 8


def test_rejects_bad_vectors(tmp_path) -> None:
    store = FigureStore.create(tmp_path / "s", model_id="m", dim=4)
    with pytest.raises(ValueError, match="zero vector"):
        store.append(simple_table(2), np.array([[1, 0, 0, 0], [0, 0, 0, 0]]), model_id="m", run_id="r")
    with pytest.raises(ValueError, match="2 records but 3 vectors"):
        store.append(simple_table(2), np.ones((3, 4)), model_id="m", run_id="r")
    assert store.num_rows == 0


def test_interrupted_ingest_is_ignored_then_overwritten(tmp_path, caplog) -> None:
    store, *_ = _store_with_two_batches(tmp_path)
    # a crash after the rename but before the manifest: a file the manifest does not list
    orphan = tmp_path / "s" / "figures" / "part-000002.parquet"
    orphan.write_bytes((tmp_path / "s" / store.files[0]).read_bytes())
    with caplog.at_level(logging.WARNING):
        again = FigureStore.open(tmp_path / "s")
    assert "not in the manifest" in caplog.text
    assert again.read_table(["row_id"]).num_rows == 8
    again.append(simple_table(2), np.ones((2, 8)), model_id="bta-r18-v1", run_id="run-3")
    assert again.orphan_files() == []
    np.testing.assert_array_equal(again.read_vectors()[0], np.arange(10))


def test_duckdb_and_pandas_read_the_folder(tmp_path) -> None:
    for dtype in ("float32", "float16"):
        root = tmp_path / dtype
        store, _, (v1, _), _ = _store_with_two_batches(root, dtype=dtype)
        glob = f"{root / 's'}/figures/*.parquet"
        rows = duckdb.sql(
            f"SELECT run_id, count(*) AS n, min(row_id) AS first FROM '{glob}' GROUP BY run_id ORDER BY run_id"
        ).fetchall()
        assert rows == [("run-1", 5, 0), ("run-2", 3, 5)]
        (doc, vec), = duckdb.sql(f"SELECT doc, vector FROM '{glob}' WHERE row_id = 2").fetchall()
        assert doc == "a2.pdf"
        np.testing.assert_allclose(np.array(vec, dtype=np.float32), unit(v1[2]), atol=2e-3)
        noise = duckdb.sql(f"SELECT count(*) FROM '{glob}' WHERE list_contains(flags, 'boilerplate')").fetchall()
        assert noise == [(1,)]
        df = pd.read_parquet(root / "s" / "figures", columns=["row_id", "doc", "model_id"])
        assert sorted(df["row_id"]) == list(range(8)) and set(df["model_id"]) == {"bta-r18-v1"}


def test_region_vectors_round_trip_in_a_side_file(tmp_path) -> None:
    store, _, _, (b1, b2) = _store_with_two_batches(tmp_path)
    assert [len(x) for x in store.read_region_vectors()] == [0, 0]  # a store without them has none
    rng = np.random.default_rng(1)
    r1, r2 = rng.normal(size=(4, 8)), rng.normal(size=(2, 8))
    store.write_region_vectors(b1, np.array([0, 0, 3, 4]), r1)
    store.write_region_vectors(b2, np.array([2, 2]), r2)
    store.write_region_vectors(b2, np.zeros(0, np.int64), np.zeros((0, 8)))  # nothing to write: no-op
    ids, vecs = FigureStore.open(tmp_path / "s").read_region_vectors()
    assert ids.tolist() == [0, 0, 3, 4, 7, 7]  # the panels' row ids, repeated
    assert np.allclose(vecs, np.concatenate([r1, r2]) / np.linalg.norm(np.concatenate([r1, r2]), axis=1, keepdims=True),
                       atol=1e-6)
    assert pq.read_schema(tmp_path / "s" / "figures" / "part-000000.parquet") == store.schema  # figures untouched
    with pytest.raises(ValueError):
        store.write_region_vectors(b2, np.array([3]), r2[:1])  # batch b2 has rows 0..2 only


def test_pixels_column_round_trips_and_older_files_read_as_null(tmp_path) -> None:
    """Stores written before the `pixels` column existed open, read (null there) and grow with it."""
    store, _, _, _ = _store_with_two_batches(tmp_path)
    old_file = tmp_path / "s" / store.files[0]
    pq.write_table(pq.read_table(old_file).drop_columns(["pixels"]), old_file)  # as written before the column
    forget_file_sizes(tmp_path / "s")
    again = FigureStore.open(tmp_path / "s")
    again.append(simple_table(2, start=100), np.eye(8)[:2], model_id="bta-r18-v1", run_id="run-3",
                 pixels=[b"p8", None])
    table = again.read_table(["row_id", "pixels"])
    assert table.column("pixels").to_pylist() == [None] * 8 + [b"p8", None]
    assert again.read_table(["pixels"], row_ids=[2, 8]).column("pixels").to_pylist() == [None, b"p8"]
    assert again.read_table().num_rows == 10  # every column, old file included
    with pytest.raises(ValueError, match="values of pixels"):
        again.append(simple_table(2, start=200), np.eye(8)[:2], model_id="bta-r18-v1", run_id="r", pixels=[b"x"])


def test_region_vectors_are_in_place_before_the_batch_is_committed(tmp_path) -> None:
    """`append(..., regions=...)` writes the side file first, and drops a stale one left by a crashed run."""
    store, _, _, _ = _store_with_two_batches(tmp_path)
    rng = np.random.default_rng(2)
    # a crashed run left regions for part-000002 (rows it never committed)
    store.write_region_vectors(BatchInfo(file="figures/part-000002.parquet", run_id="x", rows=2, first_row_id=8),
                               np.array([0, 1]), rng.normal(size=(2, 8)))
    store.append(simple_table(2), np.ones((2, 8)), model_id="bta-r18-v1", run_id="run-3")  # no regions now
    assert FigureStore.open(tmp_path / "s").read_region_vectors()[0].tolist() == []
    seen: list[bool] = []
    real = store._record_file

    def commit(*args, **kwargs):  # the manifest commit: the side file must already be there
        seen.append((tmp_path / "s" / "regions" / "part-000003.parquet").exists())
        return real(*args, **kwargs)

    store._record_file = commit  # type: ignore[method-assign]
    store.append(simple_table(2), np.ones((2, 8)), model_id="bta-r18-v1", run_id="run-4",
                 regions=(np.array([1, 1]), rng.normal(size=(2, 8))))
    assert seen == [True]
    assert FigureStore.open(tmp_path / "s").read_region_vectors()[0].tolist() == [11, 11]


def _leaf_index(path, prefix: str) -> int:
    """Position of the first Parquet leaf column whose path starts with `prefix` (nested types have several)."""
    md = pq.ParquetFile(path).metadata
    return next(i for i in range(md.num_columns) if md.row_group(0).column(i).path_in_schema.startswith(prefix))


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_a_damaged_store_file_is_a_named_error_not_wrong_vectors(tmp_path, damage) -> None:
    store, *_ = _store_with_two_batches(tmp_path)
    path = tmp_path / "s" / store.files[1]
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "flip":  # same size, valid footer: only the page checksums can tell
        for name in ("row_id", "vector", "doc"):  # a byte in the middle of each column every read below reads
            chunk = pq.ParquetFile(path).metadata.row_group(0).column(_leaf_index(path, name))
            start = chunk.dictionary_page_offset or chunk.data_page_offset
            data[start + chunk.total_compressed_size // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        path.unlink()
    again = FigureStore.open(tmp_path / "s")
    for read in (again.read_vectors, again.dense_vectors, lambda: again.read_table(["row_id", "doc"]),
                 again.read_keys):
        with pytest.raises(StoreCorruptError, match="part-000001"):
            read()
    assert isinstance(StoreCorruptError("x"), StoreError)  # the commands' handler catches it


def test_a_damaged_manifest_is_a_named_error(tmp_path) -> None:
    _store_with_two_batches(tmp_path)
    (tmp_path / "s" / MANIFEST).write_text('{"format": "reusescan-st', encoding="utf-8")
    with pytest.raises(StoreCorruptError, match=MANIFEST):
        FigureStore.open(tmp_path / "s")


def test_rows_read_by_id_do_not_decode_the_whole_image_column(tmp_path) -> None:
    """A file of 40 panels of ~1.9 MB each (77 MB of images): reading one panel's image by row id
    does not decode the column (files are written in small pages, rows are read a few at a time)."""
    store = FigureStore.create(tmp_path / "s", model_id="m", dim=8)
    rng = np.random.default_rng(0)
    table = simple_table(40)
    images = []
    for _ in range(40):
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (800, 800, 3), dtype=np.uint8)).save(out, format="PNG", compress_level=0)
        images.append(out.getvalue())
    table = table.set_column(table.schema.get_field_index("image"), "image", pa.array(images, pa.binary()))
    store.append(table, np.eye(8)[np.arange(40) % 8], model_id="m", run_id="r")
    # a fresh process, so that Arrow's peak allocation is this read's alone
    probe = ("import sys, pyarrow as pa; from index.store import FigureStore; "
             "t = FigureStore.open(sys.argv[1]).read_table(['row_id', 'image'], row_ids=[31]); "
             "print(t.column('row_id').to_pylist(), len(t.column('image')[0].as_py()), pa.default_memory_pool().max_memory())")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "s")], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    row_ids, size, peak = done.stdout.split("] ")[0] + "]", *map(int, done.stdout.split("] ")[1].split())
    assert row_ids == "[31]" and size == len(images[31])
    column = sum(map(len, images))  # before the streamed read: 2.4x this (186 MB), now ~0.4x
    assert peak < column / 2, f"{peak / 1e6:.0f} MB allocated to read one image of a {column / 1e6:.0f} MB column"
