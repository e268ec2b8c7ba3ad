"""One finding per reuse: a figure pair and the panel pairs nested in it, in report.csv, report.html and `score`."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

from jobs.findings import group_findings, map_point, nests
from jobs.report import CSV_COLUMNS, REPORT_COLUMNS, PanelRef, ReportPair, write_report_csv, write_report_html
from jobs.report_rows import write_outputs
from tests.jobs.test_report import Dom
from training.scoring import score_report


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(seed).random((20, 20, 3)) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def ref(doc: str, page: int, bbox: tuple[float, float, float, float], name: str) -> PanelRef:
    img = _png(sum(map(ord, name)))
    return PanelRef(doc=doc, page=page, bbox=bbox, figure_id=name, thumbnail=img, image_sha256=f"{sum(map(ord, name)):064x}")


# Figure FA (x.pdf p1) reused in y.pdf p2 as FB, turned: apply rot90 to B to get A, so A's top-left
# panel a1 sits top-right in B (b1) and A's bottom-right panel a2 bottom-left in B (b2).
FA, FB = ref("x.pdf", 1, (100, 100, 300, 300), "FA"), ref("y.pdf", 2, (50, 400, 250, 600), "FB")
A1, A2 = ref("x.pdf", 1, (100, 100, 200, 200), "a1"), ref("x.pdf", 1, (200, 200, 300, 300), "a2")
B1, B2 = ref("y.pdf", 2, (150, 400, 250, 500), "b1"), ref("y.pdf", 2, (50, 500, 150, 600), "b2")
A3, B3 = ref("x.pdf", 1, (200, 100, 300, 200), "a3"), ref("y.pdf", 2, (150, 500, 250, 600), "b3")  # top-right in A
Z1 = ref("z.pdf", 1, (100, 100, 200, 200), "z1")


def pairs() -> dict[str, ReportPair]:
    return {
        "figure": ReportPair(score=0.90, a=FA, b=FB, transform="rot90"),
        "panel1": ReportPair(score=0.97, a=A1, b=B1, transform="rot90"),
        "panel2": ReportPair(score=0.95, a=B2, b=A2, transform="rot270"),  # the other way round: the inverse turn
        "wrong place": ReportPair(score=0.80, a=A1, b=B2, transform="rot90"),  # a1 is not where b2 is
        "wrong turn": ReportPair(score=0.85, a=A3, b=B3, transform="flip_h"),  # in place, but not the figure's turn
        "other doc": ReportPair(score=0.60, a=A1, b=Z1, transform="rot90"),
    }


def test_map_point_follows_the_d4_convention() -> None:
    assert map_point(0.75, 0.25, "rot90") == (0.25, 0.25)  # numpy.rot90: (x, y) -> (y, 1 - x)
    assert map_point(0.2, 0.7, "identity") == (0.2, 0.7)
    assert map_point(0.2, 0.7, "flip_h") == (0.8, 0.7)


def test_nested_pairs_with_consistent_transform_and_place_are_one_finding() -> None:
    p = pairs()
    assert nests(p["panel1"], p["figure"]) and nests(p["panel2"], p["figure"])
    assert not nests(p["figure"], p["panel1"]) and not nests(p["wrong place"], p["figure"])
    assert not nests(p["wrong turn"], p["figure"]) and not nests(p["other doc"], p["figure"])
    assert nests(ReportPair(score=0.5, a=A3, b=B3, transform="rot90"), p["figure"])  # same place, right turn
    name = {id(v): k for k, v in p.items()}
    got = [(f.id, name[id(f.head)], [name[id(x)] for x in f.panels], f.score) for f in group_findings(list(p.values()))]
    assert got == [(1, "figure", ["panel1", "panel2"], 0.97), (2, "wrong turn", [], 0.85),
                   (3, "wrong place", [], 0.80), (4, "other doc", [], 0.60)]


def test_report_csv_html_and_score_treat_a_finding_as_one(tmp_path: Path) -> None:
    from jobs.findings import assign_findings

    p = pairs()
    reported = assign_findings(list(p.values()))
    write_report_csv(reported, tmp_path / "report.csv")
    with open(tmp_path / "report.csv", newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    assert tuple(header[: len(REPORT_COLUMNS)]) == REPORT_COLUMNS and tuple(header) == CSV_COLUMNS
    findings = [(r[header.index("bbox_a")], r[header.index("finding")]) for r in rows]
    assert findings == [("100.00 100.00 200.00 200.00", "1"), ("50.00 500.00 150.00 600.00", "1"),
                        ("100.00 100.00 300.00 300.00", "1"), ("200.00 100.00 300.00 200.00", "2"),
                        ("100.00 100.00 200.00 200.00", "3"), ("100.00 100.00 200.00 200.00", "4")]

    dom = Dom(write_report_html(reported, tmp_path / "report.html").read_text(encoding="utf-8"))
    cards = dom.find("article", "card")
    assert [(c["data-finding"], c["data-score"]) for c in cards] == [
        ("1", "0.970000"), ("2", "0.850000"), ("3", "0.800000"), ("4", "0.600000")]
    assert dom.find("body")[0]["data-cards"] == "4"
    assert len(dom.find("li", "fpair")) == 2  # the two panel pairs, listed inside the figure's card

    # `score`: the figure pair is the planted reuse; its panel pairs add nothing, the false findings one each
    truth = tmp_path / "truth.csv"
    truth.write_text("doc_a,page_a,bbox_a,doc_b,page_b,bbox_b\nx.pdf,1,100 100 300 300,y.pdf,2,50 400 250 600\n")
    res = score_report(tmp_path / "report.csv", truth)
    assert (res.tp, res.fp, res.duplicates, res.recall) == (1, 3, 2, 1.0)
    # a false finding of three rows is one false positive; without the column each row counts
    truth.write_text("doc_a,page_a,bbox_a,doc_b,page_b,bbox_b\nq.pdf,1,0 0 1 1,r.pdf,1,0 0 1 1\n")
    assert (score_report(tmp_path / "report.csv", truth).fp) == 4
    rows_only = tmp_path / "rows.csv"
    with open(tmp_path / "report.csv", newline="", encoding="utf-8") as fh:
        data = list(csv.DictReader(fh))
    with open(rows_only, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(REPORT_COLUMNS))
        w.writeheader()
        w.writerows({k: r[k] for k in REPORT_COLUMNS} for r in data)
    assert score_report(rows_only, truth).fp == 6


def test_scan_outputs_carry_findings(tmp_path: Path) -> None:
    from jobs.findings import assign_findings

    write_outputs(tmp_path, assign_findings(list(pairs().values())), [], title="t", summary={})
    with open(tmp_path / "report.csv", newline="", encoding="utf-8") as fh:
        assert sorted(r["finding"] for r in csv.DictReader(fh)) == ["1", "1", "1", "2", "3", "4"]
