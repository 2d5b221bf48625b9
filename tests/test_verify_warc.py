"""The streamed WARC checker against WARCs written by warcio (an independent writer), then damaged."""

from __future__ import annotations

import gzip
import io
import tracemalloc
import zlib
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from evicap.verify.warc import scan_warc

BODY = b"<html><body>" + b"<p>the original statement</p>" * 500 + b"</body></html>"


def _records(gzipped: bool) -> bytes:
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=gzipped, warc_version="WARC/1.1")
    writer.write_record(writer.create_warcinfo_record("t.warc", {"software": "test"}))
    http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record("https://example.org/post/1", "response",
                                                  payload=io.BytesIO(BODY), http_headers=http))
    writer.write_record(writer.create_warc_record("urn:evicap:x:dom.html", "resource", payload=io.BytesIO(BODY),
                                                  warc_content_type="text/html"))
    return out.getvalue()


def test_intact_warc_passes_with_digests_checked() -> None:
    for gzipped in (True, False):
        scan = scan_warc(io.BytesIO(_records(gzipped)), ["https://example.org/post/1", "urn:evicap:x:dom.html"])
        assert scan.problems == []
        assert scan.records == 3
        assert scan.digests_checked >= 4  # block + payload of the response and the resource
        assert scan.responses == {"https://example.org/post/1"}
        assert scan.found_uris == {"https://example.org/post/1", "urn:evicap:x:dom.html"}


def test_altered_payload_fails_payload_and_block_digest() -> None:
    data = _records(False).replace(b"the original statement", b"the altered statement!", 1)
    scan = scan_warc(io.BytesIO(data))
    joined = " ".join(scan.problems)
    assert "block digest does not match" in joined and "payload digest does not match" in joined
    assert "https://example.org/post/1" in joined


def test_altered_record_recompressed_as_valid_gzip_still_fails_its_digest() -> None:
    members = []
    stream = io.BytesIO(_records(True))
    while stream.tell() < len(stream.getvalue()):
        d = zlib.decompressobj(31)
        rest = stream.read()
        plain = d.decompress(rest)
        stream.seek(len(stream.getvalue()) - len(d.unused_data))
        members.append(plain)
    members[1] = members[1].replace(b"the original statement", b"the altered statement!", 1)
    scan = scan_warc(io.BytesIO(b"".join(gzip.compress(m) for m in members)))
    assert any("block digest does not match" in p for p in scan.problems)


def test_record_shorter_than_content_length_is_named_by_offset() -> None:
    data = _records(False)
    scan = scan_warc(io.BytesIO(data[:-500]))
    assert any("ends after" in p and "truncated" in p for p in scan.problems), scan.problems


def test_gzip_member_cut_short_is_detected() -> None:
    data = _records(True)
    scan = scan_warc(io.BytesIO(data[:-20]))  # inside the last member's deflate stream / trailer
    assert any("cut short" in p or "truncated" in p for p in scan.problems), scan.problems


def test_garbage_is_not_a_warc() -> None:
    for junk in (b"\x00" * 100, b"<html>hello</html>", b"", b"\x1f\x8b\x08garbage-not-deflate"):
        scan = scan_warc(io.BytesIO(junk))
        assert scan.problems, junk


def test_gzip_bomb_is_inflated_in_bounded_memory(tmp_path: Path) -> None:
    size = 64 * 1024 * 1024
    head = f"WARC/1.1\r\nWARC-Type: resource\r\nContent-Length: {size}\r\n\r\n".encode()
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(head)]
    zeros = bytes(1024 * 1024)
    parts += [compressor.compress(zeros) for _ in range(size // len(zeros))]
    parts += [compressor.compress(b"\r\n\r\n"), compressor.flush()]
    bomb = b"".join(parts)
    assert len(bomb) < 2 * 1024 * 1024
    tracemalloc.start()
    try:
        scan = scan_warc(io.BytesIO(bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scan.problems == [] and scan.records == 1
    assert peak < 16 * 1024 * 1024, peak  # the record is 64 MiB inflated


def _member(data: bytes, level: int = 6) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def _resource(body: bytes, uri: str = "urn:evicap:x") -> bytes:
    head = (f"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Target-URI: {uri}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body + b"\r\n\r\n"


@pytest.mark.timeout(120)
def test_compressible_member_followed_by_another_does_not_hang() -> None:
    """Regression: a member ending in a call whose output was capped left its successor in unconsumed_tail,
    which was fed again forever (verify hung, memory grew)."""
    for size in (1024 * 1024, 1024 * 1024 + 1, 5 * 1024 * 1024 + 17):
        data = _member(_resource(b"a")) + _member(_resource(bytes(size), "urn:big")) + _member(_resource(b"z", "urn:z"))
        scan = scan_warc(io.BytesIO(data), ["urn:big", "urn:z"])
        assert scan.problems == [] and scan.records == 3
        assert scan.found_uris == {"urn:big", "urn:z"}


def test_problem_names_the_gzip_member_file_offset() -> None:
    first = _member(_resource(b"a"))
    second = _member(_resource(b"b").replace(b"Content-Length: 1", b"Content-Length: 9"))
    scan = scan_warc(io.BytesIO(first + second))
    assert scan.problems and f"record at offset {len(first)} " in scan.problems[0], scan.problems
