"""The real `evicap` CLI for keys, custody and timestamp: one-line errors with meaningful exit codes, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from evicap.cli.main import cli
from evicap.config import load_config
from evicap.seal import Actor, SealSettings, load_signer, read_events, seal_bundle
from tests.tsa import LocalTSA, isolated_config, stage_bundle, tsa  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_config")


def evicap(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def assert_one_line_error(result: Result, code: int, text: str) -> None:
    """Exit code, no traceback, exactly one `error:` message (rich may wrap it to the terminal width)."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    before, _, error = result.stderr.partition("error:")
    assert error and result.stderr.count("error:") == 1, result.stderr
    assert not before or before.startswith("warning:"), result.stderr  # e.g. the unencrypted-key notice
    assert text in " ".join(error.split()), result.stderr


def untimestamped_bundle(tmp_path: Path) -> Path:
    settings = SealSettings.resolve(load_config(), no_timestamp=True)
    signer = load_signer(settings, create=True)
    bundle = stage_bundle(tmp_path / "bundle", fingerprint=signer.fingerprint)
    seal_bundle(bundle, signer, settings, actor=Actor("Ana", signer.fingerprint), acquired={"url": "https://x/"})
    return bundle


def test_keys_generate_and_show(tmp_path: Path) -> None:
    key = tmp_path / "me.pem"
    made = evicap("keys", "generate", "--out", str(key), env={"EVICAP_KEY_PASSPHRASE": "pw"})
    assert made.exit_code == 0, made.output
    fingerprint = made.stdout.strip()
    assert len(fingerprint) == 64 and "encrypted" in made.stderr
    assert evicap("keys", "show", str(key)).stdout.strip() == fingerprint
    assert evicap("keys", "show", str(key) + ".pub").stdout.strip() == fingerprint
    # No passphrase and no terminal: refuse rather than silently write an unprotected key.
    assert_one_line_error(evicap("keys", "generate", "--out", str(tmp_path / "b.pem")), 2, "no passphrase")
    assert evicap("keys", "generate", "--out", str(tmp_path / "c.pem"), "--unencrypted").exit_code == 0


def test_custody_add_and_show(tmp_path: Path) -> None:
    bundle = untimestamped_bundle(tmp_path)
    manifest = (bundle / "manifest.json").read_bytes()
    added = evicap("custody", "add", str(bundle), "--action", "transferred", "--to", "Prosecutor's office",
                   "--note", "USB stick #7", "--actor", "Ana Ruiz")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert (bundle / "manifest.json").read_bytes() == manifest
    last = read_events(bundle / "custody.jsonl")[-1]
    assert last.action == "transferred" and last.actor.name == "Ana Ruiz"
    assert last.details == {"to": "Prosecutor's office", "note": "USB stick #7"}
    shown = evicap("custody", "show", str(bundle))
    assert shown.exit_code == 0
    for text in ("acquired", "sealed", "transferred", "Prosecutor's office", "Ana Ruiz"):
        assert text in shown.stderr
    head = json.loads((bundle / "custody.head").read_bytes())
    assert head["seq"] == 3 and f"custody.head: seq 3, last line SHA-256 {head['line_sha256']}" in " ".join(
        shown.stderr.split())


def test_custody_add_refuses_an_altered_bundle(tmp_path: Path) -> None:
    bundle = untimestamped_bundle(tmp_path)
    manifest = bundle / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b"evicap-bundle", b"evicap-bundlE"))
    before = (bundle / "custody.jsonl").read_bytes()
    result = evicap("custody", "add", str(bundle), "--action", "note", "--note", "hi")
    assert_one_line_error(result, 1, "manifest.json no longer matches the custody log")
    assert (bundle / "custody.jsonl").read_bytes() == before


def test_key_problems_are_one_line_errors(tmp_path: Path) -> None:
    bundle = untimestamped_bundle(tmp_path)
    key = tmp_path / "enc.pem"
    evicap("keys", "generate", "--out", str(key), env={"EVICAP_KEY_PASSPHRASE": "right"})
    add = ("custody", "add", str(bundle), "--action", "note", "--note", "x", "--key")
    assert_one_line_error(evicap(*add, str(key), env={"EVICAP_KEY_PASSPHRASE": "wrong"}), 2, "wrong passphrase")
    assert_one_line_error(evicap(*add, str(key)), 2, "is encrypted and no passphrase was given")
    assert_one_line_error(evicap(*add, str(tmp_path / "none.pem")), 2, "does not exist")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "rsa.pem").write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "rsa.pem").chmod(0o600)
    assert_one_line_error(evicap(*add, str(tmp_path / "rsa.pem")), 2, "is a RSA key; evicap signs with Ed25519")
    assert_one_line_error(evicap(*add, str(bundle / "manifest.json") + "/x"), 2, "cannot read signing key")
    assert [e.action for e in read_events(bundle / "custody.jsonl")] == ["acquired", "sealed", "note"]


def test_timestamp_later_adds_token_and_custody_event(tmp_path: Path, tsa: LocalTSA) -> None:  # noqa: F811
    bundle = untimestamped_bundle(tmp_path)
    result = evicap("timestamp", str(bundle), "--tsa", tsa.down_url, "--tsa", tsa.url(), "--tsa-ca", str(tsa.ca_pem))
    assert result.exit_code == 0, result.output
    assert (bundle / "manifest.tsr").is_file() and "connection refused" in result.stderr
    last = read_events(bundle / "custody.jsonl")[-1]
    assert last.action == "timestamped" and last.details["tsa"] == tsa.url()
    again = evicap("timestamp", str(bundle), "--tsa", tsa.url(), "--tsa-ca", str(tsa.ca_pem))
    assert_one_line_error(again, 1, "already has a trusted timestamp")


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("down", "connection refused"),
        ("slow", "no answer within 0.5 s (timeout)"),
        ("garbage", "garbage"),
        ("wrong-nonce", "nonce mismatch"),
        ("wrong-imprint", "message imprint mismatch"),
        ("untrusted", "untrusted chain"),
    ],
)
def test_timestamp_failures_are_one_line_and_change_nothing(
    tmp_path: Path,
    tsa: LocalTSA,  # noqa: F811
    mode: str,
    reason: str,
) -> None:
    bundle = untimestamped_bundle(tmp_path)
    before = (bundle / "custody.jsonl").read_bytes()
    url = tsa.down_url if mode == "down" else tsa.url(mode)
    result = evicap("timestamp", str(bundle), "--tsa", url, "--tsa-ca", str(tsa.ca_pem), "--tsa-timeout", "0.5")
    assert_one_line_error(result, 1, reason)
    assert not (bundle / "manifest.tsr").exists()
    assert (bundle / "custody.jsonl").read_bytes() == before


def test_custody_add_cannot_fake_evicaps_own_events(tmp_path: Path) -> None:
    bundle = untimestamped_bundle(tmp_path)
    for action in ("acquired", "sealed", "timestamped"):
        result = evicap("custody", "add", str(bundle), "--action", action)
        assert result.exit_code == 2 and "Invalid value for '--action'" in result.output
    assert [e.action for e in read_events(bundle / "custody.jsonl")] == ["acquired", "sealed", "note"]
