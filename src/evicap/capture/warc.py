"""WarcWriter: one WARC/1.1 file, one gzip member per record, hashed while it is written.

Why our own writer rather than warcio's: warcio's writer computes digests by reading a record's stream
and seeking back, with SHA-1 by default, and knows nothing of our HashingWriter. Ours is small, writes
SHA-256 block and payload digests (``warcio check`` verifies them), streams bodies from spool files in
1 MiB chunks, and runs every write on one worker thread so records are never interleaved and a 256 MB
body never stalls the event loop. warcio stays our *reader*: the tests read every file back with it and
with ``warcio check``.

Record decisions (header names, digests, truncation) are written down in docs/warc-records.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evicap.bundle.hashing import CHUNK, FileDigest, HashingWriter
from evicap.bundle.warcmembers import Member
from evicap.errors import BundleError

WARC_VERSION = "WARC/1.1"
DIGEST_ALGORITHM = "sha256"
COMPRESS_LEVEL = 6
# Payloads in formats that are compressed already: their records are stored (level 0) inside their gzip member.
# Deflating a full-page PNG screenshot at level 6 cost about 45 ms of CPU per capture to save 6 % of its bytes;
# a JPEG or video saves less.
STORED_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/avif")

Headers = Sequence[tuple[str, str]]
Body = Path | bytes | None


@dataclass(frozen=True)
class HttpMessage:
    """One HTTP request or response head plus where its (decoded) body is.

    The writer serialises it as an HTTP/1.x message: ``start_line``, then ``headers`` one per line, then
    the body: a spool file (copied in chunks, never read whole), small bytes, or None for no body.
    """

    start_line: str  # "GET /path?q HTTP/1.1" or "HTTP/1.1 200 OK"
    headers: Headers
    body: Body = None


@dataclass(frozen=True)
class ExchangeRecords:
    """Record ids written for one exchange; response_id is None when no response was received."""

    request_id: str
    response_id: str | None


def new_record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def warc_date(when: datetime | None = None) -> str:
    """WARC 1.1 date: UTC, microsecond precision (WARC 1.1 allows fractions, warcio and pywb read them)."""
    when = (when or datetime.now(UTC)).astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clean(value: str) -> str:
    """Header values never contain CR/LF: a hostile value must not add a header line of its own."""
    return " ".join(value.replace("\r", "\n").split("\n")).strip()


def encode_http_head(message: HttpMessage) -> bytes:
    lines = [_clean(message.start_line)]
    lines += [f"{_clean(name)}: {_clean(value)}" for name, value in message.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def _digest_label(digest: Any) -> str:
    """``sha256:<lower-case hex>``: a WARC 1.1 token (padded base32's ``=`` is not a token character), the form most
    current tools write and that warcio, pywb and the wacz indexer read (docs/warc-records.md, "Digests")."""
    return f"{DIGEST_ALGORITHM}:{digest.hexdigest()}"


def _iter_body(body: Body) -> Iterator[bytes]:
    if body is None:
        return
    if isinstance(body, bytes):
        if body:
            yield body
        return
    with open(body, "rb") as handle:
        while block := handle.read(CHUNK):
            yield block


class WarcWriter:
    """Writes one ``.warc.gz`` through a HashingWriter; ``close()`` returns the file's size and hashes.

    All writes go through a single worker thread, in call order. Async methods may be called concurrently from
    many CDP event handlers: each record is whole before the next one starts.
    """

    def __init__(self, path: Path, warcinfo: Mapping[str, Any], scrubber: Any = None) -> None:
        self.path = path
        # safety (issue 12): every record passes the secret scrubber here, the one place all records go through
        # (evicap.capture.secrets.Scrubber; same-length replacement, so lengths and digests stay consistent).
        self._scrub = scrubber if scrubber is not None and scrubber.active else None
        self._artifact = f"{path.parent.name}/{path.name}"  # as the manifest names it: artifacts/capture.warc.gz
        try:
            self._out = HashingWriter(path)
        except OSError as exc:
            raise BundleError(f"cannot create WARC file: {exc}", path=str(path)) from exc
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evicap-warc")
        self._digest: FileDigest | None = None
        self.records = 0
        self._members: list[Member] = []  # where each record's gzip member lies (bundle/warcmembers.py)
        self.warcinfo_id = new_record_id()
        self._responses: dict[str, str] = {}  # target URI -> its last response record's id (for links)
        fields = {"filename": path.name, **warcinfo}
        self._write_record(
            "warcinfo",
            {"WARC-Record-ID": self.warcinfo_id, "WARC-Date": warc_date(), "WARC-Filename": path.name},
            "application/warc-fields",
            None,
            _warc_fields(fields),
            with_warcinfo=False,
        )

    # -- public async API ------------------------------------------------------------------------------

    async def write_exchange(
        self,
        url: str,
        request: HttpMessage,
        response: HttpMessage | None,
        *,
        date: datetime | None = None,
        ip_address: str | None = None,
        protocols: Sequence[str] = (),
        truncated: str | None = None,
    ) -> ExchangeRecords:
        """A request record and, when there was one, a response record, linked by WARC-Concurrent-To.

        ``truncated`` (a WARC-Truncated reason: length, time, disconnect, unspecified) marks a response
        whose body is only part of what the server sent.
        """
        request_id = new_record_id()
        response_id = new_record_id() if response is not None else None
        common: dict[str, str] = {"WARC-Date": warc_date(date), "WARC-Target-URI": url}
        if ip_address:
            common["WARC-IP-Address"] = ip_address
        protocol_headers = [("WARC-Protocol", p) for p in protocols]

        def work() -> None:
            linked = {"WARC-Concurrent-To": response_id} if response_id else {}
            self._write_record(
                "request",
                {"WARC-Record-ID": request_id, **common, **linked},
                "application/http;msgtype=request",
                request,
                None,
                extra=protocol_headers,
            )
            if response is not None and response_id is not None:
                marks = {"WARC-Truncated": truncated} if truncated else {}
                self._write_record(
                    "response",
                    {"WARC-Record-ID": response_id, **common, "WARC-Concurrent-To": request_id, **marks},
                    "application/http;msgtype=response",
                    response,
                    None,
                    extra=protocol_headers,
                )
                self._responses[url] = response_id

        await self._run(work)
        return ExchangeRecords(request_id, response_id)

    async def write_resource(
        self,
        uri: str,
        media_type: str,
        source: Path | bytes,
        *,
        refers_to_target: str | None = None,
        concurrent_to: str | None = None,
        date: datetime | None = None,
        truncated: str | None = None,
    ) -> str:
        """A ``resource`` record (screenshots, DOM, PDF...) streamed from a file or small bytes.

        ``refers_to_target``: the page URL the resource was taken from. WARC 1.1 defines WARC-Refers-To-Target-URI for
        revisit records only, so the link is written as WARC-Concurrent-To the last response record for that URL
        (none when the page has no response record)."""
        record_id = new_record_id()
        headers = {"WARC-Record-ID": record_id, "WARC-Date": warc_date(date), "WARC-Target-URI": uri}
        concurrent_to = concurrent_to or (self._responses.get(refers_to_target) if refers_to_target else None)
        if concurrent_to:
            headers["WARC-Concurrent-To"] = concurrent_to
        if truncated:
            headers["WARC-Truncated"] = truncated
        await self._run(lambda: self._write_record("resource", headers, media_type, None, source))
        return record_id

    async def write_metadata(
        self,
        uri: str,
        media_type: str,
        data: bytes,
        *,
        refers_to: str | None = None,
        refers_to_target: str | None = None,
        concurrent_to: str | None = None,
    ) -> str:
        """A ``metadata`` record: facts about the capture or about another record (``refers_to`` its id; with only
        ``refers_to_target``, the last response record for that URL)."""
        record_id = new_record_id()
        headers = {"WARC-Record-ID": record_id, "WARC-Date": warc_date(), "WARC-Target-URI": uri}
        refers_to = refers_to or (self._responses.get(refers_to_target) if refers_to_target else None)
        if refers_to:
            headers["WARC-Refers-To"] = refers_to
        if concurrent_to:
            headers["WARC-Concurrent-To"] = concurrent_to
        await self._run(lambda: self._write_record("metadata", headers, media_type, None, data))
        return record_id

    async def flush(self) -> int:
        """Push the records written so far to the file, which stays open; returns its size then, a record
        boundary: a reader of that many bytes sees whole records only (evicap.detect hashes media this way)."""

        def work() -> int:
            self._out.flush()
            return self._out.tell()

        return int(await self._run(work))

    def members_within(self, size: int) -> tuple[Member, ...]:
        """The records whose gzip members end within the first ``size`` bytes (what ``flush`` returned): readers
        of the open file go straight to the records they want (bundle/warcmembers.py)."""
        return tuple(member for member in list(self._members) if member.end <= size)

    async def close(self) -> FileDigest:
        """Finish the file (flush, fsync) and return its size and digests, computed during the writes."""
        if self._digest is None:
            self._digest = await self._run(self._out.close)
            self._executor.shutdown(wait=True)
        return self._digest

    @property
    def closed(self) -> bool:
        return self._digest is not None

    # -- worker thread ---------------------------------------------------------------------------------

    async def _run(self, work: Any) -> Any:
        if self._digest is not None:
            raise BundleError("WARC file already closed", path=str(self.path))
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        except OSError as exc:
            raise BundleError(f"cannot write WARC file: {exc}", path=str(self.path)) from exc

    def _write_record(
        self,
        warc_type: str,
        headers: Mapping[str, str],
        content_type: str,
        http: HttpMessage | None,
        body: Body,
        *,
        extra: Sequence[tuple[str, str]] = (),
        with_warcinfo: bool = True,
    ) -> None:
        """Write one record as its own gzip member. Two passes over the body: digests first, then the copy,
        because WARC headers (length, digests) must precede the block they describe."""
        head = encode_http_head(http) if http is not None else b""
        payload_source = http.body if http is not None else body
        scrub = self._scrub
        if scrub is not None:
            record = headers.get("WARC-Record-ID")
            headers = {k: scrub.scrub_text(v, self._artifact, record) for k, v in headers.items()}
            head = scrub.scrub_bytes(head, self._artifact, record)
            if http is None and not _scrubbable(content_type):
                scrub = None  # images, PDF: binary, never rewritten (a secret shown there is warned about)

        def chunks(count: bool) -> Iterator[bytes]:
            if scrub is None:
                return _iter_body(payload_source)
            return scrub.scrub_chunks(_iter_body(payload_source), self._artifact, headers.get("WARC-Record-ID"),
                                      count=count)
        block_hash = hashlib.new(DIGEST_ALGORITHM, head)
        payload_hash = hashlib.new(DIGEST_ALGORITHM)
        length = len(head)
        for chunk in chunks(True):
            block_hash.update(chunk)
            payload_hash.update(chunk)
            length += len(chunk)

        lines = [WARC_VERSION, f"WARC-Type: {warc_type}"]
        lines += [f"{name}: {_clean(value)}" for name, value in headers.items()]
        if with_warcinfo:
            lines.append(f"WARC-Warcinfo-ID: {self.warcinfo_id}")
        lines += [f"{name}: {_clean(value)}" for name, value in extra]
        lines.append(f"WARC-Block-Digest: {_digest_label(block_hash)}")
        if warc_type in ("response", "resource", "request") and (http is None or http.body is not None):
            lines.append(f"WARC-Payload-Digest: {_digest_label(payload_hash)}")
        lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {length}")
        warc_head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

        level = 0 if http is None and _media_type(content_type) in STORED_TYPES else COMPRESS_LEVEL
        compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        offset = self._out.tell()
        write = self._out.write
        write(compressor.compress(warc_head))
        if head:
            write(compressor.compress(head))
        for chunk in chunks(False):
            write(compressor.compress(chunk))
        write(compressor.compress(b"\r\n\r\n"))
        write(compressor.flush())
        self._members.append(Member(offset, self._out.tell() - offset, warc_type))
        self.records += 1


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def _scrubbable(content_type: str) -> bool:
    kind = _media_type(content_type)
    return kind.startswith("text/") or kind in ("application/json", "application/warc-fields", "multipart/related",
                                                 "application/javascript", "application/xml")


def _warc_fields(fields: Mapping[str, Any]) -> bytes:
    """``application/warc-fields``: one ``name: value`` line each; structured values as compact JSON."""
    lines = []
    for name, value in fields.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
        lines.append(f"{_clean(str(name))}: {_clean(text)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
