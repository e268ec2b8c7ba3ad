"""The store's input-error log and the checks an ingest makes before any work (`jobs.ingest`)."""
from __future__ import annotations

from pathlib import Path

from jobs.ingest import ERRORS_LOG, check_store_model, has_store, load_errors, record_errors, stored_documents


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
