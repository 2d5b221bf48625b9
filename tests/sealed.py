"""Schema-valid bundles for the seal tests, sealed by the real seal code; the tests then act through the CLI.

``sealed_bundle(directory, key, ...)`` writes one artifact, SHA256SUMS and a manifest whose capture times the test
chooses (``started``/``ended``), then seals it with ``seal_bundle``: Ed25519, the custody log and its head, and a
token when ``tsa`` is given. ``cli(...)`` runs the real `evicap` command line in-process.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from evicap.bundle import layout
from evicap.bundle.hashing import digest_file
from evicap.bundle.manifest import FORMAT_VERSION, utc_iso, write_checksums, write_manifest
from evicap.bundle.model import Artifact
from evicap.cli.main import cli as evicap_cli
from evicap.config import load_config
from evicap.seal.custody import Actor
from evicap.seal.keys import Signer, generate_key, load_key
from evicap.seal.sealer import SealResult, SealSettings, seal_bundle


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(evicap_cli, list(args), env=env)


def signing_key(directory: Path) -> Signer:
    """An unencrypted test key at directory/key.pem (its public half at key.pem.pub), made once."""
    path = directory / "key.pem"
    return load_key(path) if path.exists() else generate_key(path, None)


def manifest_for(artifacts: list[Artifact], fingerprint: str, started: datetime, ended: datetime) -> dict[str, Any]:
    return {
        "format": "evicap-bundle",
        "format_version": FORMAT_VERSION,
        "capture_id": "5d0c1e6a-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
        "case": {"case_id": "OP-9", "item_id": "E-9", "investigator": "Ana Ruiz", "organization": "Unit",
                 "authority": "warrant 9", "persona": None},
        "target": {"requested_url": "https://example.test/post/9", "final_url": "https://example.test/post/9",
                   "http_status": None, "redirects": []},
        "capture": {"status": "complete", "started_at": utc_iso(started), "ended_at": utc_iso(ended),
                    "local_timezone": "UTC", "utc_offset": "+00:00", "warnings": []},
        "environment": {"evicap_version": "test", "python": "3", "user_agent": "test",
                        "browser": {"path": "/usr/bin/chromium", "version": None, "source": "test"},
                        "viewport": {"width": 1, "height": 1}, "os": "linux", "hostname": "h", "proxy": None,
                        "options": {}},
        "artifacts": [a.to_json() for a in artifacts],
        "checksums": {"path": layout.CHECKSUMS, "sha256": "0" * 64},
        "seal": {"algorithm": "Ed25519", "signer_fingerprint": fingerprint, "signature": layout.SIGNATURE,
                 "public_key": layout.SIGNER_KEY, "custody_log": layout.CUSTODY},
    }  # fmt: skip


def sealed_bundle(
    directory: Path,
    signer: Signer,
    *,
    tsa: list[str] | None = None,
    tsa_ca: list[Path] | None = None,
    tsa_all: bool = False,
    started: datetime | None = None,
    ended: datetime | None = None,
) -> tuple[Path, SealResult]:
    """A sealed bundle at ``directory``; capture times default to the last two seconds."""
    now = datetime.now(timezone.utc)
    ended = ended or now
    started = started or ended - timedelta(seconds=2)
    page = directory / layout.DOM
    page.parent.mkdir(parents=True)
    page.write_text("<!doctype html><title>Post 9</title><p>the statement</p>\n", encoding="utf-8")
    artifacts = [Artifact(layout.DOM, "dom", "text/html", digest_file(page))]
    manifest = manifest_for(artifacts, signer.fingerprint, started, ended)
    manifest["checksums"]["sha256"] = write_checksums(directory, artifacts).sha256
    write_manifest(directory, manifest)
    settings = SealSettings.resolve(
        load_config(), key=signer.path, tsa=tsa or [], tsa_ca=tsa_ca or [], no_timestamp=not tsa, tsa_all=tsa_all
    )
    result = seal_bundle(directory, signer, settings, actor=Actor("Ana Ruiz", signer.fingerprint),
                         acquired={"url": "https://example.test/post/9"})  # fmt: skip
    return directory, result


def file_hashes(root: Path) -> dict[str, str]:
    """Path -> SHA-256 of every file under ``root``: verify must leave all of them as they were."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip
