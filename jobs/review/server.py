"""The review app's HTTP server: localhost only by default, stdlib `http.server`, no framework.

Routes:
- `GET /?night=<name>`: the report page (the same cards as report.html, drawn by
  `jobs.report_html.report_html_chunks`), images by URL, verdicts POSTed;
- `GET /img/<figure id>?t=<transform>`: a panel as PNG from the store (turned by a D4 transform);
- `POST /api/verdict` (JSON: the card's record plus `verdict`, `note`, `reviewer`):
  one verdict into `STORE/verdicts.sqlite`; answered with `{"ok": true, "id": …}`;
- `GET /api/verdicts`: the latest verdict per pair key, as JSON;
- `POST /api/query?page=<n>` (the file's bytes, `application/octet-stream`, its name in
  `X-Filename`): the file matched against the store as `reusescan query` does, answered
  with the report's cards as HTML in JSON (`jobs.review.query`).

A local single-user tool needs no framework: `ThreadingHTTPServer` serves each
request in its own thread and the verdict store takes concurrent writers. Against
other web pages in the same browser (CSRF, DNS rebinding) the server only answers
requests whose Host is its own address, and only takes POSTs with a JSON body
from its own origin.
"""
from __future__ import annotations

import html
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from jobs.report import IDENTITY, PanelRef
from jobs.report_html import _asset, report_html_chunks
from jobs.review.data import ReviewTarget
from jobs.review.query import MAX_QUERY_BYTES, QueryEngine
from jobs.verdicts import Verdict, now_iso

log = logging.getLogger(__name__)

#: The app's page may load its own images (and a query's inlined ones) and POST to itself; nothing else.
APP_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
           "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
MAX_BODY = 64 * 1024


class UrlImages:
    """Card pictures as URLs of this app (`/img/<figure id>?t=<transform>`), served on demand."""

    def panel_uri(self, ref: PanelRef, transform: str = IDENTITY) -> str | None:
        return f"img/{quote(ref.figure_id, safe='')}?t={quote(transform)}"

    def page_uri(self, ref: PanelRef) -> str | None:
        return None


def night_picker(target: ReviewTarget, current: str) -> str:
    """A small GET form choosing the night to review (nightly stores only)."""
    if target.kind != "nightly":
        return ""
    options = "".join(f'<option value="{html.escape(n)}"{" selected" if n == current else ""}>{html.escape(n)}</option>'
                      for n in target.reports)
    return (f'<form method="get" action="./" class="nightform"><label>Night <select name="night">{options}</select>'
            '</label> <button type="submit">open</button></form>')


def render_page(target: ReviewTarget, night: str) -> str:
    pairs = target.pairs(night)
    title = f"reusescan review: {target.reports[night]}" if target.kind == "scan" else f"reusescan review: night {night}"
    decided = sum(1 for p in pairs if p.verdict in ("confirmed", "dismissed", "unsure"))
    summary = {"pairs": len(pairs), "store": str(target.store_dir), "decided": decided}
    return "".join(report_html_chunks(pairs, title=title, summary=summary, max_pairs=None, images=UrlImages(),
                                      verdict_mode="server", csp=APP_CSP,
                                      toolbar_extra=night_picker(target, night) + query_form()))


def query_form() -> str:
    """The "ask about one image" control: a file input (or drop a file anywhere on the page), and its script."""
    return ('<label class="qform" title="Does this figure appear anywhere in the store? Drop a file on the page '
            'or choose one.">Ask about an image <input type="file" id="qfile" '
            'accept=".png,.jpg,.jpeg,.tif,.tiff,.pdf,image/*,application/pdf"></label>'
            f"<style>{QUERY_CSS}</style><script>{_asset('query.js')}</script>")


QUERY_CSS = (".qresults{margin:12px 16px;padding:10px 12px;border:2px dashed #7a8ca8;border-radius:8px;background:#f6f8fc}"
             ".qresults h2{font-size:15px;margin:0 0 8px}body.dropping{outline:4px dashed #3b6fd8;outline-offset:-8px}")


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


class ReviewServer(ThreadingHTTPServer):
    """The HTTP server of one review target."""

    daemon_threads = True

    def __init__(self, target: ReviewTarget, host: str = "127.0.0.1", port: int = 0) -> None:
        if host in WILDCARD_HOSTS:  # requests are checked against the Host they name: bind a real address
            raise ValueError(f"--host {host} listens everywhere and no request could name it; "
                             "give the address or name reviewers will use")
        self.target = target
        self.queries = QueryEngine(target.store_dir)
        super().__init__((host, port), ReviewHandler)

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        return f"http://{host if ':' not in host else f'[{host}]'}:{port}/"

    def allowed_hosts(self) -> set[str]:
        host, port = str(self.server_address[0]), self.server_address[1]
        names = {host, "localhost", "127.0.0.1", "[::1]"} if host in ("127.0.0.1", "::1", "localhost") else {host}
        return {f"{n}:{port}" for n in names}

    def start_background(self) -> threading.Thread:
        """Serve in a daemon thread (tests, notebooks); `shutdown()` stops it."""
        thread = threading.Thread(target=self.serve_forever, name="reusescan-review", daemon=True)
        thread.start()
        return thread


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "reusescan-review"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.info("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: object) -> None:
        self._send(status, json.dumps(data).encode("utf-8"), "application/json")

    def _host_ok(self) -> bool:
        if self.headers.get("Host", "") in self.server.allowed_hosts():
            return True
        self._json(HTTPStatus.FORBIDDEN, {"error": "unexpected Host header"})
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        target = self.server.target
        try:
            if url.path in ("/", "/index.html"):
                night = (query.get("night") or [target.newest])[0]
                if night not in target.reports:
                    self._json(HTTPStatus.NOT_FOUND, {"error": f"no report {night!r}"})
                    return
                page = render_page(target, night).encode("utf-8")
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8", {"Content-Security-Policy": APP_CSP})
            elif url.path.startswith("/img/"):
                fid = unquote(url.path[len("/img/"):])
                png = target.panel_png(fid, (query.get("t") or [IDENTITY])[0])
                if png is None:
                    self._json(HTTPStatus.NOT_FOUND, {"error": "unknown figure id"})
                else:
                    self._send(HTTPStatus.OK, png, "image/png")
            elif url.path == "/api/verdicts":
                self._json(HTTPStatus.OK, target.verdicts.latest())
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        except (ValueError, OSError) as exc:  # a bad request, or a damaged stored image
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})

    def do_POST(self) -> None:  # noqa: N802
        if not self._host_ok():
            return
        route = urlsplit(self.path).path
        if route not in ("/api/verdict", "/api/query"):
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        origin = self.headers.get("Origin")
        if origin is not None and origin.rstrip("/") + "/" not in {f"http://{h}/" for h in self.server.allowed_hosts()}:
            self._json(HTTPStatus.FORBIDDEN, {"error": "cross-origin request refused"})
            return
        if route == "/api/query":
            self._query()
            return
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send application/json"})
            return
        length = self._body_length()
        if not 0 < length <= MAX_BODY:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "empty or too large body"})
            return
        try:
            data = json.loads(self.rfile.read(length))
            if not isinstance(data, dict):
                raise ValueError("a JSON object is expected")
            verdict = Verdict.from_mapping({**data, "decided_at": now_iso()}, source="review-app")
        except (ValueError, TypeError) as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        row_id = self.server.target.verdicts.add(verdict)
        log.info("verdict %s on %s by %r", verdict.verdict, verdict.pair_key[:16], verdict.reviewer)
        self._json(HTTPStatus.OK, {"ok": True, "id": row_id, "pair_key": verdict.pair_key, "verdict": verdict.verdict})

    def _body_length(self) -> int:
        """The request's Content-Length, -1 when it is not a number (0 when absent)."""
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return -1

    def _query(self) -> None:
        """`POST /api/query`: match the uploaded file against the store (see `jobs.review.query`)."""
        from index.store import StoreMismatchError
        from jobs.query import QueryError

        # Not a form post (which another site could send): a raw body of this type needs a script of this origin.
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/octet-stream":
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send the file as application/octet-stream"})
            return
        length = self._body_length()
        if not 0 < length <= MAX_QUERY_BYTES:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length > 0 else HTTPStatus.BAD_REQUEST,
                       {"error": f"send one file of at most {MAX_QUERY_BYTES >> 20} MB"})
            return
        data = self.rfile.read(length)
        page_text = (parse_qs(urlsplit(self.path).query).get("page") or [""])[0]
        try:
            page = int(page_text) if page_text else None
            if page is not None and page < 1:
                raise ValueError("page is 1-based")
            answer = self.server.queries.ask(unquote(self.headers.get("X-Filename", "query")), data, page=page)
        except StoreMismatchError as exc:
            self._json(HTTPStatus.CONFLICT, {"error": str(exc)})
            return
        except (QueryError, ValueError) as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        log.info("query %s: %d match(es)", self.headers.get("X-Filename", "query"), answer["matches"])
        self._json(HTTPStatus.OK, answer)
