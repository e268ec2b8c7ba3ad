"""The staging area of an ingest and store files of whole documents (`jobs.staging`)."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from jobs.pipeline import EXTRACT_SCHEMA, ROW_DOC, ROW_RECORD
from jobs.staging import GATHER_READ_ROWS, StagingArea, document_aligned_slices, stage_batch
from scanner.noise import pixel_hash


def rows(doc: str, n_records: int, announce: int | None, model: str = "m") -> pa.Table:
    """Staged rows of one document: `n_records` records and, when finished, its `doc` row announcing `announce`."""
    out = [{**{c: None for c in EXTRACT_SCHEMA.names}, "row_kind": ROW_RECORD, "doc": doc, "doc_sha256": "s" + doc,
            "figure_id": f"{doc}-{i}", "flags": [], "page": 1} for i in range(n_records)]
    if announce is not None:
        out.append({**{c: None for c in EXTRACT_SCHEMA.names}, "row_kind": ROW_DOC, "doc": doc,
                    "doc_sha256": "s" + doc, "records": announce, "pages": 1, "flags": []})
    table = pa.Table.from_pylist(out, schema=EXTRACT_SCHEMA)
    return table.append_column("vector", pa.array([[1.0, 0.0]] * len(out), pa.list_(pa.float32()))).append_column(
        "model_id", pa.array([model] * len(out), pa.string()))


def test_staging_keeps_finished_documents_of_an_interrupted_run(tmp_path: Path) -> None:
    """Rows staged before a crash: complete documents count, a half-staged one is redone once."""
    area = StagingArea(tmp_path / "staging")
    area.write(rows("a.pdf", 3, 3))         # finished before the crash
    area.write(rows("b.pdf", 2, None))      # interrupted: 2 of its rows, no doc row
    assert area.finished_documents("m") == {("a.pdf", "sa.pdf")}
    area.write(rows("b.pdf", 4, 4))         # the next run extracts b again, completely
    table, docs = area.complete_documents()
    assert docs == {"a.pdf", "b.pdf"}
    assert sorted(table.filter(pc.equal(table.column("row_kind"), ROW_RECORD)).column("figure_id").to_pylist()) == [
        "a.pdf-0", "a.pdf-1", "a.pdf-2", "b.pdf-0", "b.pdf-1", "b.pdf-2", "b.pdf-3"]
    assert area.finished_documents("another-model") == set()  # another model's rows are discarded
    assert not (tmp_path / "staging").exists()


def test_store_files_hold_whole_documents() -> None:
    docs = ["a"] * 3 + ["b"] * 4 + ["c"] * 1 + ["d"] * 5
    assert document_aligned_slices(docs, 4) == [(0, 7), (7, 13)]
    assert document_aligned_slices(docs, 1) == [(0, 3), (3, 7), (7, 8), (8, 13)]
    assert document_aligned_slices(docs, 100) == [(0, 13)]
    assert document_aligned_slices([], 4) == []


def test_light_rows_leave_the_heavy_columns_on_disk_and_gather_brings_them_back(tmp_path: Path) -> None:
    def rows(doc: str, n: int) -> pa.Table:
        out = [{**{c: None for c in EXTRACT_SCHEMA.names}, "row_kind": ROW_RECORD, "doc": doc, "doc_sha256": "s",
                "figure_id": f"{doc}-{i}", "flags": [], "page": 1, "image": f"{doc}{i}".encode()} for i in range(n)]
        out.append({**{c: None for c in EXTRACT_SCHEMA.names}, "row_kind": ROW_DOC, "doc": doc, "doc_sha256": "s",
                    "records": n, "pages": 1, "flags": []})
        table = pa.Table.from_pylist(out, schema=EXTRACT_SCHEMA)
        vectors = [[float(i), 1.0] for i in range(n)] + [None]
        pixels = [f"px-{doc}{i}".encode() for i in range(n)] + [None]
        return (table.append_column("vector", pa.array(vectors, pa.list_(pa.float32())))
                .append_column("model_id", pa.array(["m"] * len(out), pa.string()))
                .append_column("pixels", pa.array(pixels, pa.binary())))

    area = StagingArea(tmp_path / "staging")
    area.write(rows("a.pdf", 3))
    area.write(rows("b.pdf", 2))
    light, docs = area.complete_documents(light=True)
    assert docs == {"a.pdf", "b.pdf"}
    assert not {"image", "vector", "pixels"} & set(light.column_names)
    records = light.filter(pc.equal(light.column("row_kind"), ROW_RECORD))
    records = records.sort_by([("figure_id", "descending")])  # any order comes back in that order
    records = records.set_column(records.schema.get_field_index("flags"), "flags",
                                 pa.array([["boilerplate"]] * records.num_rows, pa.list_(pa.string())))
    full = area.gather(records)
    assert full.column("figure_id").to_pylist() == ["b.pdf-1", "b.pdf-0", "a.pdf-2", "a.pdf-1", "a.pdf-0"]
    assert full.column("image").to_pylist() == [b"b.pdf1", b"b.pdf0", b"a.pdf2", b"a.pdf1", b"a.pdf0"]
    assert full.column("pixels").to_pylist() == [b"px-b.pdf1", b"px-b.pdf0", b"px-a.pdf2", b"px-a.pdf1", b"px-a.pdf0"]
    assert full.column("vector").to_pylist()[0] == [1.0, 1.0]
    assert full.column("flags").to_pylist() == [["boilerplate"]] * 5  # the light rows' columns win


def test_a_half_staged_document_of_another_model_discards_the_staging_area(tmp_path: Path) -> None:
    """Model X staged part of b.pdf before a crash; a rerun with model Y must not mix X's vectors into b."""
    area = StagingArea(tmp_path / "staging")
    area.write(rows("b.pdf", 2, None, model="x"))
    area.write(rows("a.pdf", 3, 3, model="y"))
    assert area.finished_documents("y") == set()
    assert not (tmp_path / "staging").exists()


def heavy_rows(doc: str, n: int, *, pose: bool = True) -> pa.Table:
    """`n` staged records of `doc` (and its doc row) whose heavy values name the record."""
    out = [{**{c: None for c in EXTRACT_SCHEMA.names}, "row_kind": ROW_RECORD, "doc": doc, "doc_sha256": "s",
            "figure_id": f"{doc}-{i}", "flags": [], "page": 1, "image": f"img-{doc}-{i}".encode() * 50}
           for i in range(n)]
    out.append({**{c: None for c in EXTRACT_SCHEMA.names}, "row_kind": ROW_DOC, "doc": doc, "doc_sha256": "s",
                "records": n, "pages": 1, "flags": []})
    table = pa.Table.from_pylist(out, schema=EXTRACT_SCHEMA)
    table = (table.append_column("vector", pa.array([[float(i), 1.0] for i in range(n)] + [None], pa.list_(pa.float32())))
             .append_column("model_id", pa.array(["m"] * len(out), pa.string()))
             .append_column("pixels", pa.array([f"px-{doc}-{i}".encode() for i in range(n)] + [None], pa.binary())))
    if pose:
        table = table.append_column("pose_grey", pa.array([f"pose-{doc}-{i}".encode() for i in range(n)] + [None], pa.binary()))
    return table


def test_gather_returns_exactly_the_rows_asked_for_in_their_order(tmp_path: Path) -> None:
    """Any subset of the staged rows in any order, across staged files and across the batches a staged
    file is read in (`GATHER_READ_ROWS`); a file of an older run without a column gives nulls there."""
    area = StagingArea(tmp_path / "staging")
    area.write(heavy_rows("a.pdf", 3 * GATHER_READ_ROWS + 3))
    area.write(heavy_rows("b.pdf", 5, pose=False))
    light, _ = area.complete_documents(light=True)
    records = light.filter(pc.equal(light.column("row_kind"), ROW_RECORD))
    by_id = {fid: i for i, fid in enumerate(records.column("figure_id").to_pylist())}
    asked = (["b.pdf-3", "a.pdf-26", "a.pdf-0", "a.pdf-1", "a.pdf-2", "b.pdf-0", "a.pdf-10", "a.pdf-9", "a.pdf-8"]
             + [f"a.pdf-{i}" for i in range(12, 20)] + ["b.pdf-4", "a.pdf-21"])
    full = area.gather(records.take(pa.array([by_id[f] for f in asked])))
    assert full.column("figure_id").to_pylist() == asked
    assert full.column("image").to_pylist() == [f"img-{f}".encode() * 50 for f in asked]
    assert full.column("pixels").to_pylist() == [f"px-{f}".encode() for f in asked]
    assert full.column("pose_grey").to_pylist() == [f"pose-{f}".encode() if f.startswith("a") else None for f in asked]
    assert full.column("vector").to_pylist() == [[float(f.rsplit("-", 1)[1]), 1.0] for f in asked]
    assert full.num_rows == len(asked)


def test_staged_files_carry_each_images_pixel_hash_so_light_rows_never_read_images(tmp_path: Path) -> None:
    """Boilerplate flags need every image's hash; it is taken when a batch is staged, and a file staged
    by an older version (no hash column) is hashed when read."""
    area = StagingArea(tmp_path / "staging")
    area.write(heavy_rows("a.pdf", 3))
    (staged,) = list((tmp_path / "staging").glob("batch-*.parquet"))
    old = heavy_rows("b.pdf", 2)
    pq.write_table(old, tmp_path / "staging" / "batch-0-older.parquet")  # as an older version staged it
    assert "pixel_hash" in pq.read_schema(staged).names
    light, _ = area.complete_documents(light=True)
    hashes = dict(zip(light.column("figure_id").to_pylist(), light.column("pixel_hash").to_pylist()))
    for doc, n in (("a.pdf", 3), ("b.pdf", 2)):
        assert [hashes[f"{doc}-{i}"] for i in range(n)] == [pixel_hash(f"img-{doc}-{i}".encode() * 50) for i in range(n)]
    pq.write_table(pq.read_table(staged).set_column(  # light rows take the stored hash: the images are not read
        pq.read_schema(staged).get_field_index("image"), "image", pa.nulls(4, pa.binary())), staged)
    light, _ = area.complete_documents(light=True)
    assert sorted(h for h in light.column("pixel_hash").to_pylist() if h) == sorted(h for h in hashes.values() if h)


def test_stage_batch_writes_the_batch_and_hands_back_only_its_row_count_or_its_error(tmp_path: Path) -> None:
    """What the embedding actors run on each batch (`run_extract_and_embed(then=...)`): a written batch comes back
    as that many rows of nulls (which the driver counts without reading them), a failed one as its error."""
    batch = heavy_rows("a.pdf", 3)
    back = stage_batch(batch, root=str(tmp_path / "staging"))
    assert back.schema == pa.schema([("null_rows", pa.null())]) and back.num_rows == 4
    light, finished = StagingArea(tmp_path / "staging").complete_documents(light=True)
    assert finished == {"a.pdf"} and light.num_rows == 4
    (tmp_path / "file").write_text("not a folder")
    back = stage_batch(batch, root=str(tmp_path / "file"))
    assert back.column_names == ["error"] and back.column("error")[0].as_py().startswith("FileExistsError")


def test_a_batch_that_fails_to_stage_is_an_error_row_and_leaves_no_part_written_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the failure (a full disk, a batch Arrow cannot write): an error row for the driver, no `.tmp` left."""
    def fails_half_way(table: pa.Table, where: Path, **kwargs: object) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise ValueError("Arrow could not write this column")

    monkeypatch.setattr(pq, "write_table", fails_half_way)
    back = stage_batch(heavy_rows("a.pdf", 2), root=str(tmp_path / "staging"))
    assert back.column("error").to_pylist() == ["ValueError: Arrow could not write this column"]
    assert list((tmp_path / "staging").iterdir()) == []


def test_a_document_staged_over_many_batches_keeps_the_order_its_batches_were_written_in(tmp_path: Path) -> None:
    """An embedding actor stages a document's rows a batch at a time: they come back (and get their row ids in
    the store) in the order written, not in the order of random file names."""
    area = StagingArea(tmp_path / "staging")
    whole = rows("a.pdf", 24, 24)
    for start in range(0, whole.num_rows, 2):
        area.write(whole.slice(start, 2))
    light, finished = area.complete_documents(light=True)
    assert finished == {"a.pdf"}
    assert light.column("figure_id").to_pylist()[:24] == [f"a.pdf-{i}" for i in range(24)]
