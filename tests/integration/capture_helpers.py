"""Helpers for end-to-end capture tests: a throwaway signing key, a capture call, and independent read-back."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
from warcio.archiveiterator import ArchiveIterator

from evicap.bundle.manifest import CHECK, schema
from evicap.bundle.model import CaptureResult
from evicap.capture.session import capture_url
from evicap.capture.staged import Sealing, acquire
from evicap.config import load_config
from evicap.seal.keys import generate_key
from evicap.seal.sealer import SealSettings

WARCIO = str(Path(sys.executable).with_name("warcio"))


def make_sealing(tmp: Path) -> Sealing:
    key = tmp / "signing-key.pem"
    signer = generate_key(key, None)
    settings = SealSettings.resolve(load_config(env={"XDG_CONFIG_HOME": str(tmp)}), key=key, no_timestamp=True)
    return Sealing(signer=signer, settings=settings, actor_name="Test Investigator")


def manifest_of(bundle: str | Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(bundle) / "manifest.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema()).validate(data)  # every manifest a test sees obeys the schema
    assert CHECK.surely_valid(data), "jsonschema-rs refuses a manifest python-jsonschema accepts"
    return data


def warc_path(bundle: str | Path) -> Path:
    return Path(bundle) / "artifacts" / "capture.warc.gz"


def warc_records(bundle: str | Path) -> list[dict[str, Any]]:
    """Every record, read by warcio (not our writer), with headers and the payload bytes."""
    records = []
    with open(warc_path(bundle), "rb") as stream:
        for record in ArchiveIterator(stream):
            http = record.http_headers
            records.append(
                {
                    "type": record.rec_type,
                    "uri": record.rec_headers.get_header("WARC-Target-URI"),
                    "headers": record.rec_headers,
                    "status": int(http.get_statuscode()) if http and record.rec_type == "response" else None,
                    "http": http,
                    "payload": record.content_stream().read(),
                }
            )
    return records


def warcio_check(bundle: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WARCIO, "check", "-v", str(warc_path(bundle))], capture_output=True, text=True)


def warc_text(bundle: str | Path) -> bytes:
    """The whole WARC decompressed: for 'this value appears nowhere' assertions."""
    with gzip.open(warc_path(bundle), "rb") as handle:
        return handle.read()


async def capture_sealed(browser: Any, url: str, options: Any, output: Path, *, browser_info: Any, sealing: Sealing,
                         progress: Any = None) -> CaptureResult:
    """What `evicap capture` does with one URL: capture_url (a staged capture), then the one acquire step."""
    staged = await capture_url(browser, url, options, output, browser_info=browser_info, sealing=sealing,
                               progress=progress)
    return await acquire(staged, sealing, progress)
