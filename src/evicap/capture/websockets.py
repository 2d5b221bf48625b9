"""WebSocket connections: the handshake as request/response records, every message in a record of its own type.

CDP reports a WebSocket apart from HTTP requests (``Network.webSocket*`` events). Each connection becomes, in
the WARC: a ``request`` record (the GET with its Upgrade headers), a ``response`` record (101 Switching
Protocols, no body) and a ``resource`` record with the same WARC-Target-URI (the ws:// or wss:// URL), media type
``MEDIA_TYPE``, holding one JSON object per line for every message in both directions, every frame error and the
close, in the order the browser saw them (docs/warc-records.md). Messages go to a spool file as they arrive.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from evicap import clock
from evicap.capture import httpheads
from evicap.capture.flows import Event
from evicap.capture.httpheads import Redactor
from evicap.capture.warc import WarcWriter

MEDIA_TYPE = "application/vnd.evicap.websocket-messages+jsonl"
TEXT_OPCODE = 1


@dataclass
class Connection:
    url: str
    spool: Path
    target: str | None
    wall_base: float | None = None  # wallTime - timestamp at the handshake: monotonic -> wall clock
    handshake_wall: float | None = None
    request: Event | None = None
    response: Event | None = None
    messages: int = 0
    sent: int = 0
    closed: bool = False
    _out: IO[bytes] | None = field(default=None, repr=False)

    def time(self, event: Event) -> str | None:
        stamp = event.get("timestamp")
        if self.wall_base is None or stamp is None:
            return None
        return clock.iso(clock.from_epoch(self.wall_base + float(stamp)))

    def line(self, entry: dict[str, Any]) -> None:
        if self._out is None:
            self._out = open(self.spool, "ab")  # noqa: SIM115 (closed in finish())
        self._out.write(json.dumps(entry, ensure_ascii=False).encode("utf-8") + b"\n")

    def finish(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def message_entry(direction: str, frame: Event, when: str | None) -> dict[str, Any]:
    """One message: text as text, any other opcode (binary, ping, pong, close) as base64 of its payload."""
    opcode = int(frame.get("opcode") or 0)
    payload = str(frame.get("payloadData") or "")
    entry: dict[str, Any] = {"time": when, "event": "message", "direction": direction, "opcode": opcode,
                             "masked": bool(frame.get("mask"))}
    if opcode == TEXT_OPCODE:
        entry["length"] = len(payload.encode("utf-8"))
        entry["text"] = payload
    else:
        entry["length"] = len(base64.b64decode(payload)) if payload else 0
        entry["data_base64"] = payload
    return entry


class WebSocketLog:
    """Connections of every attached session, by (session key, requestId)."""

    def __init__(self, spool: Any) -> None:
        self._spool = spool  # () -> Path: a new spool file
        self.connections: dict[tuple[str, str], Connection] = {}

    def created(self, key: str, target: str | None, event: Event) -> None:
        self.connections[(key, event["requestId"])] = Connection(str(event.get("url")), self._spool(), target)

    def _get(self, key: str, event: Event) -> Connection | None:
        return self.connections.get((key, str(event.get("requestId"))))

    def handshake_request(self, key: str, event: Event) -> None:
        conn = self._get(key, event)
        if conn is not None:
            conn.request = event.get("request") or {}
            if event.get("wallTime") is not None and event.get("timestamp") is not None:
                conn.handshake_wall = float(event["wallTime"])
                conn.wall_base = conn.handshake_wall - float(event["timestamp"])

    def handshake_response(self, key: str, event: Event) -> None:
        conn = self._get(key, event)
        if conn is not None:
            conn.response = event.get("response") or {}

    def frame(self, key: str, event: Event, direction: str) -> None:
        conn = self._get(key, event)
        if conn is not None:
            conn.line(message_entry(direction, event.get("response") or {}, conn.time(event)))
            conn.messages += 1
            conn.sent += direction == "sent"

    def error(self, key: str, event: Event) -> None:
        conn = self._get(key, event)
        if conn is not None:
            conn.line({"time": conn.time(event), "event": "error", "error": str(event.get("errorMessage"))})

    def closed(self, key: str, event: Event) -> None:
        conn = self._get(key, event)
        if conn is not None:
            conn.closed = True
            conn.line({"time": conn.time(event), "event": "closed"})

    async def write(self, warc: WarcWriter, redactor: Redactor) -> list[dict[str, Any]]:
        """Every connection into the WARC; returns the manifest's list (URL, messages, record ids, open)."""
        listed = []
        for conn in self.connections.values():
            conn.finish()
            listed.append(await _write_connection(warc, redactor, conn))
        self.connections.clear()
        return listed


async def _write_connection(warc: WarcWriter, redactor: Redactor, conn: Connection) -> dict[str, Any]:
    http_url = "http" + conn.url[2:] if conn.url.startswith("ws") else conn.url
    request_headers = httpheads.header_list((conn.request or {}).get("headers"))
    request = httpheads.request_message("GET", http_url, request_headers, "http/1.1", None, redactor)
    response = None
    if conn.response is not None:
        text = conn.response.get("headersText")
        status_line, headers = (httpheads.parse_headers_text(text) if text
                                else (None, httpheads.header_list(conn.response.get("headers"))))
        response = httpheads.response_message(int(conn.response.get("status") or 0),
                                              conn.response.get("statusText"), headers, "http/1.1", b"", 0,
                                              redactor, status_line)
    when = clock.from_epoch(conn.handshake_wall) if conn.handshake_wall is not None else None
    ids = await warc.write_exchange(conn.url, request, response, date=when)
    messages_id = None
    if conn.spool.exists():
        messages_id = await warc.write_resource(conn.url, MEDIA_TYPE, conn.spool,
                                                concurrent_to=ids.response_id or ids.request_id)
        conn.spool.unlink(missing_ok=True)
    return {
        "url": conn.url,
        "target": conn.target,
        "status": int(conn.response.get("status") or 0) if conn.response else None,
        "messages": conn.messages,
        "sent": conn.sent,
        "received": conn.messages - conn.sent,
        "closed": conn.closed,
        "request_record": ids.request_id,
        "response_record": ids.response_id,
        "messages_record": messages_id,
    }
