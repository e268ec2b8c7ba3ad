"""The nightly store's lock and its log of where documents came from (`jobs.nightly`)."""
from __future__ import annotations

from pathlib import Path

import pytest

from jobs.nightly import LOCK_FILE, StoreLocked, load_sources, record_sources, run_nightly, store_lock
from jobs.options import RunOptions


def test_a_second_run_on_a_locked_store_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with store_lock(store):
        with pytest.raises(StoreLocked, match="another run is writing"), store_lock(store):
            pass
        assert (store / LOCK_FILE).read_text().startswith("pid ")
    with store_lock(store):  # released when the run ends
        pass


def test_sources_keep_the_last_path_of_each_ingested_document(tmp_path: Path) -> None:
    record_sources(tmp_path, "nightly-1", {"a.pdf": Path("/in1/a.pdf"), "gone.pdf": Path("/in1/gone.pdf")},
                   {"a.pdf": "sha-a"})  # gone.pdf was unreadable: no hash, not recorded
    record_sources(tmp_path, "nightly-2", {"a.pdf": Path("/in2/a.pdf")}, {"a.pdf": "sha-a2"})
    with open(tmp_path / "sources.jsonl", "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    assert load_sources(tmp_path) == {"a.pdf": Path("/in2/a.pdf")}


def test_a_night_must_be_a_date(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        run_nightly(tmp_path, tmp_path / "store", "yesterday", RunOptions())
    assert not (tmp_path / "store").exists()
