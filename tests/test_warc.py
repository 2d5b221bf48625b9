"""WarcWriter on its own: records read back by warcio (and `warcio check`), digests, framing, hostile values."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from evicap.bundle.hashing import digest_file
from evicap.capture.warc import HttpMessage, WarcWriter
from evicap.errors import BundleError

WARCIO = str(Path(sys.executable).with_name("warcio"))


def check(path: Path) -> None:
    result = subprocess.run([WARCIO, "check", "-v", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "digest pass" in result.stdout


def gzip_members(path: Path) -> int:
    """Count gzip members by decompressing member after member."""
    data, count = path.read_bytes(), 0
    while data:
        decomp = zlib.decompressobj(zlib.MAX_WBITS | 16)
        decomp.decompress(data)
        data = decomp.unused_data
        count += 1
    return count


def test_records_read_back_with_digests_and_links(tmp_path: Path) -> None:
    body = tmp_path / "spool"
    body.write_bytes(bytes(range(256)) * 5000)  # ~1.2 MiB: more than one copy chunk
    out = tmp_path / "capture.warc.gz"

    async def write() -> tuple[str, str | None, str]:
        warc = WarcWriter(out, {"software": "evicap test", "options": {"timeout": 60}})
        ids = await warc.write_exchange(
            "http://example.test/a?b=1",
            HttpMessage("GET /a?b=1 HTTP/1.1", [("Host", "example.test")]),
            HttpMessage("HTTP/1.1 200 OK", [("Content-Type", "application/octet-stream")], body),
            ip_address="192.0.2.7",
            protocols=["h2", "tls/1.3"],
        )
        resource = await warc.write_resource("urn:evicap:screenshot", "image/png", b"\x89PNG fake")
        digest = await warc.close()
        assert digest == digest_file(out)  # hashed while writing == hashed afterwards
        return ids.request_id, ids.response_id, resource

    request_id, response_id, resource_id = asyncio.run(write())
    check(out)
    assert gzip_members(out) == 4
    with open(out, "rb") as stream:
        records = [(r.rec_type, r.rec_headers, r.content_stream().read()) for r in ArchiveIterator(stream)]
    assert [r[0] for r in records] == ["warcinfo", "request", "response", "resource"]
    info = records[0][2].decode()
    assert "software: evicap test" in info and 'options: {"timeout": 60}' in info
    _, request_headers, _ = records[1]
    _, response_headers, response_body = records[2]
    assert request_headers.get_header("WARC-Record-ID") == request_id
    assert request_headers.get_header("WARC-Concurrent-To") == response_id
    assert response_headers.get_header("WARC-Concurrent-To") == request_id
    assert response_headers.get_header("WARC-IP-Address") == "192.0.2.7"
    assert [v for k, v in response_headers.headers if k == "WARC-Protocol"] == ["h2", "tls/1.3"]
    assert response_headers.get_header("WARC-Payload-Digest").startswith("sha256:")
    assert response_body == body.read_bytes()
    assert records[3][1].get_header("WARC-Record-ID") == resource_id
    assert records[3][2] == b"\x89PNG fake"
    assert all(r[1].get_header("WARC-Date") for r in records)


def test_header_values_cannot_inject_lines(tmp_path: Path) -> None:
    out = tmp_path / "x.warc.gz"

    async def write() -> None:
        warc = WarcWriter(out, {})
        await warc.write_exchange(
            "http://example.test/",
            HttpMessage("GET / HTTP/1.1", [("X-Evil", "a\r\nInjected: yes")]),
            HttpMessage("HTTP/1.1 200 OK", [("X-Evil", "b\nWARC-Type: forged")], b"ok"),
        )
        await warc.close()

    asyncio.run(write())
    check(out)
    raw = gzip.decompress(out.read_bytes())
    assert b"\r\nInjected: yes" not in raw and b"\nWARC-Type: forged" not in raw


def test_failed_request_without_response_and_truncated_response(tmp_path: Path) -> None:
    out = tmp_path / "x.warc.gz"

    async def write() -> None:
        warc = WarcWriter(out, {})
        ids = await warc.write_exchange("http://example.test/r", HttpMessage("GET /r HTTP/1.1", []), None)
        assert ids.response_id is None
        await warc.write_exchange(
            "http://example.test/t",
            HttpMessage("GET /t HTTP/1.1", []),
            HttpMessage("HTTP/1.1 200 OK", [("Content-Length", "3")], b"abc"),
            truncated="length",
        )
        await warc.write_metadata("urn:evicap:facts", "application/json", b"{}", refers_to=ids.request_id)
        await warc.close()
        with pytest.raises(BundleError):
            await warc.write_metadata("urn:x", "text/plain", b"late")

    asyncio.run(write())
    check(out)
    with open(out, "rb") as stream:
        records = [(r.rec_type, r.rec_headers) for r in ArchiveIterator(stream)]
    assert [t for t, _ in records] == ["warcinfo", "request", "request", "response", "metadata"]
    assert records[1][1].get_header("WARC-Concurrent-To") is None
    assert records[3][1].get_header("WARC-Truncated") == "length"


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    out = tmp_path / "x.warc.gz"
    bodies = {i: hashlib.sha256(str(i).encode()).digest() * 20000 for i in range(8)}

    async def write() -> None:
        warc = WarcWriter(out, {})
        await asyncio.gather(
            *(warc.write_resource(f"urn:evicap:r{i}", "application/octet-stream", b) for i, b in bodies.items())
        )
        await warc.close()

    asyncio.run(write())
    check(out)
    with open(out, "rb") as stream:
        got = {
            r.rec_headers.get_header("WARC-Target-URI"): r.content_stream().read()
            for r in ArchiveIterator(stream)
            if r.rec_type == "resource"
        }
    assert got == {f"urn:evicap:r{i}": b for i, b in bodies.items()}


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "x.warc.gz"
    out.write_bytes(b"existing evidence")
    with pytest.raises(BundleError):
        WarcWriter(out, {})
    assert out.read_bytes() == b"existing evidence"


def test_digests_are_lower_hex_tokens(tmp_path: Path) -> None:
    """Padded base32 (`sha256:G5IX...====`) is not a WARC 1.1 token: `=` is a separator."""
    out = tmp_path / "x.warc.gz"

    async def write() -> None:
        warc = WarcWriter(out, {})
        await warc.write_exchange("http://example.test/", HttpMessage("GET / HTTP/1.1", []),
                                  HttpMessage("HTTP/1.1 200 OK", [], b"body"))
        await warc.close()

    asyncio.run(write())
    check(out)
    with open(out, "rb") as stream:
        labels = [value for record in ArchiveIterator(stream) for name, value in record.rec_headers.headers
                  if name.endswith("-Digest")]
    assert labels and all(re.fullmatch(r"sha256:[0-9a-f]{64}", label) for label in labels), labels
    payload = next(label for label in labels if label.endswith(hashlib.sha256(b"body").hexdigest()))
    assert payload


def test_attachments_link_to_the_page_response_not_refers_to_target_uri(tmp_path: Path) -> None:
    """WARC-Refers-To-Target-URI is defined for revisit records only: resource and metadata records about the page
    name its response record instead (WARC-Concurrent-To, WARC-Refers-To)."""
    out = tmp_path / "x.warc.gz"
    page = "http://example.test/page"

    async def write() -> tuple[str | None, str, str, str]:
        warc = WarcWriter(out, {})
        unlinked = await warc.write_resource("urn:evicap:early", "text/plain", b"x", refers_to_target=page)
        ids = await warc.write_exchange(page, HttpMessage("GET /page HTTP/1.1", []),
                                        HttpMessage("HTTP/1.1 200 OK", [], b"page"))
        shot = await warc.write_resource("urn:evicap:shot", "image/png", b"png", refers_to_target=page)
        facts = await warc.write_metadata("urn:evicap:facts", "application/json", b"{}", refers_to_target=page)
        await warc.close()
        return ids.response_id, unlinked, shot, facts

    response_id, unlinked, shot, facts = asyncio.run(write())
    check(out)
    with open(out, "rb") as stream:
        headers = {r.rec_headers.get_header("WARC-Record-ID"): r.rec_headers for r in ArchiveIterator(stream)}
    assert all(h.get_header("WARC-Refers-To-Target-URI") is None for h in headers.values())
    assert headers[unlinked].get_header("WARC-Concurrent-To") is None
    assert headers[shot].get_header("WARC-Concurrent-To") == response_id
    assert headers[facts].get_header("WARC-Refers-To") == response_id


def test_already_compressed_resources_are_stored_and_text_deflated(tmp_path: Path) -> None:
    """A PNG or JPEG resource is not deflated again (CPU for a few percent of its bytes), by its type whatever the
    bytes (here compressible ones, to show it); text still is. Both read back as written."""
    pixels = b"\x00\x10\x20\x30" * 50_000
    text = b"<p>the same statement, again and again</p>\n" * 5000
    out = tmp_path / "capture.warc.gz"

    async def write() -> None:
        warc = WarcWriter(out, {"software": "evicap test"})
        await warc.write_resource("urn:evicap:screenshot", "image/png", b"\x89PNG\r\n\x1a\n" + pixels)
        await warc.write_resource("urn:evicap:photo", "image/jpeg; q=1", b"\xff\xd8\xff" + pixels)
        await warc.write_resource("urn:evicap:dom", "text/html; charset=utf-8", text)
        await warc.close()

    asyncio.run(write())
    check(out)
    data, members = out.read_bytes(), []
    while data:
        decomp = zlib.decompressobj(zlib.MAX_WBITS | 16)
        inflated = decomp.decompress(data)
        members.append((len(data) - len(decomp.unused_data), len(inflated)))
        data = decomp.unused_data
    _, png, jpeg, dom = members
    assert png[0] > png[1] and jpeg[0] > jpeg[1]  # stored: a few bytes of framing over the record itself
    assert dom[0] < dom[1] / 20
    with open(out, "rb") as stream:
        bodies = [r.content_stream().read() for r in ArchiveIterator(stream) if r.rec_type == "resource"]
    assert bodies == [b"\x89PNG\r\n\x1a\n" + pixels, b"\xff\xd8\xff" + pixels, text]
