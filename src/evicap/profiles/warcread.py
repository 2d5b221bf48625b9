"""Read the HTTP responses stored in a bundle's WARC, one at a time, with the record id each came from.

Identifier extraction works only from what the capture recorded (never a new request), so it needs the
server's responses with their ``WARC-Record-ID``. The WARC is gzip per record; ``gzip`` reads the members as
one stream. Bodies are read into memory only when they are text a platform could put identifiers in and
at most ``MAX_TEXT`` bytes; everything else (media) is skipped in 1 MiB reads.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from evicap.errors import BundleError

MAX_TEXT = 16 * 1024 * 1024
_SKIP = 1024 * 1024
_TEXT_TYPES = ("text/html", "application/json", "text/json", "application/ld+json", "text/plain",
               "application/xhtml+xml", "text/javascript", "application/javascript", "application/x-javascript")


@dataclass(frozen=True)
class Response:
    """One recorded HTTP response whose body is text."""

    record_id: str
    """The WARC-Record-ID of the response record, e.g. ``<urn:uuid:...>``."""
    uri: str
    """WARC-Target-URI: the URL the browser fetched."""
    status: int
    content_type: str
    text: str


def _read_headers(stream: gzip.GzipFile, path: Path) -> dict[str, str] | None:
    line = stream.readline(65536)
    while line in (b"\r\n", b"\n"):
        line = stream.readline(65536)
    if not line:
        return None
    if not line.startswith(b"WARC/"):
        raise BundleError(f"{path}: not a WARC record at offset {stream.tell()}", path=str(path))
    headers: dict[str, str] = {}
    while True:
        line = stream.readline(65536)
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode("utf-8", "replace").partition(":")
        headers[name.strip().lower()] = value.strip()


def _skip(stream: gzip.GzipFile, length: int) -> None:
    while length > 0:
        piece = stream.read(min(_SKIP, length))
        if not piece:
            return
        length -= len(piece)


def _http_head(block: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = block.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"


def text_responses(path: Path, growing: bool = False) -> Iterator[Response]:
    """Each response record of ``path`` whose body is text, in the order they were written.

    ``growing``: the WARC is still being written (the capture reads it before closing it); a record cut short at
    the end is then where the reading stops, not an error.
    """
    try:
        with gzip.open(path, "rb") as stream:
            assert isinstance(stream, gzip.GzipFile)
            while True:
                headers = _read_headers(stream, path)
                if headers is None:
                    return
                length = int(headers.get("content-length", "0") or 0)
                is_response = headers.get("warc-type") == "response" and "msgtype=response" in headers.get(
                    "content-type", ""
                )
                if not is_response or length > MAX_TEXT + 65536:
                    _skip(stream, length)
                    continue
                block = stream.read(length)
                status, http, body = _http_head(block)
                content_type = http.get("content-type", "")
                if content_type.split(";")[0].strip().lower() not in _TEXT_TYPES:
                    continue
                try:
                    text = body.decode(_charset(content_type), "replace")
                except LookupError:
                    text = body.decode("utf-8", "replace")
                yield Response(headers.get("warc-record-id", ""), headers.get("warc-target-uri", ""), status,
                               content_type, text)
    except EOFError as error:
        if growing:
            return
        raise BundleError(f"cannot read the WARC {path}: {error}", path=str(path)) from None
    except (OSError, ValueError) as error:
        raise BundleError(f"cannot read the WARC {path}: {error}", path=str(path)) from None
