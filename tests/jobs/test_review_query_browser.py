"""The review app's "ask about an image" in a real headless Chromium: a dropped or chosen file, answered with cards."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from embedder.inference import Embedder
from jobs.report import write_report_csv
from jobs.review.data import resolve
from jobs.review.server import ReviewServer
from tests.jobs.cdp import Browser
from tests.jobs.query_samples import build_store, planted_copy
from training.synth import generate

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MODEL_LOAD_S = 300.0  # the app loads the model on the first query; a loaded shared machine is slow


def _png_b64(img: object) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")  # type: ignore[attr-defined]
    return base64.b64encode(buf.getvalue()).decode("ascii")


def test_a_dropped_file_shows_its_match_and_a_chosen_unrelated_one_shows_none(browser: Browser, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_store(tmp_path / "corpus", out / "store", Embedder.load())
    write_report_csv([], out / "report.csv")  # a scan folder whose scan reported nothing
    server = ReviewServer(resolve(out), host="127.0.0.1", port=0)
    server.start_background()
    try:
        browser.open(server.url)
        assert browser.evaluate("!!document.getElementById('qfile')")
        # drag and drop: a real DataTransfer holding the file, dropped on the page
        browser.evaluate(
            f"var b = atob('{_png_b64(planted_copy('paper2.png'))}'); var u = new Uint8Array(b.length);"
            "for (var i = 0; i < b.length; i++) u[i] = b.charCodeAt(i);"
            "var dt = new DataTransfer(); dt.items.add(new File([u], 'suspicious figure.png', {type: 'image/png'}));"
            "document.body.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}))")
        browser.wait_for("document.getElementById('qresults').dataset.state === 'done'", timeout=MODEL_LOAD_S)
        cards = browser.evaluate("Array.from(document.querySelectorAll('#qcards article.card')).map(c => "
                                 "[c.querySelector('.panel:nth-child(2) .doc').textContent, "
                                 "c.querySelector('.transform b').textContent])")
        assert cards == [["paper2.png", "mirrored left–right"]]
        assert "1 match(es)" in browser.evaluate("document.getElementById('qsummary').textContent")
        browser.wait_for("Array.from(document.querySelectorAll('#qcards img')).every(i => i.complete && i.naturalWidth > 0)")
        # the file input: an unrelated picture finds nothing
        unrelated = tmp_path / "unrelated.png"
        generate("fluorescence", seed=9999, size=(240, 200)).save(unrelated)
        node = browser.call("DOM.querySelector", nodeId=browser.call("DOM.getDocument")["root"]["nodeId"],
                            selector="#qfile")["nodeId"]
        browser.call("DOM.setFileInputFiles", files=[str(unrelated)], nodeId=node)
        browser.wait_for("document.getElementById('qsummary') && "
                         "document.getElementById('qsummary').textContent.indexOf('unrelated.png') === 0",
                         timeout=MODEL_LOAD_S)
        assert browser.evaluate("document.querySelectorAll('#qcards article.card').length") == 0
        assert "nothing at or above the threshold" in browser.evaluate("document.getElementById('qsummary').textContent")
    finally:
        server.shutdown()
        server.server_close()
