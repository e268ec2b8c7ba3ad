"""The verdict store (`jobs.verdicts`) and how the report writers respect verdicts, on hand-made pairs."""
from __future__ import annotations

import csv
import json
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from jobs.report_rows import DISMISSED_CSV, write_outputs
from jobs.verdicts import (
    CONFIRMED,
    DISMISSED,
    EXPORT_FORMAT,
    TOUCHES_CONFIRMED,
    UNSURE,
    Verdict,
    VerdictStore,
    apply_verdicts,
    pair_key,
    verdict_db_path,
)
from tests.jobs.review_samples import panels, sample_pairs

H1, H2, H3 = "1" * 64, "2" * 64, "3" * 64


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_pair_key_is_order_independent_and_needs_both_hashes() -> None:
    assert pair_key(H1, H2) == pair_key(H2, H1) == f"{H1}:{H2}"
    with pytest.raises(ValueError):
        pair_key(H1, "")


def test_verdict_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="verdict must be one of"):
        Verdict(H1, H2, "maybe")
    with pytest.raises(ValueError, match="sha256"):
        Verdict("abc", H2, CONFIRMED)
    assert Verdict(H1, H2, UNSURE).decided_at.endswith("Z")


def test_latest_wins_history_kept_and_wal(tmp_path: Path) -> None:
    store = VerdictStore.for_store(tmp_path)
    assert store.latest() == {} and not store.exists()
    store.add(Verdict(H1, H2, CONFIRMED, note="same blot", reviewer="ann", decided_at="2026-01-01T00:00:00Z"))
    store.add(Verdict(H2, H1, DISMISSED, reviewer="bob", decided_at="2026-01-02T00:00:00Z"))
    store.add(Verdict(H1, H3, UNSURE))
    latest = store.latest()
    assert latest[pair_key(H1, H2)]["verdict"] == DISMISSED and latest[pair_key(H1, H3)]["verdict"] == UNSURE
    assert [r["verdict"] for r in store.history(pair_key(H1, H2))] == [CONFIRMED, DISMISSED]
    # an older decision recorded later (an import) does not override a newer one
    store.add(Verdict(H1, H2, CONFIRMED, decided_at="2025-12-31T00:00:00Z"))
    assert store.latest()[pair_key(H1, H2)]["verdict"] == DISMISSED
    with sqlite3.connect(verdict_db_path(tmp_path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 4


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path / "v.sqlite")
    store.add(Verdict(H1, H2, UNSURE))  # create the schema once

    def reviewer(name: str) -> None:
        mine = VerdictStore(tmp_path / "v.sqlite")
        for i in range(20):
            mine.add(Verdict(H1, H2, (CONFIRMED, DISMISSED, UNSURE)[i % 3], reviewer=name, note=str(i)))

    threads = [threading.Thread(target=reviewer, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.history()) == 1 + 4 * 20


def test_import_is_idempotent(tmp_path: Path) -> None:
    entry = {"hash_a": H1, "hash_b": H2, "verdict": CONFIRMED, "note": "n", "reviewer": "ann",
             "decided_at": "2026-01-01T00:00:00Z", "doc_a": "x.pdf", "page_a": 2, "bbox_a": "1.00 2.00 3.00 4.00",
             "unknown": "ignored"}
    path = tmp_path / "verdicts.json"
    path.write_text(json.dumps({"format": EXPORT_FORMAT, "verdicts": [entry]}), encoding="utf-8")
    store = VerdictStore.for_store(tmp_path / "store")
    assert store.import_json(path) == (1, 0)
    assert store.import_json(path) == (0, 1)
    row = store.latest()[pair_key(H1, H2)]
    assert (row["doc_a"], row["page_a"], row["source"]) == ("x.pdf", 2, "import:verdicts.json")
    path.write_text(json.dumps({"format": "something-else", "verdicts": []}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a reusescan verdicts file"):
        store.import_json(path)


def test_apply_verdicts_dismissed_confirmed_touching(tmp_path: Path) -> None:
    images = panels()
    aa90, bc, ab = sample_pairs(images)
    store = VerdictStore.for_store(tmp_path)
    assert apply_verdicts([aa90, bc, ab], tmp_path) == [aa90, bc, ab]  # no database: unchanged
    store.add(Verdict.for_pair(aa90, CONFIRMED, reviewer="ann"))
    store.add(Verdict.for_pair(bc, DISMISSED, reviewer="ann"))
    # the same panels under new document names (a resubmitted manuscript), b and a swapped
    renamed = sample_pairs(images, docs={"p1.pdf": "resubmitted-v2.pdf"})
    swapped = replace(renamed[1], a=renamed[1].b, b=renamed[1].a)
    out = apply_verdicts([renamed[0], swapped, renamed[2]], tmp_path)
    assert [p.verdict for p in out] == [CONFIRMED, DISMISSED, TOUCHES_CONFIRMED]  # A/B shares A with a confirmed pair


def test_writers_move_dismissed_pairs_to_their_own_csv(tmp_path: Path) -> None:
    aa90, bc, ab = sample_pairs(panels())
    pairs = [replace(aa90, verdict=CONFIRMED), replace(bc, verdict=DISMISSED), replace(ab, verdict=TOUCHES_CONFIRMED)]
    write_outputs(tmp_path, pairs, [], title="t", summary={})
    report = read_csv(tmp_path / "report.csv")
    assert [(r["figure_id_a"], r["verdict"]) for r in report] == [("fig-A", CONFIRMED), ("fig-A", TOUCHES_CONFIRMED)]
    assert report[0]["pair_key"] == aa90.pair_key
    dismissed = read_csv(tmp_path / DISMISSED_CSV)
    assert [(r["figure_id_a"], r["verdict"]) for r in dismissed] == [("fig-B", DISMISSED)]
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.count('data-verdict="dismissed"') == 1  # kept in the page, behind the verdict filter
