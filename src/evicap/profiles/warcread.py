"""Read the HTTP responses stored in a bundle's WARC, one at a time, with the record id each came from.

Identifier extraction works only from what the capture recorded (never a new request), so it needs the
server's responses with their ``WARC-Record-ID``. The WARC is gzip per record; ``gzip`` reads the members as
one stream. Bodies are read into memory only when they are text a platform could put identifiers in and
at most ``MAX_TEXT`` bytes; everything else (media) is skipped in 1 MiB reads. At capture time the writer's list
of where each record lies (bundle/warcmembers.py) lets the reader open only the response records and leave a
body that is not text after its first 64 KiB.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from evicap.bundle.warcmembers import Member, records_of
from evicap.errors import BundleError

MAX_TEXT = 16 * 1024 * 1024
_SKIP = 1024 * 1024
HEAD_READ = 64 * 1024  # a block's first read: the HTTP head, to tell whether the body is text before reading it
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


def _is_text(http: dict[str, str]) -> bool:
    return http.get("content-type", "").split(";")[0].strip().lower() in _TEXT_TYPES


def _text_response(headers: dict[str, str], stream: gzip.GzipFile) -> Response | None:
    """The response whose WARC ``headers`` were just read from ``stream``, if its body is text; its block is read
    only then. None (the block left unread) for other records."""
    length = int(headers.get("content-length", "0") or 0)
    is_response = headers.get("warc-type") == "response" and "msgtype=response" in headers.get("content-type", "")
    if not is_response or length > MAX_TEXT + 65536:
        return None
    block = stream.read(min(length, HEAD_READ))
    if b"\r\n\r\n" in block and not _is_text(_http_head(block)[1]):
        return None  # the HTTP head says it is not text: the rest of the block is left unread
    block += stream.read(length - len(block))  # text, or a head longer than the first read
    status, http, body = _http_head(block)
    content_type = http.get("content-type", "")
    if not _is_text(http):
        return None
    try:
        text = body.decode(_charset(content_type), "replace")
    except LookupError:
        text = body.decode("utf-8", "replace")
    return Response(headers.get("warc-record-id", ""), headers.get("warc-target-uri", ""), status, content_type,
                    text)


def _walked(stream: gzip.GzipFile, path: Path) -> Iterator[Response]:
    """Every record from the start, each block read or skipped (inflated either way) to reach the next."""
    while True:
        headers = _read_headers(stream, path)
        if headers is None:
            return
        before = stream.tell()
        response = _text_response(headers, stream)
        if response is not None:
            yield response
        else:
            _skip(stream, int(headers.get("content-length", "0") or 0) - (stream.tell() - before))


def text_responses(path: Path, growing: bool = False, members: Sequence[Member] | None = None
                   ) -> Iterator[Response]:
    """Each response record of ``path`` whose body is text, in the order they were written.

    ``growing``: the WARC is still being written (the capture reads it before closing it); a record cut short at
    the end is then where the reading stops, not an error. ``members``: where its records lie (the writer's list,
    bundle/warcmembers.py): only response records are opened, and a body that is not text is never inflated past
    its HTTP head's first read.
    """
    try:
        if members is None:
            with gzip.open(path, "rb") as stream:
                assert isinstance(stream, gzip.GzipFile)
                yield from _walked(stream, path)
            return
        with open(path, "rb") as raw:
            for record in records_of(raw, members, "response"):
                headers = _read_headers(record, path)
                response = _text_response(headers, record) if headers is not None else None
                if response is not None:
                    yield response
    except EOFError as error:
        if growing:
            return
        raise BundleError(f"cannot read the WARC {path}: {error}", path=str(path)) from None
    except (OSError, ValueError, zlib.error) as error:  # zlib: a damaged member's deflate stream
        raise BundleError(f"cannot read the WARC {path}: {error}", path=str(path)) from None
