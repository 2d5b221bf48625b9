"""Property tests of the verifier's WARC reader: on random WARCs (random records, compressible and incompressible
bodies, gzip member boundaries anywhere, including inside a record) it must read what warcio reads."""

from __future__ import annotations

import io
import itertools
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.archiveiterator import ArchiveIterator

from evicap.verify.warc import scan_warc

_BODIES = st.one_of(
    st.binary(max_size=3000),  # incompressible-ish
    st.builds(lambda byte, n: bytes([byte]) * n, st.integers(0, 255), st.integers(0, 3 * 1024 * 1024)),  # bombs
    st.builds(lambda text, n: text * n, st.binary(min_size=1, max_size=8), st.integers(1, 20000)),
)
_RECORD = st.tuples(st.sampled_from(["resource", "metadata", "response"]), _BODIES, st.integers(0, 10**6))


def _record(kind: str, body: bytes, number: int) -> bytes:
    if kind == "response":
        body = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body
        content_type = "application/http;msgtype=response"
    else:
        content_type = "application/octet-stream"
    head = (f"WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{number:012d}>\r\n"
            f"WARC-Date: 2026-12-01T00:00:00Z\r\nWARC-Target-URI: http://example.test/{number}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body + b"\r\n\r\n"


def _gzip(data: bytes, cuts: list[int]) -> bytes:
    """``data`` as consecutive gzip members, one starting at each cut (any byte position)."""
    points = sorted({0, *(c % (len(data) + 1) for c in cuts), len(data)})
    out = []
    for start, end in itertools.pairwise(points):
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        out.append(compressor.compress(data[start:end]) + compressor.flush())
    return b"".join(out)


def _warcio(data: bytes) -> list[tuple[str, str, int]]:
    out = []
    for record in ArchiveIterator(io.BytesIO(data), check_digests=False):
        block = record.raw_stream.read()
        out.append((record.rec_type, record.rec_headers.get_header("WARC-Target-URI"), len(block)))
    return out


@pytest.mark.timeout(900)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(records=st.lists(_RECORD, min_size=1, max_size=5), cuts=st.lists(st.integers(0, 10**7), max_size=6))
def test_reader_reads_what_warcio_reads(records: list[tuple[str, bytes, int]], cuts: list[int]) -> None:
    """Members cut anywhere: gzip defines a multi-member file as the concatenation of its members, so the oracle is
    warcio on the decompressed bytes (warcio itself reads member by member and misparses a record split across
    members). With one member per record, as evicap writes, warcio on the gzip file must agree as well."""
    plain = [_record(kind, body, number) for kind, body, number in records]
    wanted = [f"http://example.test/{number}" for _, _, number in records]
    per_record = b"".join(_gzip(r, []) for r in plain)
    oracles = [_warcio(b"".join(plain)), _warcio(per_record)]
    assert oracles[0] == oracles[1]
    for data in (per_record, _gzip(b"".join(plain), cuts), b"".join(_gzip(r, cuts) for r in plain), b"".join(plain)):
        scan = scan_warc(io.BytesIO(data), wanted)
        assert scan.problems == []
        assert scan.records == len(oracles[0]) == len(records)
        assert scan.found_uris == {target for _, target, _ in oracles[0]}
        assert scan.responses == {target for kind, target, _ in oracles[0] if kind == "response"}


@settings(max_examples=40, deadline=None)
@given(body=st.binary(max_size=4000), cut=st.integers(1, 10**6))
def test_any_truncation_is_reported_never_raised(body: bytes, cut: int) -> None:
    data = _gzip(_record("resource", body, 1), [])
    data = data[: cut % len(data)]
    scan = scan_warc(io.BytesIO(data))
    assert scan.problems
