"""`reusescan extract`: outputs, errors.csv, PNG dump, exit codes, process pool."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.extract_run import run_extract
from scanner.extract import ExtractLimits
from scanner.records import FIGURES_SCHEMA, FLAG_BOILERPLATE, FLAG_COMPOUND, table_to_records
from tests.scanner import pdf_factory as F


def make_corpus(root: Path) -> None:
    logo = F.texture(30, 90, 1)
    for d in range(2):
        doc = F.new_doc()
        for p in range(2):
            page = doc.new_page()
            F.add_image(page, (20, 20, 110, 50), F.png_bytes(logo))
            F.add_image(page, (60, 100, 260, 250), F.png_bytes(F.texture(150, 200, 10 * d + p + 2)))
        F.save(doc, root / "papers" / f"p{d}.pdf")
    comp = F.compound_figure(rows=1, cols=2, seed=5)
    F.simple_pdf(root / "papers" / "fig.pdf", [comp.image])
    F.zero_byte(root / "bad" / "empty.pdf")
    F.not_a_pdf(root / "bad" / "html.pdf")
    F.encrypted(root / "bad" / "locked.pdf", F.texture(30, 30, 3))


@pytest.mark.parametrize("workers", ["0", "2"])
def test_extract_writes_store_errors_and_pngs(tmp_path: Path, workers: str) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    out, dump = tmp_path / "out", tmp_path / "png"
    result = CliRunner().invoke(
        main, ["extract", str(corpus), "--out", str(out), "--dump-png", str(dump), "--workers", workers, "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out / "figures.parquet")
    assert table.schema.equals(FIGURES_SCHEMA)
    recs = table_to_records(table)
    by_doc: dict[str, list] = {}
    for r in recs:
        by_doc.setdefault(r.doc, []).append(r)
    assert sorted(by_doc) == ["papers/fig.pdf", "papers/p0.pdf", "papers/p1.pdf"]
    assert len(by_doc["papers/p0.pdf"]) == 4 and len(by_doc["papers/p1.pdf"]) == 4
    logos = [r for r in recs if r.doc != "papers/fig.pdf" and r.y0 < 30]
    assert len(logos) == 4 and all(FLAG_BOILERPLATE in r.flags for r in logos)
    assert all(FLAG_BOILERPLATE not in r.flags for r in recs if r.y0 >= 30)
    fig = by_doc["papers/fig.pdf"]
    assert len(fig) == 3 and FLAG_COMPOUND in fig[0].flags and {r.parent_id for r in fig[1:]} == {fig[0].figure_id}
    with open(out / "errors.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["input"], r["stage"]) for r in rows] == [("bad/empty.pdf", "open"), ("bad/html.pdf", "open"), ("bad/locked.pdf", "open")]
    pngs = sorted(dump.glob("*.png"))
    assert len(pngs) == len(recs)
    assert sorted(p.read_bytes() for p in pngs) == sorted(r.image for r in recs)
    assert {p.name.rsplit('_', 1)[1] for p in pngs} == {f"{r.figure_id}.png" for r in recs}
    assert not list(out.glob("*.tmp")) and not list(out.glob("*.partial"))


def test_extract_is_deterministic_across_runs_and_worker_counts(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    runner = CliRunner()
    for name, workers in (("a", "0"), ("b", "2")):
        assert runner.invoke(main, ["extract", str(corpus), "--out", str(tmp_path / name), "--workers", workers, "--no-progress"]).exit_code == 0
    a = pq.read_table(tmp_path / "a" / "figures.parquet")
    b = pq.read_table(tmp_path / "b" / "figures.parquet")
    assert a.equals(b)


def test_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["extract", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]).exit_code == 2
    assert runner.invoke(main, ["extract", str(tmp_path)]).exit_code == 2
    blocker = tmp_path / "file"
    blocker.write_text("x")
    F.simple_pdf(tmp_path / "in" / "a.pdf", [F.texture(40, 40, 1)])
    failed = runner.invoke(main, ["extract", str(tmp_path / "in"), "--out", str(blocker / "sub"), "--workers", "0", "--no-progress"])
    assert failed.exit_code == 1
    ok = runner.invoke(main, ["extract", str(tmp_path / "in" / "a.pdf"), "--out", str(tmp_path / "o1"), "--workers", "0", "--no-progress"])
    assert ok.exit_code == 0
    (rec,) = table_to_records(pq.read_table(tmp_path / "o1" / "figures.parquet"))
    assert rec.doc == "a.pdf"
    assert np.allclose(rec.bbox, (40, 40, 80, 80))


@pytest.mark.slow
def test_a_worker_killed_mid_document_is_reported_and_the_rest_extracted(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for d in range(3):
        F.simple_pdf(corpus / f"ok{d}.pdf", [F.texture(40, 60, d)])
    # CPU-heavy document: far more than the 1 s CPU budget given below
    doc = F.new_doc()
    xref = F.add_image(doc.new_page(), (0, 0, 500, 600), F.png_bytes(F.texture(600, 500, 9)))
    for _ in range(150):  # the same image object drawn on 150 pages: cheap to build, slow to extract
        doc.new_page().insert_image((0, 0, 500, 600), xref=xref)
    F.save(doc, corpus / "heavy.pdf")
    summary = run_extract(
        corpus, tmp_path / "out", workers=2, limits=ExtractLimits(timeout_s=None), progress=False, hard_cpu_s=1.0
    )
    with open(tmp_path / "out" / "errors.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["input"], r["stage"]) for r in rows] == [("heavy.pdf", "extract")]
    assert "died" in rows[0]["error"]
    docs = {r.doc for r in table_to_records(pq.read_table(tmp_path / "out" / "figures.parquet"))}
    assert docs == {"ok0.pdf", "ok1.pdf", "ok2.pdf"}
    assert summary.documents == 4
