"""`evicap verify` against a real sealed bundle and every kind of tampering, through the real CLI.

The bundle is built once per session from real files: a WARC written by warcio (an independent writer), a PNG,
HTML, MHTML, PDF, certificates and page facts, a schema-valid manifest, then sealed with the real seal code
(Ed25519, a local RFC 3161 authority, custody log). Each test tampers with its own copy.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from evicap.bundle import layout
from evicap.bundle.hashing import digest_file
from evicap.bundle.manifest import utc_iso, write_checksums, write_manifest
from evicap.bundle.model import Artifact
from evicap.cli.main import cli
from evicap.seal.custody import Actor
from evicap.seal.keys import generate_key
from evicap.seal.sealer import SealSettings, seal_bundle
from evicap.seal.timestamp import load_trust_anchors, request_timestamp
from tests.tsa import LocalTSA, tsa  # noqa: F401

URL = "http://127.0.0.1:9/article?id=7"
FINAL = "http://127.0.0.1:9/article/7"
CAPTURE_ID = "3f2b8a2e-1c4d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in ("EVICAP_CONFIG", "EVICAP_TRUSTED_KEYS", "EVICAP_TSA_CA"):
        monkeypatch.delenv(name, raising=False)


def _warc(path: Path, screenshot: Path) -> None:
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "test"}))
        redirect = StatusAndHeaders("301 Moved", [("Location", FINAL), ("Content-Length", "0")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(URL, "response", payload=io.BytesIO(b""),
                                                      http_headers=redirect))
        body = b"<html><body><h1>Statement</h1>" + b"<p>evidence text</p>" * 2000 + b"</body></html>"
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
                                   protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(FINAL, "response", payload=io.BytesIO(body),
                                                      http_headers=headers))
        with open(screenshot, "rb") as shot:
            writer.write_record(writer.create_warc_record(
                f"urn:evicap:{CAPTURE_ID}:screenshot-full.png", "resource", payload=shot,
                warc_content_type="image/png"))


def _manifest(artifacts: list[Artifact], fingerprint: str) -> dict[str, Any]:
    from datetime import datetime, timedelta, timezone

    started = datetime.now(timezone.utc) - timedelta(seconds=5)
    return {
        "format": "evicap-bundle",
        "format_version": "1.0",
        "capture_id": CAPTURE_ID,
        "case": {"case_id": "OP-1", "item_id": "E-1", "investigator": "Jane Roe", "organization": "Unit",
                 "authority": "warrant 42", "persona": None},
        "target": {"requested_url": URL, "final_url": FINAL, "http_status": 200,
                   "redirects": [{"url": URL, "status": 301, "location": FINAL}]},
        "capture": {"status": "complete", "started_at": utc_iso(started), "ended_at": utc_iso(started),
                    "local_timezone": "UTC", "utc_offset": "+00:00", "warnings": []},
        "environment": {"evicap_version": "test", "python": "3", "user_agent": "test",
                        "browser": {"path": "/usr/bin/chromium", "version": None, "source": "test"},
                        "viewport": {"width": 1, "height": 1}, "os": "linux", "hostname": "h", "proxy": None,
                        "options": {}},
        "artifacts": [a.to_json() for a in artifacts],
        "checksums": {"path": layout.CHECKSUMS, "sha256": "0" * 64},
        "seal": {"algorithm": "Ed25519", "signer_fingerprint": fingerprint, "signature": layout.SIGNATURE,
                 "public_key": layout.SIGNER_KEY, "timestamp": layout.TIMESTAMP, "custody_log": layout.CUSTODY},
    }


def build_bundle(root: Path, tsa_url: str | None, tsa_ca: Path, key_dir: Path) -> Path:
    """A complete sealed bundle at root/bundle; the signer's public key is key_dir/signing-key.pem.pub."""
    bundle = root / "bundle"
    art = bundle / layout.ARTIFACTS_DIR
    art.mkdir(parents=True)
    Image.new("RGB", (64, 48), (200, 30, 30)).save(bundle / layout.SCREENSHOT_FULL)
    (bundle / layout.DOM).write_text("<html><body><h1>Statement</h1></body></html>\n")
    (bundle / layout.MHTML).write_text("MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=b\r\n\r\n")
    (bundle / layout.PDF).write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    (bundle / layout.CERTIFICATES_PEM).write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (bundle / layout.PAGE_FACTS).write_text(json.dumps({"title": "Statement"}))
    _warc(bundle / layout.WARC, bundle / layout.SCREENSHOT_FULL)
    roles = [(layout.WARC, "warc", "application/warc"), (layout.SCREENSHOT_FULL, "screenshot", "image/png"),
             (layout.DOM, "dom", "text/html"), (layout.MHTML, "mhtml", "multipart/related"),
             (layout.PDF, "pdf", "application/pdf"),
             (layout.CERTIFICATES_PEM, "certificates", "application/x-pem-file"),
             (layout.PAGE_FACTS, "page-facts", "application/json")]
    artifacts = [Artifact(rel, role, media, digest_file(bundle / rel),
                          f"urn:evicap:{CAPTURE_ID}:screenshot-full.png" if role == "screenshot" else None)
                 for rel, role, media in roles]
    signer = generate_key(key_dir / "signing-key.pem", None)
    manifest = _manifest(artifacts, signer.fingerprint)
    manifest["checksums"]["sha256"] = write_checksums(bundle, artifacts).sha256
    if tsa_url is None:
        del manifest["seal"]["timestamp"]
    write_manifest(bundle, manifest)
    settings = SealSettings(key=key_dir / "signing-key.pem", key_is_default=False,
                            tsa=(tsa_url,) if tsa_url else (), tsa_ca=(tsa_ca,), no_timestamp=tsa_url is None)
    result = seal_bundle(bundle, signer, settings, actor=Actor("Jane Roe", signer.fingerprint),
                         acquired={"url": URL})
    assert result.timestamped == (tsa_url is not None), result.warnings
    return bundle


class Sealed:
    """The pristine bundle and what a recipient needs to check it."""

    def __init__(self, bundle: Path, signer_pub: Path, authority: LocalTSA) -> None:
        self.bundle, self.signer_pub, self.tsa = bundle, signer_pub, authority


@pytest.fixture(scope="session")
def sealed(tmp_path_factory: pytest.TempPathFactory, tsa: LocalTSA) -> Sealed:  # noqa: F811
    root = tmp_path_factory.mktemp("pristine")
    bundle = build_bundle(root, tsa.url(), tsa.ca_pem, root)
    return Sealed(bundle, root / "signing-key.pem.pub", tsa)


@pytest.fixture
def copy(sealed: Sealed, tmp_path: Path) -> Path:
    target = tmp_path / "case" / "bundle"
    shutil.copytree(sealed.bundle, target, symlinks=True)
    return target


Verify = Callable[..., tuple[int, dict[str, Any], str]]


@pytest.fixture
def verify(sealed: Sealed) -> Verify:
    """Run `evicap verify PATH --json` as a recipient who trusts the signer and the TSA; (exit, report, stderr)."""

    def run(path: Path, *extra: str, trust: bool = True) -> tuple[int, dict[str, Any], str]:
        args = ["verify", str(path), "--json", "--tsa-ca", str(sealed.tsa.ca_pem), *extra]
        if trust:
            args += ["--trusted-key", str(sealed.signer_pub)]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert "Traceback" not in result.stderr
        report = json.loads(result.stdout.splitlines()[0]) if result.stdout.strip() else {}
        return result.exit_code, report, result.stderr

    return run


def failures(report: dict[str, Any]) -> dict[str, str]:
    """name[:subject] -> reason of every failed check."""
    return {(c["name"] + (":" + c["subject"] if c["subject"] else "")): c["reason"]
            for c in report["checks"] if c["status"] == "fail"}


def test_pristine_bundle_passes_every_check(verify: Verify, copy: Path) -> None:
    code, report, stderr = verify(copy)
    assert code == 0, failures(report)
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    for name in ("manifest", "signature", "signer-trust", "timestamp", "custody", "checksums", "artifact", "warc",
                 "warc-records"):
        assert statuses[name] == "pass", (name, report["checks"])
    assert "VERIFIED" in stderr


def test_human_output_shows_a_table_and_verdict(sealed: Sealed, copy: Path) -> None:
    result = CliRunner().invoke(cli, ["verify", str(copy), "--trusted-key", str(sealed.signer_pub),
                                      "--tsa-ca", str(sealed.tsa.ca_pem)])
    assert result.exit_code == 0
    assert "signer-trust" in result.stderr and "VERIFIED" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("rel", [layout.WARC, layout.SCREENSHOT_FULL, layout.DOM, layout.MHTML, layout.PDF,
                                 layout.CERTIFICATES_PEM, layout.PAGE_FACTS])
def test_flipped_byte_in_each_artifact_fails(verify: Verify, copy: Path, rel: str) -> None:
    path = copy / rel
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    code, report, _ = verify(copy)
    assert code == 1
    assert "content altered" in failures(report)[f"artifact:{rel}"]
    if rel == layout.WARC:
        assert f"warc:{rel}" in failures(report)  # the record itself no longer inflates or digests


def test_truncated_warc_is_named(verify: Verify, copy: Path) -> None:
    path = copy / layout.WARC
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - 300)
    code, report, _ = verify(copy)
    assert code == 1
    reason = failures(report)[f"warc:{layout.WARC}"]
    assert "truncated" in reason or "cut short" in reason
    assert "size is" in failures(report)[f"artifact:{layout.WARC}"]


def test_deleted_artifact_fails(verify: Verify, copy: Path) -> None:
    (copy / layout.PDF).unlink()
    code, report, _ = verify(copy)
    assert code == 1
    assert failures(report)[f"artifact:{layout.PDF}"] == "missing"


def test_edited_manifest_breaks_signature_timestamp_and_custody(verify: Verify, copy: Path) -> None:
    path = copy / layout.MANIFEST
    path.write_text(path.read_text().replace("Jane Roe", "John Doe"))
    code, report, _ = verify(copy)
    assert code == 1
    failed = failures(report)
    assert "does not verify" in failed["signature"]
    assert "imprint" in failed["timestamp:manifest.tsr"].lower()
    assert "different manifest" in failed["custody"]


def test_removed_signature_fails(verify: Verify, copy: Path) -> None:
    (copy / layout.SIGNATURE).unlink()
    code, report, _ = verify(copy)
    assert code == 1
    assert "manifest.sig: missing" in failures(report)["signature"]


def test_manifest_resigned_by_another_key_is_unknown_signer(verify: Verify, copy: Path, tmp_path: Path) -> None:
    other = generate_key(tmp_path / "other.pem", None)
    manifest = copy / layout.MANIFEST
    data = json.loads(manifest.read_text())
    data["seal"]["signer_fingerprint"] = other.fingerprint
    data["case"]["investigator"] = "Mallory"
    manifest.write_text(json.dumps(data, indent=2) + "\n")
    (copy / layout.SIGNATURE).write_bytes(other.sign(manifest.read_bytes()))
    (copy / layout.SIGNER_KEY).write_bytes(other.public_pem)
    code, report, _ = verify(copy)
    assert code == 1
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["signature"] == "pass"  # a valid signature ...
    assert f"unknown key {other.fingerprint}" in failures(report)["signer-trust"]  # ... by a key nobody trusts


def test_valid_signature_without_any_trusted_key_fails_and_says_so(verify: Verify, copy: Path) -> None:
    code, report, _ = verify(copy, trust=False)
    assert code == 1
    assert "no trusted keys given" in failures(report)["signer-trust"]


def test_timestamp_token_for_other_data_fails(verify: Verify, copy: Path, sealed: Sealed) -> None:
    outcome = request_timestamp(b"some other document", [sealed.tsa.url()], load_trust_anchors([sealed.tsa.ca_pem]))
    assert outcome.stamp is not None
    (copy / layout.TIMESTAMP).write_bytes(outcome.stamp.token)
    code, report, _ = verify(copy)
    assert code == 1
    assert "imprint" in failures(report)["timestamp:manifest.tsr"].lower()


def test_removed_timestamp_token_is_detected(verify: Verify, copy: Path) -> None:
    (copy / layout.TIMESTAMP).unlink()
    code, report, _ = verify(copy)
    assert code == 1
    assert "removed" in failures(report)["timestamp:manifest.tsr"]


def _custody_lines(copy: Path) -> list[bytes]:
    return (copy / layout.CUSTODY).read_bytes().splitlines(keepends=True)


def test_dropped_custody_event_fails(verify: Verify, copy: Path) -> None:
    lines = _custody_lines(copy)
    (copy / layout.CUSTODY).write_bytes(b"".join(lines[:1] + lines[2:]))
    code, report, _ = verify(copy)
    assert code == 1
    assert "seq" in failures(report)["custody"]


def test_reordered_custody_events_fail(verify: Verify, copy: Path) -> None:
    lines = _custody_lines(copy)
    assert len(lines) >= 3
    (copy / layout.CUSTODY).write_bytes(b"".join([lines[0], lines[2], lines[1], *lines[3:]]))
    code, report, _ = verify(copy)
    assert code == 1
    assert "reordered" in failures(report)["custody"]


def test_edited_custody_event_fails(verify: Verify, copy: Path) -> None:
    lines = _custody_lines(copy)
    event = json.loads(lines[1])
    event["time"] = "2020-01-01T00:00:00.000000Z"
    lines[1] = (json.dumps(event) + "\n").encode()
    (copy / layout.CUSTODY).write_bytes(b"".join(lines))
    code, report, _ = verify(copy)
    assert code == 1
    assert "line 2" in failures(report)["custody"]


def test_artifact_path_escaping_the_bundle_is_refused(verify: Verify, copy: Path) -> None:
    secret = copy.parent / "outside.txt"
    secret.write_text("not evidence")
    manifest = copy / layout.MANIFEST
    data = json.loads(manifest.read_text())
    data["artifacts"][1]["path"] = "../outside.txt"
    manifest.write_text(json.dumps(data, indent=2) + "\n")
    code, report, _ = verify(copy)
    assert code == 1
    assert "escapes the bundle" in failures(report)["artifact:../outside.txt"]


def test_artifact_replaced_by_symlink_is_not_followed(verify: Verify, copy: Path) -> None:
    outside = copy.parent / "dom.html"
    shutil.copy(copy / layout.DOM, outside)  # identical bytes: only the link itself can fail the check
    (copy / layout.DOM).unlink()
    os.symlink(outside, copy / layout.DOM)
    code, report, _ = verify(copy)
    assert code == 1
    assert "symbolic link" in failures(report)[f"artifact:{layout.DOM}"]


def test_artifacts_directory_replaced_by_symlink_is_not_followed(verify: Verify, copy: Path) -> None:
    outside = copy.parent / "elsewhere"
    shutil.move(copy / layout.ARTIFACTS_DIR, outside)
    os.symlink(outside, copy / layout.ARTIFACTS_DIR, target_is_directory=True)
    code, report, _ = verify(copy)
    assert code == 1
    assert "'artifacts' is a symbolic link" in failures(report)[f"artifact:{layout.DOM}"]


def test_unlisted_file_fails_by_default_and_is_only_reported_with_lenient(verify: Verify, copy: Path) -> None:
    (copy / layout.ARTIFACTS_DIR / "planted.txt").write_text("added later")
    for extra in ((), ("--strict",)):  # --strict is the default, still accepted
        code, report, _ = verify(copy, *extra)
        assert code == 1
        reason = failures(report)["unlisted:artifacts/planted.txt"]
        assert "listed neither in the manifest nor in a custody event" in reason
    code, report, _ = verify(copy, "--lenient")
    assert code == 0
    unlisted = [c for c in report["checks"] if c["name"] == "unlisted"]
    assert [(c["subject"], c["status"]) for c in unlisted] == [("artifacts/planted.txt", "not-checked")]


def test_edited_checksums_file_fails(verify: Verify, copy: Path) -> None:
    path = copy / layout.CHECKSUMS
    path.write_text(path.read_text().replace("artifacts/page.pdf", "artifacts/other.pdf"))
    code, report, _ = verify(copy)
    assert code == 1
    assert "SHA256SUMS does not match" in failures(report)["checksums"]


@pytest.mark.parametrize("junk", [b"\x00\xff\xfe garbage \x89PNG", b"[" * 200_000, b'{"artifacts": 5}', b"[]"],
                         ids=["binary", "deep-nesting", "wrong-types", "not-object"])
def test_garbage_manifest_is_a_failed_check(verify: Verify, copy: Path, junk: bytes) -> None:
    (copy / layout.MANIFEST).write_bytes(junk)
    code, report, _ = verify(copy)
    assert code == 1
    assert "manifest" in failures(report)


def test_absurdly_large_manifest_is_refused_without_reading(verify: Verify, copy: Path) -> None:
    with open(copy / layout.MANIFEST, "r+b") as handle:
        handle.truncate(100 * 1024**3)  # sparse: 100 GiB on paper
    code, report, _ = verify(copy)
    assert code == 1
    assert "more than" in failures(report)["manifest"]


def test_not_a_bundle_cannot_run(verify: Verify, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, stderr = verify(tmp_path / "empty")
    assert code == 2
    assert "not an evicap bundle" in stderr
    code, _, stderr = verify(tmp_path / "nowhere")
    assert code == 2


def test_one_failing_bundle_among_several_fails_the_run(sealed: Sealed, copy: Path, tmp_path: Path) -> None:
    second = tmp_path / "second"
    shutil.copytree(sealed.bundle, second, symlinks=True)
    (second / layout.DOM).write_text("rewritten")
    result = CliRunner().invoke(cli, ["verify", str(copy), str(second), "--json", "--trusted-key",
                                      str(sealed.signer_pub), "--tsa-ca", str(sealed.tsa.ca_pem)])
    assert result.exit_code == 1
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["ok"] for r in reports] == [True, False]


def test_untimestamped_bundle_says_so_plainly(tmp_path: Path, sealed: Sealed) -> None:
    bundle = build_bundle(tmp_path, None, sealed.tsa.ca_pem, tmp_path)
    result = CliRunner().invoke(cli, ["verify", str(bundle), "--json", "--trusted-key",
                                      str(tmp_path / "signing-key.pem.pub")])
    assert result.exit_code == 0
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "timestamp")
    assert check["status"] == "not-checked"
    assert "not timestamped" in check["reason"]
    assert str(uuid.UUID(CAPTURE_ID))  # the bundle built is the same shape as the pristine one



def _edit_warc_body(path: Path) -> None:
    """Change one letter of the page's HTML inside the WARC, keeping the file a well-formed gzip WARC: the kind
    of edit someone would make to put words in a page, not a random corruption."""
    plain = gzip.decompress(path.read_bytes())
    assert plain.count(b"evidence text") > 1
    path.write_bytes(gzip.compress(plain.replace(b"evidence text", b"evidEnce text", 1)))


def _warc_check(report: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == "warc")


def test_trusted_seal_vouches_for_record_digests_and_deep_recomputes_them(verify: Verify, copy: Path) -> None:
    code, report, _ = verify(copy)
    assert code == 0
    assert "record digests are the sealed ones" in _warc_check(report)["reason"]
    code, report, _ = verify(copy, "--deep")
    assert code == 0
    reason = _warc_check(report)["reason"]
    assert "record digests recomputed and match" in reason
    assert int(reason.split("; ")[1].split()[0]) >= 4  # block + payload of both responses, block of the resource


def test_untrusted_signer_gets_record_digests_recomputed(verify: Verify, copy: Path) -> None:
    code, report, _ = verify(copy, trust=False)
    assert code == 1  # the signer is unknown
    assert "recomputed and match" in _warc_check(report)["reason"]


def test_edited_warc_record_is_named_by_the_second_read(verify: Verify, copy: Path) -> None:
    _edit_warc_body(copy / layout.WARC)
    code, report, _ = verify(copy)
    assert code == 1
    failed = failures(report)
    assert f"artifact:{layout.WARC}" in failed  # its size and digests differ from the signed ones
    assert f"response {FINAL}): payload digest does not match" in failed[f"warc:{layout.WARC}"]


def test_wrong_record_digest_sealed_in_is_found_by_deep(
    tmp_path: Path, sealed: Sealed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that got a record digest wrong before sealing: the file is exactly what was signed, so only
    --deep (recomputing every record digest) can tell."""

    honest_warc = _warc

    def faulty_warc(path: Path, screenshot: Path) -> None:
        honest_warc(path, screenshot)
        _edit_warc_body(path)

    monkeypatch.setattr(sys.modules[__name__], "_warc", faulty_warc)
    bundle = build_bundle(tmp_path, None, sealed.tsa.ca_pem, tmp_path)
    args = ["verify", str(bundle), "--json", "--trusted-key", str(tmp_path / "signing-key.pem.pub")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0
    assert "sealed ones" in _warc_check(json.loads(result.stdout))["reason"]
    result = CliRunner().invoke(cli, [*args, "--deep"])
    assert result.exit_code == 1
    assert "payload digest does not match" in failures(json.loads(result.stdout))[f"warc:{layout.WARC}"]

# --- A real capture (real Chromium, local server, local TSA) must verify clean, and stop verifying when touched.


@pytest.fixture(scope="session")
def captured(run: Any, browser: Any, browser_info: Any, tsa: LocalTSA,  # noqa: F811
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bundle, signer public key) of one real capture of a small page with an image and a redirect."""
    from evicap.capture.options import CaptureOptions
    from evicap.capture.staged import Sealing
    from evicap.config import load_config
    from tests.integration.capture_helpers import capture_sealed
    from tests.servers import LocalServer

    root = tmp_path_factory.mktemp("captured")
    server = LocalServer().start()
    try:
        png = io.BytesIO()
        Image.new("RGB", (8, 8), (0, 90, 200)).save(png, format="PNG")
        server.route("/img.png", body=png.getvalue(), content_type="image/png")
        server.route("/post", body="<html><title>Post</title><h1>A statement</h1><img src='/img.png'></html>",
                     content_type="text/html")
        server.route("/start", status=302, headers={"Location": "/post"}, body="")
        signer = generate_key(root / "signing-key.pem", None)
        settings = SealSettings.resolve(load_config(env={"XDG_CONFIG_HOME": str(root)}), key=root / "signing-key.pem",
                                        tsa=[tsa.url()], tsa_ca=[tsa.ca_pem])
        result = run(capture_sealed(browser, server.url("/start"), CaptureOptions(investigator="Jane Roe", timeout=30),
                                 root / "out", browser_info=browser_info,
                                 sealing=Sealing(signer=signer, settings=settings, actor_name="Jane Roe")))
    finally:
        server.stop()
    assert result.status == "complete", result.error
    return Path(str(result.bundle)), root / "signing-key.pem.pub"


def test_real_capture_verifies_then_fails_on_any_flipped_byte(
    captured: tuple[Path, Path], tsa: LocalTSA, tmp_path: Path  # noqa: F811
) -> None:
    bundle, pub = captured
    args = ["--json", "--trusted-key", str(pub), "--tsa-ca", str(tsa.ca_pem)]
    result = CliRunner().invoke(cli, ["verify", str(bundle), *args])
    report = json.loads(result.stdout)
    assert result.exit_code == 0, failures(report)
    assert {c["name"]: c["status"] for c in report["checks"]}["timestamp"] == "pass"
    listed = [a["path"] for a in json.loads((bundle / layout.MANIFEST).read_text())["artifacts"]]
    assert layout.WARC in listed and layout.SCREENSHOT_FULL in listed
    for rel in listed:
        copy = tmp_path / rel.replace("/", "_")
        shutil.copytree(bundle, copy, symlinks=True)
        data = bytearray((copy / rel).read_bytes())
        data[len(data) // 2] ^= 0x20
        (copy / rel).write_bytes(bytes(data))
        result = CliRunner().invoke(cli, ["verify", str(copy), *args])
        assert result.exit_code == 1, rel
        assert f"artifact:{rel}" in failures(json.loads(result.stdout)), rel


def test_case_directory_is_handed_to_the_index_verifier(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    (case / layout.INDEX).write_text('{"not": "an index"}')
    result = CliRunner().invoke(cli, ["verify", str(case), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout.splitlines()[0])
    assert report["bundle"].endswith(layout.INDEX)
    assert [c["status"] for c in report["checks"] if c["name"] == "case-index"] == ["fail"]
