"""report.html in a real browser: headless Chromium (installed from Debian when missing).

Checks what only a browser can: the embedded images decode (the page's own
script counts `img.complete && naturalWidth > 0` into <body> attributes), the
number of cards, the sort/filter script (driven through the URL fragment), that
a hostile document name stays text, and that a screenshot renders. Set
`REUSESCAN_UPDATE_SCREENSHOT=1` to refresh `docs/report-screenshot.png`.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.report import write_report_html
from tests.jobs.browser import run_chromium
from tests.jobs.report_samples import MALICIOUS_DOC, SAMPLE_ERRORS, SAMPLE_SUMMARY, sample_pairs
from tests.jobs.test_report import Dom

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    pairs = sample_pairs(root)
    return write_report_html(pairs, root / "report.html", title="reusescan report — sample corpus", summary=SAMPLE_SUMMARY, errors=SAMPLE_ERRORS)


def dump_dom(chromium: str, page: Path, tmp_path: Path, fragment: str = "") -> Dom:
    proc = run_chromium(chromium, page.as_uri() + fragment, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<body" in proc.stdout, proc.stderr[-2000:]
    return Dom(proc.stdout)


def visible_cards(dom: Dom) -> list[dict[str, str | None]]:
    return [c for c in dom.find("article", "card") if "hidden" not in c]


def test_report_renders_all_cards_and_images(chromium: str, report: Path, tmp_path: Path) -> None:
    dom = dump_dom(chromium, report, tmp_path)
    body = dom.find("body")[0]
    assert body["data-cards"] == "5"
    assert len(dom.find("article", "card")) == 5 and len(visible_cards(dom)) == 5
    assert body["data-images-broken"] == "0"
    assert body["data-images-ok"] == "25"  # 5 cards x (A, B, B aligned, 2 page miniatures)
    # the hostile name is text, not markup: only our own script element exists after parsing
    assert len(dom.find("script")) == 1
    assert MALICIOUS_DOC in "".join(dom.text)
    assert "5 of 5 pairs" in "".join(dom.text)


@pytest.mark.slow
def test_filters_and_sort_run_in_the_browser(chromium: str, report: Path, tmp_path: Path) -> None:
    dom = dump_dom(chromium, report, tmp_path, "#min=0.9&kind=inter")
    assert [c["data-score"] for c in visible_cards(dom)] == ["0.970000", "0.930000", "0.910000"]
    assert "3 of 5 pairs" in "".join(dom.text)
    dom = dump_dom(chromium, report, tmp_path, "#kind=intra")
    assert [c["data-kind"] for c in visible_cards(dom)] == ["intra"]
    dom = dump_dom(chromium, report, tmp_path, "#kind=same%20figure")  # pieces of one figure (`relation`)
    assert [(c["data-kind"], c["data-relation"]) for c in visible_cards(dom)] == [("intra", "same figure")]
    assert visible_cards(dump_dom(chromium, report, tmp_path, "#kind=same%20paper")) == []
    dom = dump_dom(chromium, report, tmp_path, "#kind=channel")  # one panel a channel of the other (`channel_of`)
    assert [c["data-score"] for c in visible_cards(dom)] == ["0.810000"] and "b is the green channel of a" in "".join(dom.text)
    dom = dump_dom(chromium, report, tmp_path, "#doc=script&sort=score-asc")
    assert [c["data-score"] for c in visible_cards(dom)] == ["0.880000", "0.910000"]
    dom = dump_dom(chromium, report, tmp_path, "#sort=doc")
    # the group whose first document sorts first ("<script>…") moves to the top
    assert [c["data-group"] for c in dom.find("article", "card")][:3] == ["2", "2", "2"]
    dom = dump_dom(chromium, report, tmp_path, "#min=0.99")
    assert visible_cards(dom) == [] and "No pair matches the current filters." in "".join(dom.text)


def test_empty_report_in_the_browser(chromium: str, tmp_path: Path) -> None:
    page = write_report_html([], tmp_path / "empty.html", summary={"documents": 3, "pages": 9, "panels": 14, "errors": 0})
    dom = dump_dom(chromium, page, tmp_path)
    body = dom.find("body")[0]
    assert (body["data-cards"], body["data-images-ok"], body["data-images-broken"]) == ("0", "0", "0")
    assert "No suspicious pairs" in "".join(dom.text)


def test_screenshot(chromium: str, report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    proc = run_chromium(chromium, report.as_uri(), tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,1600", "--hide-scrollbars")
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 1600)
    arr = np.asarray(img, dtype=float)
    assert arr.std() > 30  # not a blank page
    # the dark header band is drawn at the top, and the first card's green fluorescence panel below it
    assert arr[5:40, :, :].mean() < 80
    green = (arr[..., 1] > 150) & (arr[..., 0] < 120)
    assert green[300:800].sum() > 2000
    if os.environ.get("REUSESCAN_UPDATE_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "report-screenshot.png")


def test_a_paged_report_draws_a_page_at_a_time_and_filters_every_card(chromium: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import jobs.report_html as report_html

    # the large-report layout, at the sample's 5 cards: 2 items a page
    monkeypatch.setattr(report_html, "DEFER_FROM_CARDS", 1)
    monkeypatch.setattr(report_html, "PAGE_ITEMS", 2)
    page = write_report_html(sample_pairs(tmp_path), tmp_path / "paged.html", summary=SAMPLE_SUMMARY, errors=SAMPLE_ERRORS)
    html = page.read_text()
    assert 'class="item' not in html.split('id="rs-items"')[0]  # no card is in the parsed page: they are data
    assert MALICIOUS_DOC not in html  # the hostile name is escaped inside the data too
    dom = dump_dom(chromium, page, tmp_path)
    body = dom.find("body")[0]
    items = [a for t, a in dom.tags if t in ("div", "section") and "item" in (a.get("class") or "").split()]
    assert body["data-page"] == "1" and len(items) == 2 and body["data-images-broken"] == "0"
    assert body["data-images-ok"] == str(5 * len(dom.find("article", "card")))
    assert "page 1 of 2" in "".join(dom.text) and "5 of 5 pairs" in "".join(dom.text)
    assert len(dom.find("script")) == 4  # the data blocks and the two scripts: the hostile name stayed text
    first = {c["data-rank"] for c in dom.find("article", "card")}
    dom = dump_dom(chromium, page, tmp_path, "#page=2")
    second = {c["data-rank"] for c in dom.find("article", "card")}
    assert dom.find("body")[0]["data-page"] == "2" and second and not first & second
    assert len(first | second) == 5
    # a filter counts over every card, not the page drawn; the page shows the best of them
    dom = dump_dom(chromium, page, tmp_path, "#min=0.9&kind=inter")
    assert "3 of 5 pairs" in "".join(dom.text)
    assert [c["data-score"] for c in visible_cards(dom)][:1] == ["0.970000"]
    dom = dump_dom(chromium, page, tmp_path, "#kind=same%20figure")
    assert "1 of 5 pairs" in "".join(dom.text) and [c["data-relation"] for c in visible_cards(dom)] == ["same figure"]
    assert "1 of 5 pairs" in "".join(dump_dom(chromium, page, tmp_path, "#kind=channel").text)
    dom = dump_dom(chromium, page, tmp_path, "#doc=script")
    assert MALICIOUS_DOC in "".join(dom.text)
