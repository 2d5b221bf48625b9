"""A streamed WARC reader that checks what a court would ask of the archive.

Written here rather than on top of warcio's ArchiveIterator because verification needs what a replay library
papers over: a gzip member cut short must be an error (not a quiet end of file), a record shorter than its
Content-Length must be named by offset, nothing may be printed, and inflation must be bounded so a hostile
"gzip bomb" cannot exhaust memory. It reads from any stream with ``read(n)``, so the same bytes can be hashed
for the artifact check as they are parsed (see artifacts.HashingReader): the WARC is read once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from evicap.verify.urls import url_key

RAW_CHUNK = 4 * 1024 * 1024
_FEED = 256 * 1024  # raw bytes handed to zlib at a time
_OUT = 1024 * 1024  # most decompressed bytes produced per call: bounds memory against gzip bombs
_MAX_HEADER = 1024 * 1024
_MAX_HTTP_HEAD = 1024 * 1024
_MAX_PROBLEMS = 20
_ALGORITHMS = {"sha1", "sha224", "sha256", "sha384", "sha512", "md5"}
_HTTP_TYPES = {"request", "response"}


class Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Truncated(Exception):
    pass


class _Inflater:
    """Decompressed bytes of a gzip-per-record (or plain) WARC, member after member.

    Work is linear in the input: every raw byte is handed to zlib once, except what a call gives back because its
    output was capped (the next call's input, at most ``_FEED`` bytes); what follows a member's end starts the next
    member. Each call yields at most ``_OUT`` bytes, so a member that inflates a thousandfold costs one output cap of
    memory. ``member_offset`` is the file offset of the gzip member that produced the last chunk.
    """

    def __init__(self, raw: Reader) -> None:
        self._raw = raw
        self._buffer = memoryview(raw.read(RAW_CHUNK))
        self._raw_pos = 0  # file offset just past the last raw piece taken
        self.gzip = bytes(self._buffer[:2]) == b"\x1f\x8b"
        self._zlib: Any = None
        self._pending = b""  # input given back by zlib (always the end of what was taken): it must see it again
        self._capped = False  # the last call filled its output cap: zlib may hold more output for no new input
        self.member_offset = 0
        self.member_out = 0  # decompressed bytes of the current member before the last chunk
        self._member_total = 0
        self.problem: str | None = None

    def _take(self) -> bytes:
        """Next raw piece (at most _FEED bytes), b"" at end of file."""
        if not self._buffer:
            self._buffer = memoryview(self._raw.read(RAW_CHUNK))
        piece, self._buffer = self._buffer[:_FEED], self._buffer[_FEED:]
        self._raw_pos += len(piece)
        return bytes(piece)

    def chunk(self) -> bytes:
        """Next piece of decompressed data, or b"" at the end (``problem`` says if the end was premature)."""
        if not self.gzip:
            self.member_out = self._raw_pos
            return self._take()
        try:
            while True:
                if self._zlib is None:  # between members
                    data = self._pending or self._take()
                    if not data:
                        return b""
                    self._zlib = zlib.decompressobj(31)
                    self.member_offset = self._raw_pos - len(data)
                    self._member_total = 0
                elif self._pending or self._capped:
                    data = self._pending
                else:
                    data = self._take()
                    if not data:
                        self.problem = f"gzip member at file offset {self.member_offset} cut short (file truncated)"
                        return b""
                out = self._zlib.decompress(data, _OUT)
                if self._zlib.eof:
                    # After the end, unconsumed_tail may still repeat the input that followed: use unused_data only.
                    self._pending = self._zlib.unused_data
                    self._zlib = None
                    self._capped = False
                else:
                    self._pending = self._zlib.unconsumed_tail
                    self._capped = len(out) >= _OUT
                    if not out and data and len(self._pending) == len(data):
                        raise zlib.error("no progress")
                self.member_out = self._member_total
                self._member_total += len(out)
                if out:
                    return out
        except zlib.error as error:
            self.problem = f"gzip member at file offset {self.member_offset}: corrupt data ({error})"
            return b""


class _At:
    """Where a record starts, formatted only when a problem names it (millions of records must not cost a string
    each): the file offset of the gzip member it starts (what ``warcio index`` prints), else its offset in the
    decompressed stream."""

    __slots__ = ("gzip", "inside", "member", "offset")

    def __init__(self, gzip: bool, member: int, inside: int, offset: int) -> None:
        self.gzip, self.member, self.inside, self.offset = gzip, member, inside, offset

    def __str__(self) -> str:
        if not self.gzip:
            return f"offset {self.offset}"
        if self.inside == 0:
            return f"offset {self.member}"
        return (f"offset {self.member}+{self.inside} "
                f"(byte {self.inside} of the gzip member at file offset {self.member})")


class _Stream:
    """Buffered block reads over the inflater, tracking the decompressed offset."""

    def __init__(self, inflater: _Inflater) -> None:
        self._inflater = inflater
        self._buf = b""
        self._pos = 0
        self._member = (0, 0)  # (gzip member's file offset, its decompressed bytes before self._buf[0])
        self._joined = (0, 0, 0)  # (index in self._buf where the last chunk starts, its member, bytes before it)
        self.offset = 0

    def _next(self) -> bool:
        """Append the next chunk to what is left of the buffer; False at the end of the data."""
        more = self._inflater.chunk()
        if not more:
            return False
        chunk_member = (self._inflater.member_offset, self._inflater.member_out)
        if self._pos < len(self._buf):  # a delimiter may straddle the chunks: join them (once per chunk, linear)
            self._member = self._locate(self._pos)
            rest = len(self._buf) - self._pos
            self._buf = self._buf[self._pos :] + more
            self._joined = (rest, *chunk_member)
        else:
            self._buf, self._member, self._joined = more, chunk_member, (0, *chunk_member)
        self._pos = 0
        return True

    def _locate(self, index: int) -> tuple[int, int]:
        """(gzip member, decompressed bytes of that member before it) of self._buf[index]."""
        start, member, before = self._joined
        if index >= start:
            return member, before + index - start
        return self._member[0], self._member[1] + index

    def _take(self, size: int) -> bytes:
        piece = self._buf[self._pos : self._pos + size]
        self._pos += len(piece)
        self.offset += len(piece)
        return piece

    def where(self) -> _At:
        if self._pos >= len(self._buf):
            self._next()
        member, inside = self._locate(self._pos)
        return _At(self._inflater.gzip, member, inside, self.offset)

    def read_until(self, delimiter: bytes, limit: int) -> bytes:
        """Bytes up to and including ``delimiter``; without it at the end of the data or after ``limit`` bytes."""
        while True:
            end = self._buf.find(delimiter, self._pos, self._pos + limit)
            if end >= 0:
                return self._take(end + len(delimiter) - self._pos)
            if len(self._buf) - self._pos >= limit or not self._next():
                return self._take(limit)

    def read(self, size: int) -> bytes:
        """At most ``size`` bytes (fewer at a chunk's end), b"" at the end of the data."""
        if self._pos >= len(self._buf) and not self._next():
            return b""
        return self._take(size)

    def read_exact(self, size: int) -> bytes:
        parts = []
        while size and (piece := self.read(size)):
            parts.append(piece)
            size -= len(piece)
        return b"".join(parts)


@dataclass
class WarcScan:
    """What one pass over a WARC found."""

    records: int = 0
    digests_checked: int = 0
    """Record digests recomputed from the bytes and compared."""
    digests_listed: int = 0
    """Record digest headers present (recomputed or not)."""
    problems: list[str] = field(default_factory=list)
    more_problems: int = 0
    found_uris: set[str] = field(default_factory=set)
    """Wanted URIs seen: record ids (urn:uuid:...), resource/metadata target URIs, response target URIs. Targets are
    compared by urls.url_key: ``wanted`` holds keys, so do these sets."""
    responses: set[str] = field(default_factory=set)

    def problem(self, text: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.more_problems += 1


def _parse_digest(label: str) -> tuple[Any, bytes] | None:
    algo, sep, value = label.strip().partition(":")
    algo = algo.lower().replace("-", "")
    if not sep or algo not in _ALGORITHMS:
        return None
    hasher = hashlib.new(algo)
    value = value.strip()
    try:
        if len(value) == hasher.digest_size * 2:
            expected = bytes.fromhex(value)
        elif len(value) == (hasher.digest_size * 8 + 4) // 5 or value.endswith("="):
            expected = base64.b32decode(value.upper() + "=" * (-len(value) % 8))
            if len(expected) != hasher.digest_size:
                expected = base64.b64decode(value, altchars=b"-_" if "-" in value or "_" in value else None)
        else:
            expected = base64.b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, binascii.Error):
        return None
    return hasher, expected


def _headers(block: bytes, at: _At) -> dict[str, str]:
    """The named fields of a record's header block (version line, fields, CRLF CRLF), names lower-cased."""
    if not block.endswith(b"\r\n\r\n"):
        if len(block) >= _MAX_HEADER:
            raise _Truncated(f"record at {at}: header larger than {_MAX_HEADER} bytes")
        raise _Truncated(f"record at {at}: header cut short (file truncated)")
    headers: dict[str, str] = {}
    for line in block[:-4].decode("utf-8", "replace").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    return headers


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REVISIT_ONLY = ("warc-refers-to-target-uri", "warc-refers-to-date")


def _grammar(headers: dict[str, str], rtype: str) -> str | None:
    """What in a record's header breaks WARC 1.1's grammar where bundle format 1.1 promises to keep it."""
    for key in ("warc-block-digest", "warc-payload-digest"):
        algorithm, colon, value = headers.get(key, "a:b").partition(":")
        if not (colon and _TOKEN.fullmatch(algorithm) and _TOKEN.fullmatch(value)):
            return f"{key} {headers[key]!r} is not algorithm:token (WARC 1.1 labelled-digest)"
    for key in _REVISIT_ONLY:
        if key in headers and rtype != "revisit":
            return f"{key} on a {rtype} record (WARC 1.1 defines it for revisit records only)"
    return None


def _record(stream: _Stream, scan: WarcScan, wanted: set[str], at: _At, block_head: bytes, digests: bool,
            grammar: bool) -> None:
    offset = at
    headers = _headers(block_head, at)
    rtype = headers.get("warc-type", "?")
    broken = _grammar(headers, rtype) if grammar else None
    if broken:
        scan.problem(f"record at {offset}: {broken}")
    length_text = headers.get("content-length", "")
    if not length_text.isdigit():
        raise _Truncated(f"record at {offset}: missing or invalid Content-Length {length_text!r}")
    length = int(length_text)
    block = _parse_digest(headers["warc-block-digest"]) if "warc-block-digest" in headers else None
    payload = None
    if "warc-payload-digest" in headers and rtype != "revisit":
        payload = _parse_digest(headers["warc-payload-digest"])
    for key in ("warc-block-digest", "warc-payload-digest"):
        if key in headers and rtype != "revisit" and _parse_digest(headers[key]) is None:
            scan.problem(f"record at {offset}: unreadable {key} {headers[key]!r}")
    scan.digests_listed += (block is not None) + (payload is not None)
    if not digests:
        block = payload = None
    http = rtype in _HTTP_TYPES and headers.get("content-type", "").startswith("application/http")
    head = b""
    in_payload = payload is not None and not http
    # Without an HTTP head the payload is the block: one hash pass serves both digests when the algorithm agrees.
    shared = bool(block and payload and not http and block[0].name == payload[0].name)
    if shared and block and payload:
        payload = (block[0], payload[1])
    remaining = length
    while remaining:
        piece = stream.read(min(remaining, _OUT))
        if not piece:
            raise _Truncated(
                f"record at {offset} ({rtype}) ends after {length - remaining} of {length} bytes"
                " (file truncated)"
            )
        remaining -= len(piece)
        if block:
            block[0].update(piece)
        if payload is None or shared:
            continue
        if in_payload:
            payload[0].update(piece)
        elif len(head) < _MAX_HTTP_HEAD:
            head += piece[: _MAX_HTTP_HEAD]
            end = head.find(b"\r\n\r\n")
            if end >= 0:
                in_payload = True
                payload[0].update(head[end + 4 :])
                head = b""
    trailer = stream.read_exact(4)
    if trailer != b"\r\n\r\n":
        if len(trailer) < 4 and not trailer.strip():
            raise _Truncated(f"record at {offset} ({rtype}): end marker missing (file truncated)")
        raise _Truncated(f"record at {offset} ({rtype}): not followed by CRLF CRLF (wrong Content-Length)")
    target = headers.get("warc-target-uri", "")
    record_id = headers.get("warc-record-id", "").strip("<>")
    if block:
        scan.digests_checked += 1
        if block[0].digest() != block[1]:
            scan.problem(f"record at {offset} ({rtype} {target}): block digest does not match")
    if payload:
        scan.digests_checked += 1
        if not in_payload:
            scan.problem(f"record at {offset} ({rtype} {target}): HTTP head not terminated")
        elif payload[0].digest() != payload[1]:
            scan.problem(f"record at {offset} ({rtype} {target}): payload digest does not match")
    if not wanted:
        return
    target_key = url_key(target) if target else ""
    for uri in (target_key, record_id):
        if uri in wanted:
            scan.found_uris.add(uri)
    if rtype == "response" and target_key in wanted:
        scan.responses.add(target_key)


def scan_warc(raw: Reader, wanted: Iterable[str] = (), digests: bool = True, grammar: bool = False) -> WarcScan:
    """Parse every record to the end; note which ``wanted`` URIs/record ids (as urls.url_key gives them) are present;
    with ``digests``,
    recompute every block and payload digest and compare it with the record's header. With ``grammar`` (bundle format
    1.1 and later), digest labels must be WARC 1.1 tokens and revisit-only fields appear on revisit records only.

    Never raises on bad content: every problem, with its record's offset (stream.where), lands in ``WarcScan.problems``.
    """
    scan = WarcScan()
    wanted_set = set(wanted)
    inflater = _Inflater(raw)
    stream = _Stream(inflater)
    try:
        while True:
            at = stream.where()
            head = stream.read_until(b"\r\n\r\n", _MAX_HEADER)
            if not head:
                break
            if not head.startswith(b"WARC/"):
                raise _Truncated(f"{at}: expected a WARC record, found {head[:20]!r}")
            scan.records += 1
            _record(stream, scan, wanted_set, at, head, digests, grammar)
    except _Truncated as problem:
        scan.problem(str(problem))
    if inflater.problem:
        scan.problem(f"after {scan.records} record(s): {inflater.problem}")
    if scan.records == 0 and not scan.problems:
        scan.problem("no WARC record found")
    return scan
