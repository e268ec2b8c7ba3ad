"""The review app over HTTP (`jobs.review`), and `reusescan review --import`, on a hand-made scan folder."""
from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.review.data import ReviewError, resolve
from jobs.review.server import ReviewServer
from jobs.verdicts import CONFIRMED, DISMISSED, VerdictStore
from tests.jobs.review_samples import make_scan_dir


@pytest.fixture()
def scan_dir(tmp_path: Path) -> Path:
    make_scan_dir(tmp_path / "out")
    return tmp_path / "out"


@pytest.fixture()
def server(scan_dir: Path) -> Iterator[ReviewServer]:
    srv = ReviewServer(resolve(scan_dir), host="127.0.0.1", port=0)
    srv.start_background()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def record(server: ReviewServer) -> dict[str, object]:
    """The first card's record, as the page carries it (what the script POSTs)."""
    import html as html_mod
    import re

    _, body, _ = request(server.url)
    first = re.search(r'data-record="([^"]+)"', body.decode("utf-8"))
    assert first
    return json.loads(html_mod.unescape(first.group(1)))


def test_page_lists_the_cards_with_image_urls_and_a_strict_policy(server: ReviewServer) -> None:
    status, body, headers = request(server.url)
    page = body.decode("utf-8")
    assert status == 200 and page.count('<article class="card"') == 3
    assert 'data-verdict-mode="server"' in page and "data:image" not in page
    assert "img/fig-A90?t=rot90" in page  # B aligned to A, drawn by the server
    assert "connect-src 'self'" in headers["Content-Security-Policy"]
    status, png, headers = request(server.url + "img/fig-A90?t=rot90")
    assert status == 200 and headers["Content-Type"] == "image/png" and png.startswith(b"\x89PNG")
    assert request(server.url + "img/nope")[0] == 404
    assert request(server.url + "img/fig-A?t=sideways")[0] == 400


def test_post_writes_the_verdict_and_the_page_shows_it(server: ReviewServer, scan_dir: Path) -> None:
    rec = record(server)
    body = json.dumps({**rec, "verdict": CONFIRMED, "note": "same field", "reviewer": "ann"}).encode()
    status, answer, _ = request(server.url + "api/verdict", body, {"Content-Type": "application/json"})
    assert status == 200, answer
    latest = VerdictStore.for_store(scan_dir / "store").latest()
    (row,) = latest.values()
    assert (row["verdict"], row["note"], row["reviewer"], row["source"]) == (CONFIRMED, "same field", "ann", "review-app")
    assert row["doc_a"] == "p1.pdf" and row["figure_id_b"] == "fig-A90"
    assert 'data-verdict="confirmed"' in request(server.url)[1].decode("utf-8")
    assert json.loads(request(server.url + "api/verdicts")[1]).keys() == latest.keys()


def test_post_is_refused_across_origins_hosts_and_content_types(server: ReviewServer) -> None:
    body = json.dumps({**record(server), "verdict": DISMISSED}).encode()
    url = server.url + "api/verdict"
    assert request(url, body, {"Content-Type": "text/plain"})[0] == 415
    assert request(url, body, {"Content-Type": "application/json", "Origin": "http://evil.example"})[0] == 403
    assert request(url, body, {"Content-Type": "application/json", "Host": "evil.example"})[0] == 403
    assert request(url, b'{"verdict": "maybe"}', {"Content-Type": "application/json"})[0] == 400


def test_nightly_store_picks_the_newest_night(tmp_path: Path, scan_dir: Path) -> None:
    store = scan_dir / "store"
    for night in ("2026-11-01", "2026-11-02"):
        (store / "reports" / night).mkdir(parents=True)
        shutil.copy(scan_dir / "report.csv", store / "reports" / night / "report.csv")
    target = resolve(store)
    assert target.kind == "nightly" and list(target.reports) == ["2026-11-02", "2026-11-01"]
    srv = ReviewServer(target, port=0)
    srv.start_background()
    try:
        page = request(srv.url + "?night=2026-11-01")[1].decode("utf-8")
        assert '<option value="2026-11-01" selected>' in page and "night 2026-11-01" in page
        assert request(srv.url + "?night=1999-01-01")[0] == 404
    finally:
        srv.shutdown()
        srv.server_close()
    with pytest.raises(ReviewError):
        resolve(tmp_path / "out" / "store" / "figures")


def test_cli_import_and_usage_errors(scan_dir: Path, tmp_path: Path) -> None:
    rec = record_from_csv(scan_dir)
    path = tmp_path / "verdicts.json"
    path.write_text(json.dumps({"format": "reusescan-verdicts/1", "verdicts": [{**rec, "verdict": DISMISSED}]}))
    result = CliRunner().invoke(main, ["review", str(scan_dir), "--import", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported 1 verdict(s)" in result.output
    assert [r["verdict"] for r in VerdictStore.for_store(scan_dir / "store").latest().values()] == [DISMISSED]
    assert CliRunner().invoke(main, ["review", str(tmp_path / "out" / "store" / "figures")]).exit_code == 2
    path.write_text("[1, 2]")
    assert CliRunner().invoke(main, ["review", str(scan_dir), "--import", str(path)]).exit_code == 2


def record_from_csv(scan_dir: Path) -> dict[str, str]:
    target = resolve(scan_dir)
    pair = target.pairs("scan")[0]
    return {"hash_a": pair.a.image_sha256, "hash_b": pair.b.image_sha256, "doc_a": pair.a.doc, "doc_b": pair.b.doc}


def test_a_wildcard_address_is_refused_with_a_reason(scan_dir: Path) -> None:
    with pytest.raises(ValueError, match="listens everywhere"):
        ReviewServer(resolve(scan_dir), host="0.0.0.0", port=0)
    result = CliRunner().invoke(main, ["review", str(scan_dir), "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "listens everywhere" in result.output


def test_a_bad_content_length_is_a_bad_request(server: ReviewServer) -> None:
    import http.client

    host, port = str(server.server_address[0]), int(server.server_address[1])
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest("POST", "/api/verdict")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", "lots")
    conn.endheaders()
    assert conn.getresponse().status == 400
    conn.close()
