"""A real local forward proxy for tests: absolute-URI requests and CONNECT tunnels, optional Basic auth.

    with ForwardProxy(username="bob", password="pw") as proxy:
        proxy.url            # http://127.0.0.1:PORT (no credentials in it)
        proxy.seen           # [(method, target, had_valid_credentials), ...]

Without valid credentials (when some are required) it answers 407 with ``Proxy-Authenticate: Basic``, as real
authenticating proxies do. Only loopback upstreams are served: anything else gets 502 (the tests never leave
the machine).
"""

from __future__ import annotations

import base64
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1", "127.0.0.2")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _authorized(self) -> bool:
        owner = self.server.owner
        if owner.username is None:
            return True
        expected = base64.b64encode(f"{owner.username}:{owner.password}".encode()).decode()
        return self.headers.get("Proxy-Authorization", "") == f"Basic {expected}"

    def _refuse(self, status: int, reason: str) -> None:
        body = f"<html><body><h1>{status} {reason}</h1><p>proxy error page</p></body></html>".encode()
        self.send_response(status, reason)
        if status == 407:
            self.send_header("Proxy-Authenticate", 'Basic realm="test proxy"')
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:
        ok = self._authorized()
        self.server.owner.seen.append(("CONNECT", self.path, ok))
        if not ok:
            return self._refuse(407, "Proxy Authentication Required")
        host, _, port = self.path.rpartition(":")
        if host.strip("[]") not in LOOPBACK:
            return self._refuse(502, "Bad Gateway")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except OSError:
            return self._refuse(502, "Bad Gateway")
        self.send_response(200, "Connection Established")
        self.end_headers()
        self._pipe(self.connection, upstream)

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        sockets = [client, upstream]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 30)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()
            self.close_connection = True

    def _forward(self) -> None:
        ok = self._authorized()
        self.server.owner.seen.append((self.command, self.path, ok))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not ok:
            return self._refuse(407, "Proxy Authentication Required")
        parts = urlsplit(self.path)
        if parts.scheme != "http" or (parts.hostname or "") not in LOOPBACK:
            return self._refuse(502, "Bad Gateway")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = [(k, v) for k, v in self.headers.items()
                   if k.lower() not in ("proxy-authorization", "proxy-connection", "connection", "keep-alive")]
        try:
            upstream = socket.create_connection((parts.hostname, parts.port or 80), timeout=10)
        except OSError:
            return self._refuse(502, "Bad Gateway")
        with upstream:
            head = f"{self.command} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
            upstream.sendall((head + "Connection: close\r\n\r\n").encode("latin-1") + body)
            response = b""
            while chunk := upstream.recv(65536):
                response += chunk
        head_bytes, _, rest = response.partition(b"\r\n\r\n")
        lines = head_bytes.split(b"\r\n")
        kept = [line for line in lines[1:] if not line.lower().startswith((b"connection:", b"keep-alive:"))]
        if not any(line.lower().startswith((b"content-length:", b"transfer-encoding:")) for line in kept):
            kept.append(b"Content-Length: %d" % len(rest))
        self.wfile.write(b"\r\n".join([lines[0], *kept]) + b"\r\n\r\n" + rest)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = _forward


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: ForwardProxy

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class ForwardProxy:
    def __init__(self, *, username: str | None = None, password: str | None = None) -> None:
        self.username = username
        self.password = password
        self.seen: list[tuple[str, str, bool]] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


class Socks5Proxy:
    """A SOCKS5 proxy (no authentication, CONNECT only) that records how each destination was named:
    ``seen`` holds ("domain", "localhost", port) when the client left the name to the proxy, ("ipv4", ...) when it
    resolved it itself."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(32)
        self.url = f"socks5://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Socks5Proxy:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            with client:
                head = client.recv(2)
                client.recv(head[1])  # offered methods
                client.sendall(b"\x05\x00")
                request = client.recv(4)
                kind = request[3]
                if kind == 3:
                    name = client.recv(client.recv(1)[0]).decode("ascii")
                    named = "domain"
                elif kind == 1:
                    name, named = socket.inet_ntoa(client.recv(4)), "ipv4"
                else:
                    name, named = socket.inet_ntop(socket.AF_INET6, client.recv(16)), "ipv6"
                port = int.from_bytes(client.recv(2), "big")
                self.seen.append((named, name, port))
                if name not in LOOPBACK:
                    client.sendall(b"\x05\x02\x00\x01" + b"\0" * 6)  # not allowed: tests stay on this machine
                    return
                upstream = socket.create_connection((name, port), timeout=10)
                client.sendall(b"\x05\x00\x00\x01" + b"\0" * 6)
                with upstream:
                    _relay(client, upstream)
        except (OSError, IndexError):
            return


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    sockets = [client, upstream]
    while True:
        readable, _, _ = select.select(sockets, [], [], 30)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            (upstream if sock is client else client).sendall(data)
