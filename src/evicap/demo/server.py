"""Serve the built-in demo site on 127.0.0.1 so evicap can show a capture without touching the internet.

    with DemoServer() as server:
        url = server.url("/")          # the feed; more posts come from /api/feed?page=N as the page scrolls

The site is a fictional neighbourhood board (see build_site.py). The server behaves like a small real web
server (HTTP/1.1 keep-alive, Content-Length, gzip for text when the client accepts it, a JSON endpoint) so a
demo capture exercises the same paths as a real one. It never prints: a library user or the CLI decides what
to show.
"""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from evicap.errors import EnvironmentProblem

SITE_DIR = Path(__file__).with_name("site")
FEED_API = "/api/feed"
API_PAGE_SIZE = 3  # posts per /api/feed page: two scroll steps load all the extra posts
ORIGIN_PLACEHOLDER = b"{{ORIGIN}}"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".txt": "text/plain; charset=utf-8",
}
COMPRESSIBLE = (".html", ".css", ".js", ".json", ".svg", ".txt")
NOT_FOUND = b'<!doctype html><title>Not found</title><h1>Not found</h1><p><a href="/">Back to the feed</a></p>\n'


class _DemoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "evicap-demo"
    timeout = 30  # drop idle keep-alive connections
    server: _DemoHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the core never prints

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if path == FEED_API:
            self._send(200, self.server.owner.feed_page(parts.query), ".json")
            return
        file = self.server.owner.resolve(path)
        if file is None:
            self._send(404, NOT_FOUND, ".html")
            return
        body = file.read_bytes()
        if file.suffix in COMPRESSIBLE:
            body = body.replace(ORIGIN_PLACEHOLDER, self.server.owner.origin.encode("ascii"))
        self._send(200, body, file.suffix)

    def do_HEAD(self) -> None:
        self.do_GET()

    def _send(self, status: int, body: bytes, suffix: str) -> None:
        compress = suffix in COMPRESSIBLE
        if compress and "gzip" in self.headers.get("Accept-Encoding", "").lower():
            body = gzip.compress(body, mtime=0)
            encoding: str | None = "gzip"
        else:
            encoding = None
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPES.get(suffix, "application/octet-stream"))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if compress:
            self.send_header("Vary", "Accept-Encoding")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _DemoHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: DemoServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a browser closing a connection early is normal, not an error to report


class ServerThread:
    """An HTTP server on a background daemon thread: start (in the subclass), stop, ``with``, and its port.

    Shared by the demo server and the test suite's local servers, so both shut down the same careful way.
    """

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def _serve(self, server: ThreadingHTTPServer, *, name: str, poll_interval: float) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": poll_interval}, name=name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not running")
        return int(self._server.server_address[1])


class DemoServer(ServerThread):
    """The demo site on 127.0.0.1 (port 0: the OS picks a free one), served from a background thread."""

    def __init__(self, site_dir: Path = SITE_DIR, *, port: int = 0) -> None:
        self.site_dir = site_dir.resolve()
        self._port = port
        super().__init__()
        self._more_posts: list[dict[str, Any]] = []

    def start(self) -> DemoServer:
        """Load the site and start serving; raises EnvironmentProblem if the site is missing or the port taken."""
        try:
            self._more_posts = json.loads((self.site_dir / "data" / "more-posts.json").read_text("utf-8"))
            if not (self.site_dir / "index.html").is_file():
                raise FileNotFoundError(self.site_dir / "index.html")
        except (OSError, ValueError) as exc:
            raise EnvironmentProblem(
                f"demo site files are missing or unreadable in {self.site_dir}: {exc}",
                hint="reinstall evicap (`pip install --force-reinstall evicap`)",
            ) from exc
        try:
            server = _DemoHTTPServer(("127.0.0.1", self._port), _DemoHandler)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot start the demo server on 127.0.0.1:{self._port}: {exc}") from exc
        server.owner = self
        self._serve(server, name="evicap-demo", poll_interval=0.1)
        return self

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + "/"

    def url(self, path: str = "/") -> str:
        return self.origin + (path if path.startswith("/") else "/" + path)

    # -- what the handler serves ---------------------------------------------------------------------------

    def resolve(self, path: str) -> Path | None:
        """The file for a URL path ('/' -> index.html, '/p/101' -> p/101.html), never outside the site."""
        relative = path.lstrip("/") or "index.html"
        for candidate in (relative, relative + ".html"):
            file = (self.site_dir / candidate).resolve()
            if file.is_relative_to(self.site_dir) and file.is_file():
                return file
        return None

    def feed_page(self, query: str) -> bytes:
        """JSON for /api/feed?page=N (N from 1): the next posts after the ones rendered into the feed page."""
        try:
            page = max(1, int(parse_qs(query).get("page", ["1"])[0]))
        except ValueError:
            page = 1
        start = (page - 1) * API_PAGE_SIZE
        posts = self._more_posts[start : start + API_PAGE_SIZE]
        more = start + API_PAGE_SIZE < len(self._more_posts)
        data = {"page": page, "posts": posts, "next_page": page + 1 if more else None}
        return json.dumps(data, ensure_ascii=False).encode("utf-8")
