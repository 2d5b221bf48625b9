"""Bundles written in format 1.0 have been handed to people: `evicap verify` keeps accepting them.

Format 1.0 WARCs carry padded base32 record digests (`sha256:G5IX...====`) and WARC-Refers-To-Target-URI on resource
records; 1.1 writes lower-hex tokens and links by record id. The 1.0 fixture is written here by our own writer
with the 1.0 digest form and headers, then sealed and verified through the CLI, as is a 1.1 bundle."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evicap.bundle import layout
from evicap.bundle.manifest import FORMAT_VERSION
from evicap.capture import warc as warc_module
from evicap.capture.warc import HttpMessage, WarcWriter
from evicap.cli.main import cli
from tests import test_verify
from tests.test_verify import CAPTURE_ID, FINAL, URL, Sealed, build_bundle, failures
from tests.tsa import tsa  # noqa: F401

sealed = test_verify.sealed


def _v10_label(digest: Any) -> str:
    """Format 1.0's digest label, as evicap wrote it until 1.1."""
    return f"sha256:{base64.b32encode(digest.digest()).decode('ascii')}"


def _our_warc(version: str) -> Any:
    def write(path: Path, screenshot: Path) -> None:
        async def run() -> None:
            writer = WarcWriter(path, {"software": f"evicap format {version} fixture"})
            await writer.write_exchange(URL, HttpMessage("GET /article?id=7 HTTP/1.1", []),
                                        HttpMessage("HTTP/1.1 301 Moved", [("Location", FINAL)], b""))
            body = b"<html><body><h1>Statement</h1>" + b"<p>evidence text</p>" * 2000 + b"</body></html>"
            await writer.write_exchange(FINAL, HttpMessage("GET /article/7 HTTP/1.1", []),
                                        HttpMessage("HTTP/1.1 200 OK", [("Content-Type", "text/html")], body))
            uri = f"urn:evicap:{CAPTURE_ID}:screenshot-full.png"
            if version == "1.0":  # 1.0 named the page by URI on resource records
                await writer._run(lambda: writer._write_record(
                    "resource", {"WARC-Record-ID": warc_module.new_record_id(), "WARC-Date": warc_module.warc_date(),
                                 "WARC-Target-URI": uri, "WARC-Refers-To-Target-URI": FINAL},
                    "image/png", None, screenshot))
            else:
                await writer.write_resource(uri, "image/png", screenshot, refers_to_target=FINAL)
            await writer.close()

        asyncio.run(run())

    return write


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_bundle_of_each_format_version_verifies(version: str, tmp_path: Path, sealed: Sealed,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    if version == "1.0":
        monkeypatch.setattr(warc_module, "_digest_label", _v10_label)
    monkeypatch.setattr(test_verify, "_warc", _our_warc(version))
    original = test_verify._manifest

    def manifest(*args: Any) -> dict[str, Any]:
        return {**original(*args), "format_version": version}

    monkeypatch.setattr(test_verify, "_manifest", manifest)
    bundle = build_bundle(tmp_path, None, sealed.tsa.ca_pem, tmp_path)
    raw = gzip.decompress((bundle / layout.WARC).read_bytes())
    if version == "1.0":
        assert b"WARC-Refers-To-Target-URI" in raw and b"====" in raw
    else:
        assert b"WARC-Refers-To-Target-URI" not in raw and b"=\r\n" not in raw
        assert hashlib.sha256(b"").hexdigest().encode() in raw  # the redirect's empty payload, in hex
    for extra in ((), ("--deep",)):  # --deep recomputes and compares every record digest in its own encoding
        result = CliRunner().invoke(cli, ["verify", str(bundle), "--json", "--trusted-key",
                                          str(tmp_path / "signing-key.pem.pub"), *extra])
        report = json.loads(result.stdout)
        assert result.exit_code == 0, failures(report)
    assert json.loads((bundle / layout.MANIFEST).read_text())["format_version"] == version
    assert FORMAT_VERSION == "1.1"  # what new captures write


@pytest.mark.parametrize("old_part", ["base32-digests", "refers-to-target-uri"])
def test_bundle_claiming_1_1_with_1_0_records_fails_naming_the_rule(old_part: str, tmp_path: Path, sealed: Sealed,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Format 1.1 promises WARCs that strict readers accept; a 1.1 bundle whose WARC breaks the grammar says so."""
    if old_part == "base32-digests":
        monkeypatch.setattr(warc_module, "_digest_label", _v10_label)
    monkeypatch.setattr(test_verify, "_warc", _our_warc("1.0" if old_part == "refers-to-target-uri" else "1.1"))
    original = test_verify._manifest
    monkeypatch.setattr(test_verify, "_manifest", lambda *args: {**original(*args), "format_version": "1.1"})
    bundle = build_bundle(tmp_path, None, sealed.tsa.ca_pem, tmp_path)
    result = CliRunner().invoke(cli, ["verify", str(bundle), "--json", "--trusted-key",
                                      str(tmp_path / "signing-key.pem.pub")])
    assert result.exit_code == 1
    reason = failures(json.loads(result.stdout))[f"warc:{layout.WARC}"]
    expected = "is not algorithm:token" if old_part == "base32-digests" else "for revisit records only"
    assert expected in reason and "record at offset" in reason, reason
