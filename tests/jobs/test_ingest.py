"""The store's input-error log and the checks an ingest makes before any work (`jobs.ingest`)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from index.store import PIXELS_COLUMN, POSE_COLUMN, FigureStore, StoreError
from jobs.clock import StageClock
from jobs.ingest import (
    ERRORS_LOG,
    _store_records,
    check_store_model,
    has_store,
    ingest,
    load_errors,
    record_errors,
    stored_documents,
)
from jobs.pipeline import EXTRACT_SCHEMA, ROW_DOC, ROW_ERROR, ROW_RECORD, PipelineOptions
from jobs.scoring import model_id_of
from jobs.staging import STAGING_DIRNAME, StagingArea
from scanner.extract import file_sha256


def test_input_errors_are_logged_once_each_and_survive_a_torn_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert load_errors(store) == []
    record_errors(store, [])
    assert not store.exists()  # nothing to log: the store folder is not created
    record_errors(store, [("a.pdf", "read", "OSError: gone"), ("b.pdf", "extract", "not a PDF")])
    record_errors(store, [("a.pdf", "read", "OSError: gone")])  # the same error again on a resumed run
    with open(store / ERRORS_LOG, "a", encoding="utf-8") as fh:
        fh.write('["c.pdf", "read"')  # a crash mid-line
    assert load_errors(store) == [("a.pdf", "read", "OSError: gone"), ("b.pdf", "extract", "not a PDF")]


def test_a_folder_without_a_store_holds_nothing_and_fits_any_model(tmp_path: Path) -> None:
    assert not has_store(tmp_path)
    assert stored_documents(tmp_path) == set()
    check_store_model(tmp_path, "/no/such/model.pt")  # no store yet: nothing to compare, no model read


def test_errors_of_documents_stored_before_a_crash_are_still_reported(tmp_path: Path) -> None:
    """A crash after the store write but before the errors log: the rerun skips the stored document's
    rows, but keeps its error rows (they reach errors.csv only through this ingest)."""
    paper = tmp_path / "papers" / "a.pdf"
    paper.parent.mkdir()
    paper.write_bytes(b"%PDF-1.4 stand-in")
    sha = file_sha256(paper)
    blank = {c: None for c in EXTRACT_SCHEMA.names}
    staged = pa.Table.from_pylist([
        {**blank, "row_kind": ROW_ERROR, "doc": "a.pdf", "doc_sha256": sha, "stage": "decode", "error": "xref 7: broken", "flags": []},
        {**blank, "row_kind": ROW_DOC, "doc": "a.pdf", "doc_sha256": sha, "records": 0, "pages": 2, "flags": []},
    ], schema=EXTRACT_SCHEMA)
    staged = staged.append_column("vector", pa.nulls(2, pa.list_(pa.float32()))).append_column(
        "model_id", pa.array([model_id_of(None)] * 2, pa.string()))
    store = tmp_path / "out" / "store"
    StagingArea(store / STAGING_DIRNAME).write(staged)
    result = ingest([paper], paper.parent, store, run_id="r", pipeline=PipelineOptions(),
                    seen=lambda doc, s: (doc, s) == ("a.pdf", sha), clock=StageClock())  # stored before the crash
    assert result.errors == [("a.pdf", "decode", "xref 7: broken")]
    assert result.documents == 0 and result.skipped_documents == 1
    assert not (store / STAGING_DIRNAME).exists()


def test_the_store_gets_every_staged_record_once_in_document_order_whole_documents_a_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`_store_records` over light rows: the staged images, vectors, pixel features and grey images land
    in the store in (doc, sha) order, each store file of about `STORE_FILE_ROWS` rows of whole documents."""
    monkeypatch.setattr("jobs.ingest.STORE_FILE_ROWS", 5)
    area = StagingArea(tmp_path / "store" / STAGING_DIRNAME)
    blank = {c: None for c in EXTRACT_SCHEMA.names}
    sizes = {"c.pdf": 4, "a.pdf": 3, "b.pdf": 6}
    rows = [{**blank, "row_kind": ROW_RECORD, "doc": doc, "doc_sha256": "s" + doc, "figure_id": f"{doc}-{i}", "flags": [],
             "page": 1, "x0": 0.0, "y0": 0.0, "x1": 1.0, "y1": 1.0, "image": f"img-{doc}-{i}".encode()}
            for doc, n in sizes.items() for i in range(n)]
    rows += [{**blank, "row_kind": ROW_DOC, "doc": doc, "doc_sha256": "s" + doc, "records": n, "pages": 1, "flags": []}
             for doc, n in sizes.items()]
    staged = pa.Table.from_pylist(rows, schema=EXTRACT_SCHEMA)
    ids = staged.column("figure_id").to_pylist()
    staged = (staged.append_column("vector", pa.array([[1.0, float(i)] if f else None for i, f in enumerate(ids)],
                                                      pa.list_(pa.float32())))
              .append_column("model_id", pa.array(["m"] * len(rows), pa.string()))
              .append_column(PIXELS_COLUMN, pa.array([f"px-{f}".encode() if f else None for f in ids], pa.binary()))
              .append_column(POSE_COLUMN, pa.array([f"pose-{f}".encode() if f else None for f in ids], pa.binary())))
    for start in range(0, staged.num_rows, 3):  # batches that cut documents
        area.write(staged.slice(start, 3))
    light, _ = area.complete_documents(light=True)
    _store_records(tmp_path / "store", light.filter(pc.equal(light.column("row_kind"), ROW_RECORD)), "r", area)
    store = FigureStore.open(tmp_path / "store")
    table = store.read_table(["figure_id", "doc", "image", PIXELS_COLUMN, POSE_COLUMN])
    got = table.column("figure_id").to_pylist()  # within a document, in the staged files' order
    assert sorted(got) == sorted(f"{doc}-{i}" for doc, n in sizes.items() for i in range(n))
    assert table.column("doc").to_pylist() == sorted(table.column("doc").to_pylist())
    assert table.column("image").to_pylist() == [f"img-{f}".encode() for f in got]
    assert table.column(PIXELS_COLUMN).to_pylist() == [f"px-{f}".encode() for f in got]
    assert table.column(POSE_COLUMN).to_pylist() == [f"pose-{f}".encode() for f in got]
    _, vectors = store.read_vectors()
    first = {f: i for i, f in enumerate(ids)}
    want = np.array([[1.0, first[f]] for f in got], np.float32)
    np.testing.assert_allclose(vectors, want / np.linalg.norm(want, axis=1, keepdims=True), rtol=1e-6)
    assert [store.read_table(["doc"], files=[f]).column("doc").unique().to_pylist() for f in store.files] == [
        ["a.pdf", "b.pdf"], ["c.pdf"]]


def test_an_extraction_worker_extracts_a_real_pdf_without_importing_torch() -> None:
    """Ray's extraction workers import `jobs.pipeline` and run `extract_paths`; recycled every 50 documents, each
    one paid ~2.6 s of CPU for torch when `jobs.scoring` imported the embedder at its top (1 s without)."""
    import subprocess
    import sys

    pdf = Path(__file__).resolve().parents[2] / "data" / "real-sample" / "pdfs" / "PMC4709619.pdf"
    code = ("import sys, numpy as np; import jobs.pipeline as p; "
            f"t = p.extract_paths({{'path': np.array([{str(pdf)!r}])}}, root={str(pdf.parent)!r}, max_pages=5, "
            "doc_timeout_s=60); "
            "print(t.num_rows, sorted(m for m in ('torch', 'torchvision', 'embedder.verify') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split(maxsplit=1)
    assert int(out[0]) >= 1 and out[1].strip() == "[]"


def test_batches_the_actors_staged_where_this_process_cannot_see_them_stop_the_ingest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a cluster whose nodes do not share the store's path, the actors' staged rows land elsewhere: the ingest
    stops with a named error rather than report every document of theirs as crashed."""
    paper = tmp_path / "papers" / "a.pdf"
    paper.parent.mkdir()
    paper.write_bytes(b"%PDF-1.4 stand-in")

    def staged_elsewhere(paths: object, root: object, options: object, *, then: object) -> Iterator[pa.Table]:
        yield pa.table({"null_rows": pa.nulls(3)})

    monkeypatch.setattr("jobs.ingest.run_extract_and_embed", staged_elsewhere)
    with pytest.raises(StoreError, match="wrote 3 rows to .* but this process finds 0 of them"):
        ingest([paper], paper.parent, tmp_path / "store", run_id="r", pipeline=PipelineOptions(),
               seen=lambda doc, sha: False, clock=StageClock())
