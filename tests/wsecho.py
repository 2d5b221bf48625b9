"""A real local WebSocket echo server (RFC 6455) for tests: 127.0.0.1, port 0, one thread per connection.

Echoes every text and binary message back as it came, answers ping with pong and close with close, and
remembers what it received (``received``: (opcode, payload) in arrival order) so a test can check the WARC
against the server's own view.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import socketserver
import struct
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _frame(opcode: int, payload: bytes) -> bytes:
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        head += bytes([len(payload)])
    elif len(payload) < 65536:
        head += bytes([126]) + struct.pack("!H", len(payload))
    else:
        head += bytes([127]) + struct.pack("!Q", len(payload))
    return head + payload


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                return
            head += chunk
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest()).decode()
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        try:
            while True:
                b1, b2 = _read_exact(sock, 2)
                opcode, length = b1 & 0x0F, b2 & 0x7F
                if length == 126:
                    length = struct.unpack("!H", _read_exact(sock, 2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", _read_exact(sock, 8))[0]
                mask = _read_exact(sock, 4) if b2 & 0x80 else b"\0\0\0\0"
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(_read_exact(sock, length)))
                with self.server.lock:
                    self.server.received.append((opcode, payload))
                if opcode in (1, 2):
                    sock.sendall(_frame(opcode, payload))
                elif opcode == 9:
                    sock.sendall(_frame(10, payload))
                elif opcode == 8:
                    sock.sendall(_frame(8, payload[:2]))
                    return
        except (ConnectionError, OSError):
            return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[int, bytes]] = []
        self.lock = threading.Lock()


class EchoServer:
    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.server_address[1]}/echo"

    @property
    def received(self) -> list[tuple[int, bytes]]:
        with self._server.lock:
            return list(self._server.received)

    def __enter__(self) -> EchoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
