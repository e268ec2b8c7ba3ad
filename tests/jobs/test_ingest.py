"""The store's input-error log and the checks an ingest makes before any work (`jobs.ingest`)."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from jobs.clock import StageClock
from jobs.ingest import ERRORS_LOG, check_store_model, has_store, ingest, load_errors, record_errors, stored_documents
from jobs.pipeline import EXTRACT_SCHEMA, ROW_DOC, ROW_ERROR, PipelineOptions
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
