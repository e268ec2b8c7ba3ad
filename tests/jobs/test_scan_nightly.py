"""`reusescan scan` and `reusescan nightly` through a real local Ray cluster.

The corpus is built here: three PDFs, one panel planted again in another
paper rotated by 90 degrees, one copied within a paper, plus unreadable
inputs. The model is the tiny preset with a fixed random seed: its vectors
are exactly invariant to rotations and flips (D4 pooling), so exact and
rotated copies have cosine 1, which is what these tests need to check the
wiring. Model quality is tested in tests/embedder and tests/training.
"""
from __future__ import annotations

import csv
import fcntl
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from jobs.cli import main
from tests.scanner.pdf_factory import simple_pdf, texture

pytestmark = [pytest.mark.ray, pytest.mark.slow]

CONTRACT = ["score", "doc_a", "page_a", "bbox_a", "doc_b", "page_b", "bbox_b", "kind"]


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_model(tiny_model_file: Path) -> Path:
    return tiny_model_file


def make_corpus(root: Path) -> dict[str, np.ndarray]:
    """paper1: A, B; paper2: C, rot90(A); sub/paper3: D, D (an intra copy); plus bad inputs."""
    panels = {name: texture(h, w, seed) for name, (h, w, seed) in
              {"A": (200, 260, 1), "B": (180, 240, 2), "C": (220, 200, 3), "D": (160, 210, 4)}.items()}
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub").mkdir(exist_ok=True)
    simple_pdf(root / "paper1.pdf", [panels["A"], panels["B"]])
    simple_pdf(root / "paper2.pdf", [panels["C"], np.rot90(panels["A"]).copy()])
    simple_pdf(root / "sub" / "paper3.pdf", [panels["D"], panels["D"]])
    (root / "fake.pdf").write_bytes(b"<html>this is a web page</html>")
    (root / "empty.pdf").write_bytes(b"")
    return panels


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.output


def scan_args(corpus: Path, out: Path, model: Path) -> list[str]:
    """`reusescan scan` of a test corpus with the tiny model: every exact candidate reported.

    Keypoint candidates are off: they ignore the cosine floor that keeps only exact copies here."""
    return ["scan", str(corpus), "--out", str(out), "--model", str(model), "--threshold", "0",
            "--min-sim", "0.999", "--no-keypoints", "--no-progress"]


def pair_set(rows: list[dict[str, str]]) -> set[frozenset[tuple[str, str]]]:
    return {frozenset({(r["doc_a"], r["bbox_a"]), (r["doc_b"], r["bbox_b"])}) for r in rows}


def test_scan_reports_planted_pairs_and_errors(ray_cluster: None, tiny_model: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    out = tmp_path / "out"
    code, output = run(scan_args(corpus, out, tiny_model))
    assert code == 0, output
    rows = read_csv(out / "report.csv")
    assert list(rows[0].keys())[: len(CONTRACT)] == CONTRACT
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    found = pair_set(rows)
    inter = [r for r in rows if r["kind"] == "inter"]
    intra = [r for r in rows if r["kind"] == "intra"]
    assert {(r["doc_a"], r["doc_b"]) for r in inter} == {("paper1.pdf", "paper2.pdf")}
    assert {(r["doc_a"], r["doc_b"]) for r in intra} == {("sub/paper3.pdf", "sub/paper3.pdf")}
    assert len(found) == 2, rows
    rotated = inter[0]
    assert rotated["transform"] in {"rot90", "rot270"}
    assert all(r["page_a"] == "1" and r["page_b"] == "1" for r in rows)
    errors = read_csv(out / "errors.csv")
    assert {e["input"] for e in errors} == {"fake.pdf", "empty.pdf"}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "paper2.pdf" in html and "http://" not in html.replace("http://www.w3.org", "")


def test_scan_resumes_without_reingesting(ray_cluster: None, tiny_model: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    out = tmp_path / "out"
    args = scan_args(corpus, out, tiny_model)
    assert run(args)[0] == 0
    first = read_csv(out / "report.csv")
    code, output = run(args)
    assert code == 0
    assert "already stored 3" in output
    assert read_csv(out / "report.csv") == first
    # a document removed from the folder leaves the report
    (corpus / "paper2.pdf").unlink()
    assert run(args)[0] == 0
    docs = {r["doc_a"] for r in read_csv(out / "report.csv")} | {r["doc_b"] for r in read_csv(out / "report.csv")}
    assert docs == {"sub/paper3.pdf"}


def test_nightly_is_incremental_idempotent_and_locked(ray_cluster: None, tiny_model: Path, tmp_path: Path) -> None:
    panels = make_corpus(tmp_path / "unused")
    night1, night2 = tmp_path / "in1", tmp_path / "in2"
    night1.mkdir()
    night2.mkdir()
    simple_pdf(night1 / "old.pdf", [panels["A"], panels["B"]])
    simple_pdf(night2 / "new.pdf", [panels["C"], np.fliplr(panels["A"]).copy()])
    (night2 / "old-again.pdf").write_bytes((night1 / "old.pdf").read_bytes())  # same content, new name
    store = tmp_path / "store"
    common = ["--store", str(store), "--model", str(tiny_model), "--threshold", "0", "--min-sim", "0.999",
              "--no-keypoints", "--no-progress"]
    assert run(["nightly", str(night1), *common, "--date", "2026-11-01"])[0] == 0
    assert read_csv(store / "reports" / "2026-11-01" / "report.csv") == []

    code, output = run(["nightly", str(night2), *common, "--date", "2026-11-02"])
    assert code == 0, output
    rows = read_csv(store / "reports" / "2026-11-02" / "report.csv")
    assert [(r["doc_a"], r["doc_b"]) for r in rows] in ([("new.pdf", "old.pdf")], [("old.pdf", "new.pdf")])
    assert rows[0]["transform"] in {"flip_h", "flip_v"}

    from index.store import FigureStore

    before = FigureStore.open(store).num_rows
    code, output = run(["nightly", str(night2), *common, "--date", "2026-11-02"])
    assert code == 0
    assert FigureStore.open(store).num_rows == before
    assert read_csv(store / "reports" / "2026-11-02" / "report.csv") == rows

    # tonight again with every candidate reported and one card: the others are in report.csv only
    loose = ["--store", str(store), "--model", str(tiny_model), "--threshold", "0", "--min-sim", "0",
             "--no-keypoints", "--no-progress", "--cards", "1"]
    assert run(["nightly", str(night2), *loose, "--date", "2026-11-02"])[0] == 0
    many = read_csv(store / "reports" / "2026-11-02" / "report.csv")
    html = (store / "reports" / "2026-11-02" / "report.html").read_text(encoding="utf-8")
    assert len(many) > 1
    assert f"Showing the 1 highest-scoring of {len(many):,} pairs" in html

    with open(store / ".lock", "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = CliRunner().invoke(main, ["nightly", str(night2), *common])
    assert result.exit_code == 1
    assert "another run is writing" in result.output


def test_scan_usage_errors() -> None:
    code, output = run(["scan", "/no/such/folder", "--out", "/tmp/x"])
    assert code == 2
    code, output = run(["nightly", "/tmp", "--store", "/tmp/s", "--date", "yesterday"])
    assert code == 2


def test_scan_pairs_a_paper_submitted_twice_and_ignores_logos(ray_cluster: None, tiny_model: Path, tmp_path: Path) -> None:
    """Byte-identical files are two documents; a small logo on every first page is boilerplate."""
    import pymupdf

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    big, logo = texture(200, 260, 11), texture(40, 90, 12)

    def paper(path: Path, panel: np.ndarray) -> None:
        simple_pdf(path, [panel])
        doc = pymupdf.open(path)
        from tests.scanner.pdf_factory import png_bytes

        doc[0].insert_image(pymupdf.Rect(500, 20, 590, 60), stream=png_bytes(logo))
        doc.saveIncr()
        doc.close()

    paper(corpus / "a.pdf", big)
    (corpus / "a-resubmitted.pdf").write_bytes((corpus / "a.pdf").read_bytes())
    paper(corpus / "b.pdf", texture(210, 250, 13))
    paper(corpus / "c.pdf", texture(190, 240, 14))
    out = tmp_path / "out"
    code, output = run(["scan", str(corpus), "--out", str(out), "--model", str(tiny_model), "--threshold", "0",
                        "--min-sim", "0.999", "--no-keypoints", "--no-progress"])
    assert code == 0, output
    rows = read_csv(out / "report.csv")
    assert [(r["doc_a"], r["doc_b"]) for r in rows] in ([("a.pdf", "a-resubmitted.pdf")], [("a-resubmitted.pdf", "a.pdf")])
    assert rows[0]["bbox_a"] == rows[0]["bbox_b"]
    assert "noise 4" in output  # the logo on each of the four first pages


def test_resuming_with_another_model_is_refused(ray_cluster: None, tiny_model: Path, tmp_path: Path) -> None:
    import torch

    from embedder.checkpoint import save_checkpoint
    from embedder.config import Preset
    from embedder.model import BTAModel

    torch.manual_seed(1)
    other = tmp_path / "other.pt"
    save_checkpoint(other, BTAModel(Preset.TINY.config), {"note": "another random init"})
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    out = tmp_path / "out"
    assert run(["scan", str(corpus), "--out", str(out), "--model", str(tiny_model), "--no-progress"])[0] == 0
    result = CliRunner().invoke(main, ["scan", str(corpus), "--out", str(out), "--model", str(other), "--no-progress"])
    assert result.exit_code == 1
    assert "holds vectors of model" in result.output and "new --out" in result.output


def test_run_scan_is_a_plain_function(ray_cluster: None, tiny_model: Path, tmp_path: Path) -> None:
    """The library entry point, without click: what the command prints comes from its summary."""
    from jobs.match import MatchOptions
    from jobs.options import RunOptions
    from jobs.pipeline import PipelineOptions
    from jobs.scan import run_scan

    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    options = RunOptions(pipeline=PipelineOptions(model_path=str(tiny_model)),
                         match=MatchOptions(threshold=0.0, min_sim=0.999, keypoints=False), progress=False)
    summary = run_scan(corpus, tmp_path / "out", options)
    assert summary.report == (tmp_path / "out" / "report.html").resolve() and summary.report.exists()
    assert (summary.documents, summary.skipped_documents, summary.pages, summary.panels, summary.noise) == (5, 0, 3, 6, 0)
    assert (summary.pairs, summary.groups, summary.errors) == (2, 2, 2)
    assert len(read_csv(tmp_path / "out" / "report.csv")) == 2
    again = run_scan(corpus, tmp_path / "out", options)
    assert (again.skipped_documents, again.pages, again.pairs, again.errors) == (3, 0, 2, 2)
