"""`reusescan make-corpus` and `reusescan score` end to end (small)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from jobs.cli import main


def test_make_corpus_then_score_truth_as_report(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    runner = CliRunner()
    res = runner.invoke(main, ["make-corpus", str(out), "--docs", "3", "--reuse", "2", "--seed", "5", "--no-images"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["docs"] == 3 and summary["reuse_events"] == 2
    assert len(list((out / "pdf").glob("*.pdf"))) == 3
    assert not (out / "images_truth.csv").exists()

    # a report that is the truth itself, plus one wrong pair, scores P=2/3, R=1
    with (out / "truth.csv").open() as fh:
        truth = list(csv.DictReader(fh))
    report = tmp_path / "report.csv"
    with report.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["score", "doc_a", "page_a", "bbox_a", "doc_b", "page_b", "bbox_b", "kind"])
        for i, r in enumerate(truth):
            w.writerow([0.9 - 0.1 * i, r["doc_b"], r["page_b"], r["bbox_b"], r["doc_a"], r["page_a"], r["bbox_a"], r["kind"]])
        w.writerow([0.95, "doc_00000.pdf", 1, "0 0 10 10", "doc_00001.pdf", 1, "0 0 10 10", "inter"])
    res = runner.invoke(main, ["score", str(report), str(out / "truth.csv"), "--json"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.output)
    assert metrics["tp"] == 2 and metrics["fp"] == 1
    assert metrics["recall"] == 1.0 and abs(metrics["precision"] - 2 / 3) < 1e-9
    assert abs(metrics["average_precision"] - (1 / 2 + 2 / 3) / 2) < 1e-9
    text = runner.invoke(main, ["score", str(report), str(out / "truth.csv")])
    assert text.exit_code == 0 and "average precision" in text.output and "recall by alteration" in text.output


def test_score_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("doc_a,doc_b\nx,y\n")
    res = CliRunner().invoke(main, ["score", str(bad), str(bad)])
    assert res.exit_code == 2 and "lacks columns" in res.output
    res = CliRunner().invoke(main, ["score", str(tmp_path / "missing.csv"), str(bad)])
    assert res.exit_code == 2
