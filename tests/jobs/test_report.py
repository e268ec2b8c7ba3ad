"""report.csv / errors.csv / report.html writers, and the D4 transform helpers they rely on."""
from __future__ import annotations

import base64
import csv
import io
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.report import (
    CSV_COLUMNS,
    D4_NAMES,
    ERROR_COLUMNS,
    PanelRef,
    ReportError,
    ReportPair,
    apply_transform,
    describe_transform,
    estimate_transform,
    inverse_transform,
    pair_relation,
    parse_bbox,
    transform_name,
    write_errors_csv,
    write_report_csv,
    write_report_html,
)
from tests.jobs.report_samples import MALICIOUS_DOC, SAMPLE_ERRORS, SAMPLE_SUMMARY, png_bytes, sample_pairs


class Dom(HTMLParser):
    """Every start tag with its attributes, plus the page's text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, cls: str | None = None) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and (cls is None or cls in (a.get("class") or "").split())]


def decode_uri(uri: str) -> Image.Image:
    header, payload = uri.split(",", 1)
    assert header in ("data:image/png;base64", "data:image/jpeg;base64")
    return Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB")


def asymmetric(w: int = 48, h: int = 32, seed: int = 1) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    arr[: h // 3, : w // 4] = (255, 0, 0)  # a marker in one corner
    return Image.fromarray(arr, "RGB")


def panel(doc: str, fid: str, page: int = 1, bbox=(10, 20, 110, 95.5), img: Image.Image | None = None, **kw) -> PanelRef:
    return PanelRef(doc=doc, page=page, bbox=bbox, figure_id=fid, thumbnail=png_bytes(img or asymmetric()), **kw)


# ---------------------------------------------------------------- transforms
def numpy_d4(arr: np.ndarray, name: str) -> np.ndarray:
    index = D4_NAMES.index(name)
    flipped, k = divmod(index, 4)
    return np.rot90(arr[:, ::-1] if flipped else arr, k)


@pytest.mark.parametrize("name", D4_NAMES)
def test_apply_transform_matches_numpy_rot90_convention(name: str) -> None:
    img = asymmetric()
    got = np.asarray(apply_transform(img, name))
    assert np.array_equal(got, numpy_d4(np.asarray(img), name))


@pytest.mark.parametrize("name", D4_NAMES)
def test_inverse_transform_undoes(name: str) -> None:
    img = asymmetric()
    back = apply_transform(apply_transform(img, name), inverse_transform(name))
    assert np.array_equal(np.asarray(back), np.asarray(img))


def test_names_follow_embedder_view_order() -> None:
    # embedder.model: rot0..rot270, then the same of the horizontally flipped batch
    assert [transform_name(k, False) for k in range(4)] == ["identity", "rot90", "rot180", "rot270"]
    assert [transform_name(k, True) for k in range(4)] == ["flip_h", "transpose", "flip_v", "transverse"]
    assert transform_name(-1, False) == "rot270"


@pytest.mark.parametrize("name", D4_NAMES)
def test_estimate_transform_recovers_the_map_from_b_onto_a(name: str) -> None:
    a = asymmetric(64, 40, seed=3)
    b = apply_transform(a, inverse_transform(name))  # so that name maps b onto a
    got, corr = estimate_transform(a, b)
    assert got == name
    assert corr > 0.99


def test_phrase_describes_b_relative_to_a() -> None:
    a = asymmetric()
    b_clockwise = a.transpose(Image.Transpose.ROTATE_270)  # PIL: ROTATE_270 = 90° clockwise
    name, _ = estimate_transform(a, b_clockwise)
    assert name == "rot90"
    assert describe_transform(name) == "rotated 90° clockwise"
    assert describe_transform("transpose").startswith("rotated 90° and mirrored")
    assert describe_transform(None) == "not estimated"


# ---------------------------------------------------------------- dataclasses
def test_pair_kind_is_derived_and_checked() -> None:
    a, b, c = panel("x/one.pdf", "1"), panel("x/two.pdf", "2"), panel("x/one.pdf", "3", page=4)
    assert ReportPair(0.9, a, b).kind == "inter"
    assert ReportPair(0.9, a, c).kind == "intra"
    with pytest.raises(ValueError, match="does not match"):
        ReportPair(0.9, a, c, kind="inter")


def test_pair_relation_tells_pieces_of_one_figure_from_one_paper_and_two_papers() -> None:
    a, b, c = panel("x/one.pdf", "1"), panel("x/two.pdf", "2"), panel("x/one.pdf", "3", page=4)
    assert (ReportPair(0.9, a, b).relation, ReportPair(0.9, a, c).relation) == ("other paper", "same paper")
    assert pair_relation(a, c, "fig-7", "fig-7") == "same figure"  # two panels split from one figure
    assert pair_relation(a, c, "fig-7", "") == pair_relation(a, c, "", "") == "same paper"
    assert pair_relation(a, panel("x/one.pdf", "fig-7"), "fig-7", "") == "same figure"  # a panel and its own figure
    assert pair_relation(a, b, "fig-7", "fig-7") == "other paper"  # parent ids never join two documents
    assert ReportPair(0.9, a, c, relation="same figure").relation == "same figure"
    with pytest.raises(ValueError, match="relation"):
        ReportPair(0.9, a, b, relation="same figure")
    with pytest.raises(ValueError, match="relation"):
        ReportPair(0.9, a, c, relation="cousin")


@pytest.mark.parametrize(
    "kwargs, message",
    [({"score": 1.2}, "score"), ({"score": -0.1}, "score"), ({"score": 0.5, "transform": "rot45"}, "unknown transform")],
)
def test_pair_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReportPair(a=panel("a.pdf", "1"), b=panel("b.pdf", "2"), **kwargs)


def test_panel_rejects_zero_page_and_bad_bbox() -> None:
    with pytest.raises(ValueError, match="1-based"):
        panel("a.pdf", "1", page=0)
    with pytest.raises(ValueError, match="4 numbers"):
        panel("a.pdf", "1", bbox=(1, 2, 3))


# ---------------------------------------------------------------- CSV
def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_report_csv_contract(tmp_path: Path) -> None:
    odd = 'dir,with comma/"quoted" name.pdf'
    pairs = [
        ReportPair(0.81, panel("b.pdf", "b1", page=3), panel("b.pdf", "b2", page=5, bbox=(0, 0, 612, 792)), group_id=2, transform="flip_h"),
        ReportPair(0.99, panel("a.pdf", "a1", bbox=(1.234, 5.678, 100.0, 200.5)), panel(odd, "o1", page=2), group_id=1, transform="rot90"),
        ReportPair(0.9, panel("a.pdf", "a2"), panel("c.pdf", "c1"), group_id=3, transform=None),
    ]
    out = write_report_csv(pairs, tmp_path / "out" / "report.csv")
    header, rows = read_csv(out)
    assert header == list(CSV_COLUMNS)
    assert header[:8] == ["score", "doc_a", "page_a", "bbox_a", "doc_b", "page_b", "bbox_b", "kind"]
    assert [float(r["score"]) for r in rows] == [0.99, 0.9, 0.81]
    top = rows[0]
    assert top["doc_b"] == odd and top["page_a"] == "1" and top["page_b"] == "2"
    assert top["bbox_a"] == "1.23 5.68 100.00 200.50"
    assert parse_bbox(top["bbox_a"]) == pytest.approx((1.234, 5.678, 100.0, 200.5), abs=0.006)
    assert (top["kind"], top["group"], top["transform"], top["figure_id_a"], top["figure_id_b"]) == ("inter", "1", "rot90", "a1", "o1")
    assert rows[1]["transform"] == ""
    assert rows[2]["kind"] == "intra" and rows[2]["bbox_b"] == "0.00 0.00 612.00 792.00"
    assert [r["relation"] for r in rows] == ["other paper", "other paper", "same paper"]
    assert [r["channel_of"] for r in rows] == ["", "", ""]
    assert sorted(os.listdir(tmp_path / "out")) == ["report.csv"]  # no temporary left behind


def test_empty_report_csv_has_header_and_replaces_old_file(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_text("stale\n")
    write_report_csv([], path)
    assert path.read_text(encoding="utf-8") == ",".join(CSV_COLUMNS) + "\n"
    assert sorted(os.listdir(tmp_path)) == ["report.csv"]


def test_errors_csv_accepts_dataclasses_dicts_and_tuples(tmp_path: Path) -> None:
    path = write_errors_csv(
        [
            ReportError("bad.pdf", "extract", "FileDataError: broken xref"),
            {"input": "x.tif", "stage": "decode", "error": "truncated, file"},
            ("weird\nname.png", "embed", 'said "no"'),
        ],
        tmp_path / "errors.csv",
    )
    header, rows = read_csv(path)
    assert header == list(ERROR_COLUMNS)
    assert [(r["input"], r["stage"], r["error"]) for r in rows] == [
        ("bad.pdf", "extract", "FileDataError: broken xref"),
        ("x.tif", "decode", "truncated, file"),
        ("weird\nname.png", "embed", 'said "no"'),
    ]
    write_errors_csv([], path)
    assert path.read_text() == "input,stage,error\n"


# ---------------------------------------------------------------- HTML (structure; the browser test renders it)
@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[ReportPair], str]:
    root = tmp_path_factory.mktemp("sample")
    pairs = sample_pairs(root)
    out = write_report_html(pairs, root / "report.html", title="Sample <report>", summary=SAMPLE_SUMMARY, errors=SAMPLE_ERRORS)
    return pairs, out.read_text(encoding="utf-8")


def test_html_is_self_contained_and_escaped(sample: tuple[list[ReportPair], str]) -> None:
    pairs, text = sample
    dom = Dom(text)
    assert len(dom.find("article", "card")) == len(pairs) == 5
    imgs = dom.find("img")
    assert len(imgs) == 5 * 5  # A, B, B aligned, two page miniatures per card
    assert all((i["src"] or "").startswith("data:image/") for i in imgs)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "<link" not in text and "@import" not in text and "url(http" not in text
    assert len(dom.find("script")) == 1  # ours only: the document name did not inject one
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.pdf" in text
    page_text = "".join(dom.text)
    assert MALICIOUS_DOC in page_text  # shown as text
    assert '"quoted" & <b>not bold</b>' in page_text and "<b>not bold</b>" not in text
    assert dom.find("title") and "Sample <report>" in page_text


def test_html_groups_summary_and_cards(sample: tuple[list[ReportPair], str]) -> None:
    _, text = sample
    dom = Dom(text)
    groups = dom.find("section", "group")
    assert len(groups) == 1  # only group 2 has more than two panels
    cards = dom.find("article", "card")
    assert [c["data-group"] for c in cards] == ["1", "2", "2", "2", "3"]
    assert [float(c["data-score"] or 0) for c in cards] == [0.97, 0.93, 0.91, 0.88, 0.81]
    assert [c["data-kind"] for c in cards] == ["inter"] * 4 + ["intra"]
    page_text = " ".join(dom.text)
    for words in ("rotated 90° clockwise", "mirrored top–bottom", "mirrored left–right", "same orientation"):
        assert words in page_text
    for tile in ("documents", "pages", "panels", "pairs", "errors", "Time per stage", "12.9 s", "18.5 s", "reusescan-default"):
        assert tile in page_text
    assert "FileDataError: cannot open broken document" in page_text
    body = dom.find("body")[0]
    assert body["data-cards"] == "5"


def test_aligned_thumbnail_lines_up_with_a(sample: tuple[list[ReportPair], str]) -> None:
    pairs, text = sample
    dom = Dom(text)
    a_imgs, b_imgs, al_imgs = dom.find("img", "ithumb")[0::2], dom.find("img", "ithumb")[1::2], dom.find("img", "ialigned")
    for pair, a_tag, b_tag, al_tag in zip(pairs, a_imgs, b_imgs, al_imgs):
        a, b, al = (np.asarray(decode_uri(t["src"] or ""), dtype=float) for t in (a_tag, b_tag, al_tag))
        assert al.shape == a.shape, pair.transform
        assert np.abs(al - a).mean() < 3.0
        if pair.transform in ("rot90", "flip_v", "flip_h"):  # the raw B really differs from A
            assert b.shape != a.shape or np.abs(b - a).mean() > 10.0


def test_page_miniature_highlight_position(tmp_path: Path) -> None:
    page_png = png_bytes(Image.new("RGB", (60, 80), "white"))
    a = panel("a.pdf", "1", bbox=(61.2, 84.2, 306.0, 421.0), page_image=page_png, page_size=(612, 842))
    b = panel("b.pdf", "2", bbox=(0, 0, 612, 842), page_size=(612, 842))  # no page image: a drawn blank page
    text = write_report_html([ReportPair(0.95, a, b)], tmp_path / "r.html", summary={}).read_text()
    boxes = Dom(text).find("div", "hl")
    assert boxes[0]["style"] == "left:10.00%;top:10.00%;width:40.00%;height:40.00%"
    assert boxes[1]["style"] == "left:0.00%;top:0.00%;width:100.00%;height:100.00%"
    assert len(Dom(text).find("div", "blank-page")) == 1


def test_undecodable_thumbnail_is_a_placeholder_not_a_broken_image(tmp_path: Path) -> None:
    bad = PanelRef("a.pdf", 1, (0, 0, 10, 10), "1", thumbnail=b"not an image")
    text = write_report_html([ReportPair(0.9, bad, panel("b.pdf", "2"))], tmp_path / "r.html").read_text()
    dom = Dom(text)
    assert len(dom.find("img", "ithumb")) == 1  # only B's
    assert "thumbnail unavailable" in text


def test_empty_report_html(tmp_path: Path) -> None:
    text = write_report_html([], tmp_path / "r.html", summary={"documents": 12, "pages": 40, "panels": 0, "errors": 0}).read_text()
    dom = Dom(text)
    assert dom.find("article") == [] and dom.find("body")[0]["data-cards"] == "0"
    assert "No suspicious pairs" in "".join(dom.text)
    assert dom.find("div", "empty")[0].get("style") is None  # visible
    assert sorted(os.listdir(tmp_path)) == ["r.html"]


def test_html_caps_cards_and_says_so(tmp_path: Path) -> None:
    pairs = [ReportPair(0.5 + i / 20, panel(f"d{i}.pdf", f"a{i}"), panel(f"e{i}.pdf", f"b{i}"), group_id=i) for i in range(7)]
    text = write_report_html(pairs, tmp_path / "r.html", max_pairs=3).read_text()
    dom = Dom(text)
    assert [c["data-score"] for c in dom.find("article", "card")] == ["0.800000", "0.750000", "0.700000"]
    body = dom.find("body")[0]
    assert (body["data-cards"], body["data-pairs-total"]) == ("3", "7")
    assert "Showing the 3 highest-scoring of 7 pairs; 4 lower-scoring pairs are listed only in report.csv." in "".join(dom.text)
    uncapped = Dom(write_report_html(pairs, tmp_path / "all.html", max_pairs=None).read_text())
    assert len(uncapped.find("article", "card")) == 7 and not uncapped.find("p", "truncated")


def test_a_paged_report_is_written_in_chunks_none_holding_the_pictures_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jobs import report, report_html

    monkeypatch.setattr(report_html, "DEFER_FROM_CARDS", 2)
    pairs = [ReportPair(0.5 + i / 20, panel(f"d{i}.pdf", f"a{i}", img=asymmetric(seed=i)),
                        panel(f"e{i}.pdf", f"b{i}", img=asymmetric(seed=100 + i)), group_id=i) for i in range(6)]
    chunks = list(report_html.report_html_chunks(pairs))
    written: list[object] = []
    write = report.atomic_write_bytes
    monkeypatch.setattr(report, "atomic_write_bytes", lambda path, data: write(path, written.append(data) or data))
    whole = write_report_html(pairs, tmp_path / "r.html").read_text()
    assert not isinstance(written[0], (bytes, str))  # chunks, handed on as they are made
    pictures = re.findall(r'"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+"', whole)
    assert len(pictures) == 12  # each panel's picture, once
    assert re.sub(r"generated [^<]*UTC", "", "".join(chunks)) == re.sub(r"generated [^<]*UTC", "", whole)
    assert max(chunk.count("data:image/") for chunk in chunks) == 1


def test_the_page_says_whether_an_input_was_unreadable_or_one_image_would_not_decode(tmp_path: Path) -> None:
    errors = [ReportError("a.pdf", "open", "FileDataError: not a PDF"),
              ReportError("b.pdf", "decode", "image xref 12: broken stream"),
              ReportError("c.pdf", "decode", "image xref 3: broken stream"),
              ReportError("d.pdf", "timeout", "ran out of time after 4 pages")]
    text = write_report_html([], tmp_path / "r.html", errors=errors).read_text()
    assert "1 inputs that could not be read" in text
    assert "2 images that could not be decoded" in text
    assert "1 documents read only in part" in text
    assert "documents read with warnings" not in text  # no such line, so no such table
