"""Real local HTTP(S) servers for tests: threaded, on 127.0.0.1, port 0, optional TLS.

Tests drive a real Chromium against these, so every exchange in a WARC under test went over a real socket.
A server holds a table of routes keyed by URL path (query string ignored, percent-encoding normalised):

    server.route("/a", body="<p>hi</p>")                        # static response, Content-Length set
    server.route("/big.js", body=..., gzip=True)                 # Content-Encoding: gzip
    server.route("/slow", body=..., chunked=True, delay=0.5)     # Transfer-Encoding: chunked, after 0.5 s
    server.route("/v.mp4", body=..., ranges=True)                # honours Range: bytes=... with 206
    server.route_fn("/poll", fn)                                 # fn(handler) writes the whole response
    server.redirect("/old", "/new", status=301)
    server.requests                                              # [(method, path, headers), ...]

``route_fn`` hands over the ``BaseHTTPRequestHandler``; ``fn`` must write a complete HTTP/1.1 response
(status line, headers with Content-Length or chunked framing, body) because connections are kept alive.
"""

from __future__ import annotations

import gzip as gzip_module
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit

from evicap.demo.server import ServerThread

RouteFn = Callable[[BaseHTTPRequestHandler], None]

NOT_FOUND_BODY = b"<!doctype html><title>404 Not Found</title><h1>Not Found</h1>\n"
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
UNSATISFIABLE = (-1, -1)
# Left as they are when building a URL: the reserved set and '%' (so an already-encoded path stays encoded).
_URL_SAFE = "/%:@!$&'()*+,;=?#~"


class Request(NamedTuple):
    """One request the server saw, in arrival order."""

    method: str
    path: str  # the raw request target, query string included, as sent on the wire
    headers: Message  # case-insensitive: headers["user-agent"]


@dataclass(frozen=True)
class StaticResponse:
    """A canned response; built once by ``route()`` and served to every request on that path."""

    body: bytes
    status: int
    headers: Mapping[str, str]
    content_type: str | None
    gzip: bool
    chunked: bool
    delay: float
    ranges: bool

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        if self.delay:
            time.sleep(self.delay)
        body = gzip_module.compress(self.body, mtime=0) if self.gzip else self.body
        status = self.status
        extra: dict[str, str] = {}
        if self.ranges:
            extra["Accept-Ranges"] = "bytes"
            wanted = _parse_range(handler.headers.get("Range"), len(body))
            if wanted == UNSATISFIABLE:
                status, body = 416, b""
                extra["Content-Range"] = f"bytes */{len(self.body)}"
            elif wanted is not None:
                start, end = wanted
                extra["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
                status, body = 206, body[start : end + 1]
        handler.send_response(status)
        if self.content_type:
            handler.send_header("Content-Type", self.content_type)
        if self.gzip:
            handler.send_header("Content-Encoding", "gzip")
        for name, value in {**extra, **self.headers}.items():
            handler.send_header(name, value)
        if self.chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command == "HEAD":
            return
        if self.chunked:
            write_chunks(handler, _pieces(body, 3))
        else:
            handler.wfile.write(body)


def _pieces(data: bytes, count: int) -> Iterator[bytes]:
    size = max(1, -(-len(data) // count))
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _parse_range(value: str | None, length: int) -> tuple[int, int] | None:
    """(start, end) inclusive for one ``bytes=`` range, None to send the whole body, or UNSATISFIABLE."""
    if not value:
        return None
    match = _RANGE_RE.match(value.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None  # multi-range or malformed: RFC 9110 lets a server ignore Range
    first, last = match.groups()
    if first == "":
        start, end = max(0, length - int(last)), length - 1
    else:
        start = int(first)
        end = min(int(last), length - 1) if last else length - 1
    if start >= length or start > end:
        return UNSATISFIABLE
    return start, end


def write_chunks(handler: BaseHTTPRequestHandler, chunks: Iterator[bytes] | list[bytes]) -> None:
    """Write ``chunks`` with chunked framing and the terminating zero chunk (after headers were ended)."""
    for chunk in chunks:
        if chunk:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.flush()
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()


def _route_key(path: str) -> str:
    return unquote(urlsplit(path).path) or "/"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "evicap-test"
    timeout = 30  # an idle keep-alive connection is dropped after this
    server: _Server

    def setup(self) -> None:
        # TLS handshake here, in the connection's own thread, so one stalled client cannot block accept().
        context = self.server.owner.tls_context
        if context is not None:
            self.request = context.wrap_socket(self.request, server_side=True)
        super().setup()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _dispatch(self) -> None:
        owner = self.server.owner
        owner._record(Request(self.command, self.path, self.headers))
        responder = owner._lookup(self.path)
        if isinstance(responder, StaticResponse) or responder is None:
            self._drain_body()
            (responder or _NOT_FOUND).serve(self)
        else:
            responder(self)

    def _drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _dispatch


_NOT_FOUND = StaticResponse(NOT_FOUND_BODY, 404, {}, "text/html; charset=utf-8", False, False, 0.0, False)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: LocalServer

    def handle_error(self, request: object, client_address: object) -> None:
        # Browsers drop connections mid-response and reject untrusted certificates: not a test failure.
        pass


class LocalServer(ServerThread):
    """A threaded HTTP/1.1 server on 127.0.0.1 with a route table; TLS when given an ``ssl.SSLContext``.

    ``url_host`` is the host name put into URLs; "localhost" gives a second origin on the same address.
    """

    def __init__(self, tls_context: ssl.SSLContext | None = None, *, url_host: str = "127.0.0.1") -> None:
        self.tls_context = tls_context
        self.host = url_host
        self._routes: dict[str, StaticResponse | RouteFn] = {}
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        super().__init__()

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> LocalServer:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        self._serve(server, name="test-server", poll_interval=0.05)
        return self

    # -- addresses -------------------------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.tls_context is not None else "http"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + "/"

    def url(self, path: str = "/") -> str:
        """Absolute URL for ``path``; non-ASCII and spaces are percent-encoded (UTF-8), '%' escapes kept."""
        if not path.startswith("/"):
            path = "/" + path
        return self.origin + quote(path, safe=_URL_SAFE)

    # -- routes ----------------------------------------------------------------------------------------------

    def route(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = "text/html; charset=utf-8",
        gzip: bool = False,
        chunked: bool = False,
        delay: float = 0.0,
        ranges: bool = False,
    ) -> str:
        """Serve a fixed response on ``path``; returns its absolute URL."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        response = StaticResponse(data, status, dict(headers or {}), content_type, gzip, chunked, delay, ranges)
        with self._lock:
            self._routes[_route_key(path)] = response
        return self.url(path)

    def route_fn(self, path: str, fn: RouteFn) -> str:
        """Let ``fn(handler)`` write the full response for ``path``; returns its absolute URL."""
        with self._lock:
            self._routes[_route_key(path)] = fn
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        """Answer ``path`` with a redirect to ``to`` (absolute or relative); returns the URL of ``path``."""
        location = quote(to, safe=_URL_SAFE)
        return self.route(path, b"", status=status, headers={"Location": location}, content_type=None)

    def _lookup(self, target: str) -> StaticResponse | RouteFn | None:
        with self._lock:
            return self._routes.get(_route_key(target))

    # -- request log -----------------------------------------------------------------------------------------

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[Request]:
        """A snapshot of every request seen so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[Request]:
        """Requests whose path (query ignored) is ``path``."""
        key = _route_key(path)
        return [r for r in self.requests if _route_key(r.path) == key]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()


def free_port() -> int:
    """A port nothing listens on right now (for 'connection refused' tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
