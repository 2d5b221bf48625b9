"""Sealing and the custody log: real keys, real files, the local TSA; every break in the chain is found."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from evicap.config import load_config
from evicap.errors import BundleError, SigningError
from evicap.seal import (
    Actor,
    SealSettings,
    append_event,
    generate_key,
    load_signer,
    read_events,
    seal_bundle,
    verify_custody,
    verify_signature,
)
from evicap.seal.keys import Signer
from tests.tsa import LocalTSA, isolated_config, stage_bundle, tsa  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_config")


def sealed(tmp_path: Path, settings: SealSettings) -> tuple[Path, Signer]:
    signer = load_signer(settings, create=True)
    bundle = stage_bundle(tmp_path / "b", fingerprint=signer.fingerprint)
    seal_bundle(bundle, signer, settings, actor=Actor("Ana", signer.fingerprint), acquired={"url": "https://x/"})
    return bundle, signer


def manifest_hash(bundle: Path) -> str:
    return hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()


def test_seal_writes_signature_key_token_and_three_events(tmp_path: Path, tsa: LocalTSA) -> None:  # noqa: F811
    settings = SealSettings.resolve(load_config(), tsa=[tsa.url()], tsa_ca=[tsa.ca_pem])
    bundle, signer = sealed(tmp_path, settings)
    verify_signature(
        (bundle / "manifest.json").read_bytes(),
        (bundle / "manifest.sig").read_bytes(),
        (bundle / "signer.pub.pem").read_bytes(),
    )
    assert len((bundle / "manifest.sig").read_bytes()) == 64 and (bundle / "manifest.tsr").is_file()
    events = read_events(bundle / "custody.jsonl")
    assert [e.action for e in events] == ["acquired", "sealed", "timestamped"]
    assert events[0].prev is None and events[0].details == {"url": "https://x/", "custody_head": "custody.head"}
    assert all(e.manifest_sha256 == manifest_hash(bundle) for e in events)
    assert events[2].details["tsa"] == tsa.url() and isinstance(events[2].details["clock_offset_ms"], int)
    for line in (bundle / "custody.jsonl").read_text().splitlines():
        assert json.loads(line)["time"].endswith("Z")
    assert verify_custody(bundle / "custody.jsonl", manifest_hash(bundle), {signer.fingerprint}) == []


def test_no_authority_reachable_leaves_a_signed_bundle_and_a_recorded_note(tmp_path: Path, tsa: LocalTSA) -> None:  # noqa: F811
    settings = SealSettings.resolve(
        load_config(), tsa=[tsa.down_url, tsa.url("garbage")], tsa_ca=[tsa.ca_pem], tsa_timeout=2
    )
    signer = load_signer(settings, create=True)
    bundle = stage_bundle(tmp_path / "b")
    result = seal_bundle(bundle, signer, settings, actor=Actor("Ana", signer.fingerprint), acquired={})
    assert not result.timestamped and not (bundle / "manifest.tsr").exists()
    assert [w.code for w in result.warnings] == ["timestamp-failed", "timestamp-failed", "untimestamped"]
    note = read_events(bundle / "custody.jsonl")[-1]
    assert note.action == "note" and note.details["timestamped"] is False
    assert [a["tsa"] for a in note.details["attempts"]] == [tsa.down_url, tsa.url("garbage")]


def test_seal_fails_closed_when_sha256sums_is_not_the_one_the_manifest_names(tmp_path: Path) -> None:
    settings = SealSettings.resolve(load_config(), no_timestamp=True)
    signer = load_signer(settings, create=True)
    bundle = stage_bundle(tmp_path / "b")
    (bundle / "SHA256SUMS").write_text("0" * 64 + "  artifacts/other\n")
    with pytest.raises(SigningError, match="SHA256SUMS does not match"):
        seal_bundle(bundle, signer, settings, actor=Actor("Ana", signer.fingerprint), acquired={})
    assert not (bundle / "manifest.sig").exists()


def test_verify_custody_pins_each_break_to_its_line(tmp_path: Path) -> None:
    settings = SealSettings.resolve(load_config(), no_timestamp=True)
    bundle, signer = sealed(tmp_path, settings)
    log = bundle / "custody.jsonl"
    append_event(log, signer, Actor("Ana", signer.fingerprint), "transferred", {"to": "Court"}, manifest_hash(bundle))
    good = log.read_bytes()
    lines = good.splitlines(keepends=True)
    assert len(lines) == 4

    log.write_bytes(lines[0] + lines[1] + lines[2].replace(b"--no-timestamp", b"--no-timestamp!") + lines[3])
    problems = verify_custody(log, manifest_hash(bundle), {signer.fingerprint})
    assert [(p.line, p.seq) for p in problems] == [(3, 2), (4, 3)]
    assert "signature does not match" in problems[0].message and "prev does not match" in problems[1].message

    log.write_bytes(lines[0] + lines[2] + lines[3])
    messages = [str(p) for p in verify_custody(log, manifest_hash(bundle), {signer.fingerprint})]
    assert "custody.jsonl line 2 (seq 2): seq is 2, expected 1 (event missing, reordered or inserted)" in messages

    log.write_bytes(good)
    stranger = generate_key(tmp_path / "stranger.pem", None)
    append_event(log, stranger, Actor("Eve", stranger.fingerprint), "note", {"note": "hi"}, manifest_hash(bundle))
    problem, head = verify_custody(log, manifest_hash(bundle), {signer.fingerprint})
    assert problem.line == 5 and "not trusted" in problem.message
    assert head.file == "custody.head" and "not trusted" in head.message
    assert verify_custody(log, "f" * 64, {signer.fingerprint})[0].message.startswith("first event is bound")


def test_append_refuses_when_manifest_changed(tmp_path: Path) -> None:
    settings = SealSettings.resolve(load_config(), no_timestamp=True)
    bundle, signer = sealed(tmp_path, settings)
    before = (bundle / "custody.jsonl").read_bytes()
    with pytest.raises(BundleError, match=r"manifest.json no longer matches the custody log"):
        append_event(bundle / "custody.jsonl", signer, Actor("Ana", signer.fingerprint), "note", {}, "a" * 64)
    assert (bundle / "custody.jsonl").read_bytes() == before


def _messages(bundle: Path, signer: Signer) -> list[str]:
    return [str(p) for p in verify_custody(bundle / "custody.jsonl", manifest_hash(bundle), {signer.fingerprint})]


def test_the_signed_head_catches_a_log_cut_at_its_end(tmp_path: Path) -> None:
    settings = SealSettings.resolve(load_config(), no_timestamp=True)
    bundle, signer = sealed(tmp_path, settings)
    log, head = bundle / "custody.jsonl", bundle / "custody.head"
    for to in ("Court", "Defence"):
        append_event(log, signer, Actor("Ana", signer.fingerprint), "transferred", {"to": to}, manifest_hash(bundle))
    assert _messages(bundle, signer) == []
    head_json = json.loads(head.read_bytes())
    lines = log.read_bytes().splitlines(keepends=True)
    assert head_json["seq"] == 4 and head_json["line_sha256"] == hashlib.sha256(lines[-1].rstrip(b"\n")).hexdigest()
    good_head = head.read_bytes()

    log.write_bytes(b"".join(lines[:-2]))  # the last two events dropped: the chain alone is still valid
    assert _messages(bundle, signer) == [
        "custody.head: names seq 4 but the log ends at seq 2: events cut from its end"]
    log.write_bytes(lines[0])  # cut to its first line
    assert _messages(bundle, signer) == [
        "custody.head: names seq 4 but the log ends at seq 0: events cut from its end"]
    head.unlink()  # ... and the head removed with it
    assert _messages(bundle, signer) == [
        "custody.head: missing: the log announces a signed head, so its end cannot be checked (removed?)"]

    log.write_bytes(b"".join(lines[:-1]) + lines[-1].replace(b"Defence", b"Defense"))
    head.write_bytes(good_head)
    assert _messages(bundle, signer) == [
        "custody.jsonl line 5 (seq 4): signature does not match the event (edited after signing?)",
        "custody.head: seq 4 is signed with another last line: the last event was replaced",
    ]
    log.write_bytes(b"".join(lines))
    edited = json.loads(good_head)
    edited["seq"] = 5
    head.write_bytes(json.dumps(edited).encode())
    assert _messages(bundle, signer) == ["custody.head: signature does not match the head (edited after signing?)"]


def test_a_log_from_before_signed_heads_needs_none(tmp_path: Path) -> None:
    """Logs written before heads existed announce none (no custody_head in their first events)."""
    signer = generate_key(tmp_path / "k.pem", None)
    log = tmp_path / "custody.jsonl"
    actor = Actor("Ana", signer.fingerprint)
    append_event(log, signer, actor, "acquired", {"url": "https://x/"}, "a" * 64)
    append_event(log, signer, actor, "sealed", {"algorithm": "Ed25519"}, "a" * 64)
    (tmp_path / "custody.head").unlink()
    assert verify_custody(log, "a" * 64, {signer.fingerprint}) == []


def test_append_refuses_a_log_that_does_not_end_where_its_head_says(tmp_path: Path) -> None:
    """An honest append must not re-sign the head over a cut log, which would make the cut verify."""
    settings = SealSettings.resolve(load_config(), no_timestamp=True)
    bundle, signer = sealed(tmp_path, settings)
    log, actor = bundle / "custody.jsonl", Actor("Ana", signer.fingerprint)
    append_event(log, signer, actor, "transferred", {"to": "Court"}, manifest_hash(bundle))
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]))
    with pytest.raises(BundleError, match=r"custody.jsonl does not end where custody.head says \(seq 3; the log ends"):
        append_event(log, signer, actor, "note", {}, manifest_hash(bundle))
    (bundle / "custody.head").unlink()
    with pytest.raises(BundleError, match=r"custody\.head is missing or unreadable"):
        append_event(log, signer, actor, "note", {}, manifest_hash(bundle))
    assert log.read_bytes() == b"".join(lines[:-1])


@pytest.mark.parametrize("target", ["custody.jsonl", "custody.head"])
def test_every_changed_byte_of_log_or_head_is_found_never_a_crash(tmp_path: Path, target: str) -> None:
    """Regression: an unknown key algorithm OID in a public key was an uncaught UnsupportedAlgorithm."""
    signer = generate_key(tmp_path / "k.pem", None)
    log, actor = tmp_path / "custody.jsonl", Actor("Ana", signer.fingerprint)
    append_event(log, signer, actor, "acquired", {"custody_head": "custody.head"}, "a" * 64)
    append_event(log, signer, actor, "note", {"x": [1, {"y": None}]}, "a" * 64)
    good = {name: (tmp_path / name).read_bytes() for name in ("custody.jsonl", "custody.head")}
    for offset in range(0, len(good[target]), 3):
        for flip in (0x01, 0x20):
            forged = bytearray(good[target])
            forged[offset] ^= flip
            for name, data in good.items():
                (tmp_path / name).write_bytes(bytes(forged) if name == target else data)
            assert verify_custody(log, "a" * 64, {signer.fingerprint}), (offset, flip)
