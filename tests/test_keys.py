"""Signing keys and configuration: real key files, real config files, openssl as the independent reader."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from evicap.config import load_config
from evicap.errors import ConfigError, SigningError
from evicap.seal import SealSettings, generate_key, load_key, load_signer, public_key_fingerprint
from evicap.seal.keys import public_path
from tests.tsa import isolated_config  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_config")


def test_generated_key_is_encrypted_private_and_fingerprint_matches_openssl(tmp_path: Path) -> None:
    signer = generate_key(tmp_path / "k.pem", "correct horse")
    key_file = tmp_path / "k.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", str(public_path(key_file)), "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    assert hashlib.sha256(der).hexdigest() == signer.fingerprint
    assert public_key_fingerprint(public_path(key_file).read_bytes()) == signer.fingerprint
    assert load_key(key_file, lambda: "correct horse").fingerprint == signer.fingerprint


def test_generate_never_overwrites_a_key(tmp_path: Path) -> None:
    generate_key(tmp_path / "k.pem", None)
    with pytest.raises(SigningError, match="already exists"):
        generate_key(tmp_path / "k.pem", None)


def test_wrong_passphrase_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate_key(tmp_path / "k.pem", "right")
    monkeypatch.setenv("EVICAP_KEY_PASSPHRASE", "wrong")
    with pytest.raises(SigningError, match="wrong passphrase"):
        load_key(tmp_path / "k.pem")
    monkeypatch.delenv("EVICAP_KEY_PASSPHRASE")
    with pytest.raises(SigningError, match="encrypted and no passphrase"):
        load_key(tmp_path / "k.pem")


def test_bad_key_files_are_refused_with_reason(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="does not exist"):
        load_key(tmp_path / "missing.pem")
    with pytest.raises(SigningError, match="is a directory"):
        load_key(tmp_path)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "rsa.pem").write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "rsa.pem").chmod(0o600)
    with pytest.raises(SigningError, match="is a RSA key; evicap signs with Ed25519"):
        load_key(tmp_path / "rsa.pem")
    generate_key(tmp_path / "ed.pem", None)
    with pytest.raises(SigningError, match="holds a public key"):
        load_key(public_path(tmp_path / "ed.pem"))
    with pytest.raises(SigningError, match=r"cannot read signing key .*Not a directory"):
        load_key(tmp_path / "ed.pem" / "inside-a-file.pem")  # unreadable even for root
    (tmp_path / "junk.pem").write_text("hello\n")
    (tmp_path / "junk.pem").chmod(0o600)
    with pytest.raises(SigningError, match="not a PEM private key"):
        load_key(tmp_path / "junk.pem")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_key(tmp_path: Path) -> None:
    generate_key(tmp_path / "k.pem", None)
    (tmp_path / "k.pem").chmod(0)
    with pytest.raises(SigningError, match="cannot read signing key"):
        load_key(tmp_path / "k.pem")


def test_first_capture_creates_default_key_once(isolated_config: Path) -> None:  # noqa: F811
    settings = SealSettings.resolve(load_config())
    first = load_signer(settings, create=True)
    assert first.created and first.path == isolated_config / "signing-key.pem"
    assert not first.encrypted and stat.S_IMODE(first.path.stat().st_mode) == 0o600
    second = load_signer(settings, create=True)
    assert not second.created and second.fingerprint == first.fingerprint


def test_first_use_key_uses_passphrase_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVICAP_KEY_PASSPHRASE", "s3cret")
    signer = load_signer(SealSettings.resolve(load_config()), create=True)
    assert signer.created and signer.encrypted


def test_signing_without_a_key_never_creates_one(isolated_config: Path) -> None:  # noqa: F811
    """Only a capture may make the default key; anything else that signs says how to make one."""
    with pytest.raises(SigningError, match="no signing key: none configured") as raised:
        load_signer(SealSettings.resolve(load_config()))
    assert "evicap keys generate --out" in str(raised.value.hint)
    assert not (isolated_config / "signing-key.pem").exists()


def test_configured_key_that_is_missing_is_not_silently_created(tmp_path: Path) -> None:
    settings = SealSettings.resolve(load_config(), key=tmp_path / "nope.pem")
    with pytest.raises(SigningError, match="does not exist"):
        load_signer(settings)
    assert not (tmp_path / "nope.pem").exists()


def test_config_precedence_cli_over_env_over_file(isolated_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    isolated_config.mkdir(parents=True)
    (isolated_config / "config.yaml").write_text(
        "investigator: File Person\norganization: File Org\ntsa: [http://file.example/tsr]\n"
        "tsa_ca: [roots/tsa.pem]\nkey: keys/me.pem\ntsa_timeout: 4\n"
    )
    config = load_config()
    assert config.investigator == "File Person" and config.tsa == ("http://file.example/tsr",)
    assert config.tsa_ca == (isolated_config / "roots" / "tsa.pem",)  # relative to the file
    assert config.key == isolated_config / "keys" / "me.pem" and config.tsa_timeout == 4.0
    monkeypatch.setenv("EVICAP_INVESTIGATOR", "Env Person")
    monkeypatch.setenv("EVICAP_TSA", "http://env.example/a http://env.example/b")
    config = load_config()
    assert config.investigator == "Env Person" and config.organization == "File Org"
    assert config.tsa == ("http://env.example/a", "http://env.example/b")
    settings = SealSettings.resolve(config, tsa=["http://cli.example/tsr"], investigator="Cli Person")
    assert settings.tsa == ("http://cli.example/tsr",) and settings.investigator == "Cli Person"
    assert settings.key == isolated_config / "keys" / "me.pem" and not settings.key_is_default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("investigator: [a, b]\n", "key 'investigator': expected a string"),
        ("tsa: ftp://x\n", "key 'tsa': expected a list of http(s) URLs"),
        ("tsa_timeout: -3\n", "key 'tsa_timeout': expected a positive number"),
        ("investgator: Jane\n", "unknown key 'investgator'"),
        ("investigator: Jane\ntsa: [unclosed\n", "line 3: YAML syntax error"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_config_names_file_key_and_expectation(isolated_config: Path, text: str, message: str) -> None:  # noqa: F811
    isolated_config.mkdir(parents=True)
    (isolated_config / "config.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert str(isolated_config / "config.yaml") in str(caught.value)
    assert message in str(caught.value)


def test_authority_settings_from_file_and_environment(isolated_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    isolated_config.mkdir(parents=True)
    (isolated_config / "config.yaml").write_text("tsa_all: true\nclock_tolerance: 30\n")
    config = load_config()
    assert config.tsa_all is True and config.clock_tolerance == 30.0
    monkeypatch.setenv("EVICAP_CLOCK_TOLERANCE", "5")
    monkeypatch.setenv("EVICAP_TSA_ALL", "0")
    config = load_config()
    assert config.clock_tolerance == 5.0 and config.tsa_all is False
    monkeypatch.setenv("EVICAP_CLOCK_TOLERANCE", "soon")
    with pytest.raises(ConfigError, match="EVICAP_CLOCK_TOLERANCE: expected a positive number of seconds"):
        load_config()
    monkeypatch.delenv("EVICAP_CLOCK_TOLERANCE")
    (isolated_config / "config.yaml").write_text("tsa_all: sometimes\n")
    with pytest.raises(ConfigError, match="key 'tsa_all': expected true or false"):
        load_config()
