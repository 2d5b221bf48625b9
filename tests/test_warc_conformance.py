"""Our WARCs against WARC 1.1's grammar (ISO 28500:2017 / the 1.1 text), rule by rule, and against every independent
reader installed here: warcio (check, index), pywb's cdx-indexer (EVICAP_PYWB_PYTHON's venv, as the Makefile
makes it) and the wacz package's indexer (EVICAP_WACZ when set). A reader that is not installed is skipped by name."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from evicap.capture.warc import HttpMessage, WarcWriter

WARCIO = str(Path(sys.executable).with_name("warcio"))
WACZ = os.environ.get("EVICAP_WACZ")  # read at import: the test session's environment is cleaned of EVICAP_*

# WARC 1.1 section 4: token = 1*<any US-ASCII character except CTLs or separators>
_SEPARATORS = set('()<>@,;:\\"/[]?={} \t')
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")  # W3C-ISO8601, UTC, optional fraction
_BRACKETED = re.compile(r"^<[^<>\s]+:[^<>\s]+>$")
_DIGEST = re.compile(r"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([!#$%&'*+\-.^_`|~0-9A-Za-z]+)$")
_TYPES = {"warcinfo", "response", "resource", "request", "metadata", "revisit", "conversion", "continuation"}
_BRACKETED_FIELDS = {"WARC-Record-ID", "WARC-Concurrent-To", "WARC-Refers-To", "WARC-Warcinfo-ID"}
_MANDATORY = {"WARC-Record-ID", "Content-Length", "WARC-Date", "WARC-Type"}
_TARGET_REQUIRED = {"response", "resource", "request", "revisit", "conversion", "continuation"}


def _write(path: Path, tmp: Path) -> None:
    spool = tmp / "body"
    spool.write_bytes(b"\x00\x01" * 300_000)

    async def write() -> None:
        warc = WarcWriter(path, {"software": "evicap test", "options": {"a": 1}})
        page = "http://127.0.0.1:8080/post?q=%C3%BC"
        await warc.write_exchange(page, HttpMessage("GET /post?q=%C3%BC HTTP/1.1", [("Host", "127.0.0.1:8080")]),
                                  HttpMessage("HTTP/1.1 200 OK", [("Content-Type", "text/html")], b"<p>x</p>"),
                                  ip_address="127.0.0.1", protocols=["http/1.1"])
        await warc.write_exchange("http://127.0.0.1:8080/big", HttpMessage("GET /big HTTP/1.1", []),
                                  HttpMessage("HTTP/1.1 200 OK", [], spool), truncated="length")
        await warc.write_exchange("http://127.0.0.1:8080/gone", HttpMessage("GET /gone HTTP/1.1", []), None)
        await warc.write_resource("urn:evicap:cap:screenshot-full.png", "image/png", b"\x89PNG", refers_to_target=page)
        await warc.write_metadata("urn:evicap:cap:facts.json", "application/json", b"{}", refers_to_target=page)
        await warc.close()

    asyncio.run(write())


@pytest.fixture(scope="module")
def warc_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("conformance")
    path = tmp / "capture.warc.gz"
    _write(path, tmp)
    return path


def _records(path: Path) -> list[tuple[str, list[tuple[str, str]], bytes]]:
    """(version line, header fields in order, block) of every record, by a parser of the grammar written here."""
    data = path.read_bytes()
    records = []
    while data:
        member = zlib.decompressobj(31)
        plain = member.decompress(data)
        data = member.unused_data
        head, sep, rest = plain.partition(b"\r\n\r\n")
        assert sep, "header block not ended by CRLF CRLF"
        lines = head.split(b"\r\n")
        fields = []
        for line in lines[1:]:
            assert b"\n" not in line and b"\r" not in line
            name, colon, value = line.decode("utf-8").partition(":")
            assert colon, f"field line without a colon: {line!r}"
            fields.append((name, value.strip()))
        length = int(dict(fields)["Content-Length"])
        assert rest[length:] == b"\r\n\r\n", "block not followed by exactly CRLF CRLF"
        records.append((lines[0].decode("ascii"), fields, rest[:length]))
    return records


def test_every_record_follows_the_warc_1_1_grammar(warc_file: Path) -> None:
    records = _records(warc_file)
    assert len(records) == 8
    warcinfo_id = None
    for version, fields, block in records:
        assert version == "WARC/1.1"
        named = dict(fields)
        assert set(named) >= _MANDATORY, named
        assert len({name for name, _ in fields}) == len(fields) or \
            {n for n, _ in fields if [m for m, _ in fields].count(n) > 1} <= {"WARC-Protocol"}
        for name, value in fields:
            assert _TOKEN.match(name) and not (set(name) & _SEPARATORS), f"field name not a token: {name!r}"
            assert value == value.strip() and all(ord(c) >= 32 for c in value), (name, value)
            if name in _BRACKETED_FIELDS:
                assert _BRACKETED.match(value), (name, value)
            if name.endswith("-Digest"):
                assert _DIGEST.match(value), f"{name} is not algorithm:token: {value!r}"
        assert named["WARC-Type"] in _TYPES
        assert _DATE.match(named["WARC-Date"]), named["WARC-Date"]
        assert named["Content-Length"].isdigit() and int(named["Content-Length"]) == len(block)
        assert "WARC-Refers-To-Target-URI" not in named or named["WARC-Type"] == "revisit"
        assert "WARC-Refers-To-Date" not in named or named["WARC-Type"] == "revisit"
        if named["WARC-Type"] in _TARGET_REQUIRED:
            assert "WARC-Target-URI" in named and not named["WARC-Target-URI"].startswith("<")
        if named["WARC-Type"] == "warcinfo":
            warcinfo_id = named["WARC-Record-ID"]
            assert "WARC-Target-URI" not in named and "WARC-Warcinfo-ID" not in named
        else:
            assert named.get("WARC-Warcinfo-ID") == warcinfo_id
        if int(named["Content-Length"]) > 0:
            assert "Content-Type" in named
        if "WARC-Truncated" in named:
            assert named["WARC-Truncated"] in {"length", "time", "disconnect", "unspecified"}
        if "WARC-IP-Address" in named:
            assert re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", named["WARC-IP-Address"])


def test_warcio_check_and_index_read_every_record(warc_file: Path) -> None:
    check = subprocess.run([WARCIO, "check", "-v", str(warc_file)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("digest pass") >= 7, check.stdout
    index = subprocess.run([WARCIO, "index", "-f", "warc-type,warc-target-uri,offset", str(warc_file)],
                           capture_output=True, text=True)
    assert index.returncode == 0, index.stderr
    assert len(index.stdout.splitlines()) == 8


def _pywb_python() -> str | None:
    return os.environ.get("EVICAP_PYWB_PYTHON") or (
        str(Path(".venv-pywb/bin/python").absolute()) if Path(".venv-pywb/bin/python").exists() else None)


PYWB_PYTHON = _pywb_python()  # read at import, like WACZ: each test's environment is cleaned of EVICAP_*


@pytest.mark.skipif(PYWB_PYTHON is None, reason="pywb is not installed (make test builds .venv-pywb)")
def test_pywb_cdx_indexer_indexes_responses_and_resources(warc_file: Path) -> None:
    indexer = str(Path(str(PYWB_PYTHON)).with_name("cdx-indexer"))
    result = subprocess.run([indexer, "-j", str(warc_file)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith("!")]
    assert any(line.startswith("1,0,0,127:8080)/post?q=%c3%bc ") and '"status": "200"' in line for line in lines), lines
    assert any('"digest": "sha256:' in line for line in lines), lines  # our payload digest, read as written
    assert any("urn:evicap:cap:screenshot-full.png" in line for line in lines), lines
    assert "digest" in result.stdout and "===" not in result.stdout


@pytest.mark.skipif(WACZ is None, reason="the wacz package is not installed (set EVICAP_WACZ)")
def test_wacz_indexer_packs_the_warc(warc_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "capture.wacz"
    result = subprocess.run([str(WACZ), "create", "-o", str(out), str(warc_file)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.stat().st_size > 0
