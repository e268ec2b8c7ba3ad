"""Later runs respect verdicts: a real `reusescan scan` (Ray, tiny model), verdicts recorded, scanned again."""
from __future__ import annotations

from pathlib import Path

import pytest

from jobs.verdicts import CONFIRMED, DISMISSED, Verdict, VerdictStore
from tests.jobs.test_scan_nightly import make_corpus, ray_cluster, read_csv, run, scan_args, tiny_model  # noqa: F401

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_rescan_leaves_dismissed_out_and_carries_confirmed(ray_cluster: None, tiny_model: Path, tmp_path: Path) -> None:  # noqa: F811
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    out = tmp_path / "out"
    args = scan_args(corpus, out, tiny_model)
    assert run(args)[0] == 0
    rows = read_csv(out / "report.csv")
    inter = next(r for r in rows if r["kind"] == "inter")
    intra = next(r for r in rows if r["kind"] == "intra")
    assert all(r["verdict"] == "" and len(r["pair_key"]) == 129 for r in rows)
    store = VerdictStore.for_store(out / "store")
    for row, verdict in ((inter, CONFIRMED), (intra, DISMISSED)):
        hash_a, hash_b = row["pair_key"].split(":")
        store.add(Verdict(hash_a, hash_b, verdict, reviewer="ann"))
    assert run(args)[0] == 0
    again = read_csv(out / "report.csv")
    assert [(r["pair_key"], r["verdict"]) for r in again if r["kind"] == "inter"] == [(inter["pair_key"], CONFIRMED)]
    assert not [r for r in again if r["kind"] == "intra"]
    assert [r["pair_key"] for r in read_csv(out / "dismissed.csv")] == [intra["pair_key"]]
