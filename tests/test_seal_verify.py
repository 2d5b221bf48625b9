"""The seal as a recipient and an attacker see it, through the real CLI: `evicap timestamp`, `evicap verify`, and the
OpenSSL commands of docs/verify-without-evicap.md.

Every kind of authority in the local matrix must pass both evicap and `openssl ts -verify`; every way of cutting the
custody log or swapping tokens must fail with a reason naming the file; verify must leave the bundle untouched;
token time is judged against both ends of the capture on the authority's time scale.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from evicap.seal import timestamp as timestamp_module
from evicap.seal.custody import Actor, append_event, read_events
from evicap.seal.keys import Signer
from evicap.seal.timestamp import load_trust_anchors, request_timestamp
from tests.sealed import cli, file_hashes, sealed_bundle, signing_key
from tests.test_verify_without_evicap import block_with, run_block
from tests.tsa import MATRIX, AuthoritySpec, LocalTSA, isolated_config, tsa  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_config")


def verify(bundle: Path, signer: Signer, cas: list[Path], *extra: str) -> tuple[int, dict[str, Any]]:
    """`evicap verify --json` as a recipient trusting ``signer`` and ``cas``; the bundle must not change."""
    before = file_hashes(bundle)
    args = ["verify", str(bundle), "--json", "--trusted-key", f"{signer.path}.pub"]
    for ca in cas:
        args += ["--tsa-ca", str(ca)]
    result = cli(*args, *extra)
    assert "Traceback" not in result.output
    assert file_hashes(bundle) == before, "verify modified the bundle"
    return result.exit_code, json.loads(result.stdout.splitlines()[0])


def checks(report: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["name"] == name]


def failed(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"] + (f":{c['subject']}" if c["subject"] else ""): c["reason"]
            for c in report["checks"] if c["status"] == "fail"}  # fmt: skip


def openssl_step5(bundle: Path, ca: Path, untrusted: Path | None, tmp_path: Path) -> str:
    """Run step 5 of docs/verify-without-evicap.md on a copy holding the recipient's CA files."""
    work = tmp_path / "recipient"
    shutil.copytree(bundle, work)
    shutil.copy(ca, work / "tsa-ca.pem")
    if untrusted is not None:
        shutil.copy(untrusted, work / "tsa-untrusted.pem")
    result = run_block(block_with("openssl ts -verify"), work)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.mark.parametrize("spec", MATRIX, ids=[spec.name for spec in MATRIX])
def test_every_kind_of_authority_verifies_with_evicap_and_openssl(
    tsa: LocalTSA, spec: AuthoritySpec, tmp_path: Path  # noqa: F811
) -> None:
    signer = signing_key(tmp_path)
    bundle, _ = sealed_bundle(tmp_path / "bundle", signer)
    authority = tsa.matrix_signer(spec.name)
    needs = authority.verifier_needs
    cas = [tsa.ca_pem] if needs is None else [tsa.ca_pem, needs]
    args = ["timestamp", str(bundle), "--tsa", tsa.matrix_url(spec.name), "--key", str(signer.path)]
    stamped = cli(*args, *(a for ca in cas for a in ("--tsa-ca", str(ca))))
    assert stamped.exit_code == 0, stamped.output
    assert "is UNENCRYPTED" in stamped.stderr
    code, report = verify(bundle, signer, cas)
    assert code == 0, failed(report)
    [check] = checks(report, "timestamp")
    assert check["subject"] == "manifest.tsr" and f"CN=evicap test TSA ({spec.name})" in check["reason"]
    assert ("ESSCertID (sha1)" if spec.ess == "sha1" else "ESSCertIDv2 (sha256)") in check["reason"]
    accuracy = "accuracy ±1 s" if spec.accuracy else "accuracy ±0 s"
    assert accuracy in check["reason"] and "token added after sealing" in check["reason"]
    text = openssl_step5(bundle, tsa.ca_pem, needs, tmp_path)
    assert text.count("Verification: OK") == 1 and f"evicap test TSA ({spec.name})" in text


def test_tsa_all_keeps_and_verifies_a_token_from_every_reachable_authority(tsa: LocalTSA, tmp_path: Path) -> None:  # noqa: F811
    signer = signing_key(tmp_path)
    bundle, _ = sealed_bundle(tmp_path / "bundle", signer)
    urls = [tsa.url(), tsa.down_url, tsa.matrix_url("second")]
    result = cli("timestamp", str(bundle), *(a for u in urls for a in ("--tsa", u)), "--tsa-ca", str(tsa.ca_pem),
                 "--tsa-all", "--key", str(signer.path))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "connection refused" in result.stderr and "manifest.tsr, manifest.2.tsr" in result.stderr
    stamped = [e for e in read_events(bundle / "custody.jsonl") if e.action == "timestamped"]
    assert [(e.details["tsa"], e.details["token_file"]) for e in stamped] == [
        (tsa.url(), "manifest.tsr"), (tsa.matrix_url("second"), "manifest.2.tsr")]
    assert [e.details["authority"] for e in stamped] == ["CN=evicap test TSA (good)", "CN=evicap test TSA (second)"]
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 0, failed(report)
    assert [c["subject"] for c in checks(report, "timestamp")] == ["manifest.tsr", "manifest.2.tsr"]
    assert openssl_step5(bundle, tsa.ca_pem, None, tmp_path).count("Verification: OK") == 2


@pytest.fixture
def stamped(tsa: LocalTSA, tmp_path: Path) -> tuple[Path, Signer]:  # noqa: F811
    """A sealed, timestamped bundle with two later custody events (5 events: seq 0..4)."""
    signer = signing_key(tmp_path)
    bundle, result = sealed_bundle(tmp_path / "bundle", signer, tsa=[tsa.url()], tsa_ca=[tsa.ca_pem])
    assert result.timestamped
    for to in ("Prosecutor", "Court"):
        added = cli("custody", "add", str(bundle), "--action", "transferred", "--to", to, "--key", str(signer.path))
        assert added.exit_code == 0, added.output
    return bundle, signer


def _lines(bundle: Path) -> list[bytes]:
    return (bundle / "custody.jsonl").read_bytes().splitlines(keepends=True)


def test_stamped_bundle_verifies(stamped: tuple[Path, Signer], tsa: LocalTSA) -> None:  # noqa: F811
    bundle, signer = stamped
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 0, failed(report)
    assert "custody.head signs its last event" in checks(report, "custody")[0]["reason"]


def test_dropping_the_last_custody_events_fails(stamped: tuple[Path, Signer], tsa: LocalTSA) -> None:  # noqa: F811
    bundle, signer = stamped
    (bundle / "custody.jsonl").write_bytes(b"".join(_lines(bundle)[:-2]))
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 1
    assert failed(report) == {"custody": "custody.head: names seq 4 but the log ends at seq 2: events cut from its end"}


def test_cutting_the_custody_log_to_its_first_line_fails(stamped: tuple[Path, Signer], tsa: LocalTSA) -> None:  # noqa: F811
    bundle, signer = stamped
    (bundle / "custody.jsonl").write_bytes(_lines(bundle)[0])
    (bundle / "custody.head").unlink()
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 1
    assert "custody.head: missing" in failed(report)["custody"]
    assert "manifest.tsr is not recorded in the custody log" in failed(report)["timestamp:manifest.tsr"]


def test_removing_the_token_with_its_event_fails(tsa: LocalTSA, tmp_path: Path) -> None:  # noqa: F811
    signer = signing_key(tmp_path)
    bundle, _ = sealed_bundle(tmp_path / "bundle", signer, tsa=[tsa.url()], tsa_ca=[tsa.ca_pem])
    lines = _lines(bundle)
    assert json.loads(lines[-1])["action"] == "timestamped"
    (bundle / "manifest.tsr").unlink()
    (bundle / "custody.jsonl").write_bytes(b"".join(lines[:-1]))
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 1
    assert "events cut from its end" in failed(report)["custody"]


def test_removing_only_the_token_fails(stamped: tuple[Path, Signer], tsa: LocalTSA) -> None:  # noqa: F811
    bundle, signer = stamped
    (bundle / "manifest.tsr").unlink()
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 1
    assert failed(report)["timestamp:manifest.tsr"].startswith("manifest.tsr removed: custody seq 2 records a token "
                                                               "from CN=evicap test TSA (good)")


def test_token_that_no_event_names_fails(stamped: tuple[Path, Signer], tsa: LocalTSA) -> None:  # noqa: F811
    bundle, signer = stamped
    data = (bundle / "manifest.json").read_bytes()
    extra = request_timestamp(data, [tsa.matrix_url("second")], load_trust_anchors([tsa.ca_pem])).stamp
    assert extra is not None
    (bundle / "manifest.2.tsr").write_bytes(extra.token)
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 1
    assert "manifest.2.tsr is not recorded in the custody log" in failed(report)["timestamp:manifest.2.tsr"]


def test_valid_token_from_another_authority_swapped_in_fails(stamped: tuple[Path, Signer], tsa: LocalTSA) -> None:  # noqa: F811
    bundle, signer = stamped
    data = (bundle / "manifest.json").read_bytes()
    other = request_timestamp(data, [tsa.matrix_url("second")], load_trust_anchors([tsa.ca_pem])).stamp
    assert other is not None
    (bundle / "manifest.tsr").write_bytes(other.token)
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 1
    assert failed(report) == {"timestamp:manifest.tsr": (
        "manifest.tsr is signed by CN=evicap test TSA (second) but custody seq 2 recorded a token from "
        "CN=evicap test TSA (good): swapped")}


def test_another_token_from_the_same_authority_swapped_in_fails(stamped: tuple[Path, Signer], tsa: LocalTSA) -> None:  # noqa: F811
    bundle, signer = stamped
    data = (bundle / "manifest.json").read_bytes()
    again = request_timestamp(data, [tsa.url()], load_trust_anchors([tsa.ca_pem])).stamp
    assert again is not None
    (bundle / "manifest.tsr").write_bytes(again.token)
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 1
    assert "is not the token custody seq 2 recorded from CN=evicap test TSA (good)" in failed(report)[
        "timestamp:manifest.tsr"]


def test_bundle_from_before_signed_heads_still_verifies(tsa: LocalTSA, tmp_path: Path) -> None:  # noqa: F811
    """Bundles handed out earlier: one manifest.tsr, no custody.head, events without custody_head or files."""
    signer = signing_key(tmp_path)
    bundle, _ = sealed_bundle(tmp_path / "bundle", signer)
    data = (bundle / "manifest.json").read_bytes()
    stamp = request_timestamp(data, [tsa.url()], load_trust_anchors([tsa.ca_pem])).stamp
    assert stamp is not None
    (bundle / "manifest.tsr").write_bytes(stamp.token)
    log = bundle / "custody.jsonl"
    log.unlink()
    actor = Actor("Ana Ruiz", signer.fingerprint)
    digest = hashlib.sha256(data).hexdigest()
    append_event(log, signer, actor, "acquired", {"url": "https://example.test/post/9"}, digest)
    append_event(log, signer, actor, "sealed", {"algorithm": "Ed25519"}, digest)
    append_event(log, signer, actor, "timestamped", {
        "tsa": tsa.url(), "authority": stamp.info.authority, "token_file": "manifest.tsr",
        "token_sha256": hashlib.sha256(stamp.token).hexdigest(), "clock_offset_ms": 0}, digest)
    (bundle / "custody.head").unlink()
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 0, failed(report)
    assert "from before signed heads" in checks(report, "custody")[0]["reason"]


# -- time ------------------------------------------------------------------------------------------------------


def test_capture_that_ended_after_the_token_fails(
    tsa: LocalTSA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """ended_at 30 s after the authority's time, on a clock the authority found right: impossible, so it fails."""
    signer = signing_key(tmp_path)
    now = datetime.now(timezone.utc)
    bundle, result = sealed_bundle(tmp_path / "bundle", signer, tsa=[tsa.url()], tsa_ca=[tsa.ca_pem],
                                   started=now - timedelta(seconds=5), ended=now + timedelta(seconds=30))
    assert result.timestamped and abs(result.clock_offset_seconds or 0) < 5
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 1
    reason = failed(report)["timestamp:manifest.tsr"]
    assert " s before the capture ended" in reason and "more than accuracy ±1 s + tolerance 10 s" in reason
    gap = float(reason.split(" s before the capture ended")[0].rsplit(" ", 1)[1])
    assert 25 < gap < 31
    assert "capturing clock offset" in reason
    code, report = verify(bundle, signer, [tsa.ca_pem], "--clock-tolerance", "60")
    assert code == 0, failed(report)
    monkeypatch.setenv("EVICAP_CLOCK_TOLERANCE", "45")  # the setting, when no option is given
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 0 and "tolerance 45 s" in checks(report, "timestamp")[0]["reason"]


def test_capture_on_a_clock_two_minutes_fast_verifies_and_says_the_offset(
    tsa: LocalTSA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """The capturing machine's clock runs 2 min ahead: its capture times and its reading at sealing both say so."""
    signer = signing_key(tmp_path)
    fast = datetime.now(timezone.utc) + timedelta(seconds=120)
    monkeypatch.setattr(timestamp_module, "local_clock", lambda: time.time() + 120)
    bundle, result = sealed_bundle(tmp_path / "bundle", signer, tsa=[tsa.url()], tsa_ca=[tsa.ca_pem], ended=fast)
    monkeypatch.undo()
    assert result.timestamped and [w.code for w in result.warnings] == ["clock-offset"]
    [event] = [e for e in read_events(bundle / "custody.jsonl") if e.action == "timestamped"]
    assert -125_000 < event.details["clock_offset_ms"] < -115_000 and event.details["at_sealing"] is True
    assert event.details["clock"]["source"] in ("adjtimex", "unavailable")
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 0, failed(report)
    reason = checks(report, "timestamp")[0]["reason"]
    assert "capturing clock offset -1" in reason and "measured against the authority and applied" in reason
    assert "after the capture ended" in reason


def test_manifest_records_the_clock_state(tmp_path: Path) -> None:
    from evicap.bundle.manifest import validate
    from evicap.seal.clock import clock_state

    state = clock_state()
    assert state["source"] in ("adjtimex", "unavailable") and state["synchronized"] in (True, False, None)
    signer = signing_key(tmp_path)
    bundle, _ = sealed_bundle(tmp_path / "bundle", signer)
    manifest = json.loads((bundle / "manifest.json").read_bytes())
    manifest["capture"]["clock"] = state
    manifest["seal"]["key_protection"] = signer.protection
    validate(manifest)


# -- keys ------------------------------------------------------------------------------------------------------


def test_signing_commands_never_create_a_key(tsa: LocalTSA, tmp_path: Path, isolated_config: Path) -> None:  # noqa: F811
    bundle, _ = sealed_bundle(tmp_path / "bundle", signing_key(tmp_path))
    before = file_hashes(bundle)
    for args in (("custody", "add", str(bundle), "--action", "note", "--note", "x"),
                 ("timestamp", str(bundle), "--tsa", tsa.url(), "--tsa-ca", str(tsa.ca_pem))):  # fmt: skip
        result = cli(*args)
        assert result.exit_code == 2, result.output
        assert "error: no signing key: none configured" in result.stderr
        assert "evicap keys generate --out" in " ".join(result.stderr.split())
    assert not (isolated_config / "signing-key.pem").exists()
    assert file_hashes(bundle) == before


def test_key_open_to_others_is_refused_with_the_fix(tmp_path: Path) -> None:
    signer = signing_key(tmp_path)
    bundle, _ = sealed_bundle(tmp_path / "bundle", signer)
    signer.path.chmod(0o640)
    result = cli("custody", "add", str(bundle), "--action", "note", "--note", "x", "--key", str(signer.path))
    assert result.exit_code == 2 and result.stderr.count("error:") == 1
    text = " ".join(result.stderr.split())
    assert "open to group or others (mode 0640)" in text and f"chmod 600 {signer.path}" in text


def test_unencrypted_key_is_named_so(tmp_path: Path) -> None:
    signer = signing_key(tmp_path)
    shown = cli("keys", "show", str(signer.path))
    assert shown.exit_code == 0 and shown.stdout.strip() == signer.fingerprint
    assert "UNENCRYPTED" in shown.stderr
    made = cli("keys", "generate", "--out", str(tmp_path / "enc.pem"), env={"EVICAP_KEY_PASSPHRASE": "pw"})
    assert made.exit_code == 0
    assert "encrypted with a passphrase" in cli("keys", "show", str(tmp_path / "enc.pem.pub")).stderr
    bundle, _ = sealed_bundle(tmp_path / "bundle", signer)
    added = cli("custody", "add", str(bundle), "--action", "note", "--note", "x", "--key", str(signer.path))
    assert added.exit_code == 0 and "is UNENCRYPTED" in added.stderr
    sealed_event = read_events(bundle / "custody.jsonl")[1]
    assert sealed_event.details["key_protection"] == "unencrypted-file-mode-0600"


def test_doctor_says_whether_the_key_is_protected(isolated_config: Path, tmp_path: Path) -> None:  # noqa: F811
    key = isolated_config / "signing-key.pem"
    assert cli("keys", "generate", "--out", str(key), "--unencrypted").exit_code == 0
    shown = cli("doctor", "--output", str(tmp_path / "out"))
    assert f"{key} is UNENCRYPTED (file mode 0600 only)" in " ".join(shown.stderr.split())
    key.chmod(0o644)
    opened = cli("doctor", "--output", str(tmp_path / "out"))
    assert opened.exit_code == 2 and f"chmod 600 {key}" in " ".join(opened.stderr.split())


def test_timestamp_add_puts_a_second_authoritys_token_beside_the_first(
    stamped: tuple[Path, Signer], tsa: LocalTSA  # noqa: F811
) -> None:
    bundle, signer = stamped
    again = cli("timestamp", str(bundle), "--tsa", tsa.matrix_url("second"), "--tsa-ca", str(tsa.ca_pem),
                "--key", str(signer.path))  # fmt: skip
    assert again.exit_code == 1 and "pass --add" in " ".join(again.stderr.split())
    added = cli("timestamp", str(bundle), "--add", "--tsa", tsa.matrix_url("second"), "--tsa-ca", str(tsa.ca_pem),
                "--key", str(signer.path))  # fmt: skip
    assert added.exit_code == 0, added.output
    assert (bundle / "manifest.2.tsr").is_file()
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 0, failed(report)
    assert [c["subject"] for c in checks(report, "timestamp")] == ["manifest.tsr", "manifest.2.tsr"]


@pytest.mark.parametrize(
    ("tamper", "check", "reason"),
    [
        ("head-garbage", "custody", "custody.head: not a signed custody head"),
        ("head-nested", "custody", "custody.head: not a signed custody head"),
        ("head-symlink", "custody", "custody.head: "),
        ("token-truncated", "timestamp:manifest.tsr", "manifest.tsr: "),
        ("token-empty", "timestamp:manifest.tsr", "manifest.tsr: empty answer"),
        ("token-dir", "timestamp:manifest.tsr", "manifest.tsr: "),
    ],
)
def test_hostile_seal_files_fail_in_one_line_naming_the_file(
    stamped: tuple[Path, Signer], tsa: LocalTSA, tmp_path: Path, tamper: str, check: str, reason: str  # noqa: F811
) -> None:
    bundle, signer = stamped
    head, token = bundle / "custody.head", bundle / "manifest.tsr"
    if tamper == "head-garbage":
        head.write_bytes(b"\x00\xffnot json at all")
    elif tamper == "head-nested":
        head.write_bytes(b"[" * 50_000 + b"]" * 50_000)
    elif tamper == "head-symlink":
        (tmp_path / "elsewhere.head").write_bytes(head.read_bytes())
        head.unlink()
        head.symlink_to(tmp_path / "elsewhere.head")
    elif tamper == "token-truncated":
        token.write_bytes(token.read_bytes()[:200])
    elif tamper == "token-empty":
        token.write_bytes(b"")
    else:
        token.unlink()
        token.mkdir()
    code, report = verify(bundle, signer, [tsa.ca_pem])
    assert code == 1
    found = failed(report)
    assert reason in found[check] and "\n" not in found[check], found


@pytest.mark.parametrize("offset", [1e300, float("inf"), float("nan")])
def test_absurd_recorded_offsets_fail_the_time_check_without_a_crash(offset: float) -> None:
    from evicap.seal.timestamp import TimestampInfo
    from evicap.verify.timestamps import _Recorded, time_consistency

    info = TimestampInfo(datetime.now(timezone.utc), 1, "1.2", "SHA-256", None, "CN=x", 1.0, "ESSCertIDv2 (sha256)")
    manifest = {"capture": {"started_at": "2026-12-01T00:00:00Z", "ended_at": "2026-12-01T00:00:02Z"}}
    within, reason = time_consistency(info, manifest, _Recorded(2, "manifest.tsr", None, None, offset, {}, True), 10)
    assert not within and "out of range" in reason
