"""Ed25519 signing keys: generate, load, fingerprint.

A private key is a PKCS#8 PEM file (mode 0600), encrypted with a passphrase when one is given; its public half
sits beside it as ``PATH.pub`` (SubjectPublicKeyInfo PEM). A key's fingerprint is the SHA-256 of the DER
SubjectPublicKeyInfo, which anyone can recompute with ``openssl pkey -pubin -outform DER | sha256sum``.

The passphrase comes from EVICAP_KEY_PASSPHRASE or from a callback the CLI passes in; this module never prompts.
A private key file that group or others may read or write is refused (``chmod 600`` fixes it): a key anyone on the
machine can copy signs for anyone. An unencrypted key is allowed but never silently: ``Signer.encrypted`` is False
and every command that signs with it says so.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from evicap.errors import SigningError, first_line

PASSPHRASE_ENV = "EVICAP_KEY_PASSPHRASE"
MAX_KEY_FILE = 64 * 1024

PassphrasePrompt = Callable[[], str]
"""Asks the user for the passphrase of an encrypted key; supplied by the CLI, never called without a key."""


@dataclass(frozen=True, eq=False)
class Signer:
    """A loaded private key, ready to sign manifests and custody events."""

    path: Path
    private_key: ed25519.Ed25519PrivateKey = field(repr=False)
    public_pem: bytes
    """SubjectPublicKeyInfo PEM: written into bundles as signer.pub.pem."""
    fingerprint: str
    """SHA-256 hex of the DER SubjectPublicKeyInfo; the manifest and custody log name the key by it."""
    encrypted: bool
    """Whether the key file is passphrase-protected (recorded in the custody log)."""
    created: bool = False
    """True when this call created the key (first capture without a configured key): tell the user once."""

    @property
    def protection(self) -> str:
        """How the private key is protected, as the manifest (``seal.key_protection``) and custody log record it."""
        return "passphrase" if self.encrypted else "unencrypted-file-mode-0600"

    def sign(self, data: bytes) -> bytes:
        """Raw 64-byte Ed25519 signature over ``data``."""
        return self.private_key.sign(data)


def public_path(path: Path) -> Path:
    """Where the public half of the key at ``path`` lives."""
    return path.with_name(path.name + ".pub")


def fingerprint_of(public_key: ed25519.Ed25519PublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def load_public_key(pem_bytes: bytes, source: str = "public key") -> ed25519.Ed25519PublicKey:
    """Parse an SPKI PEM that must hold an Ed25519 key; SigningError otherwise."""
    try:
        key = serialization.load_pem_public_key(pem_bytes)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise SigningError(f"{source} is not a PEM public key: {first_line(error)}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SigningError(f"{source} is a {_kind(key)} key; evicap signatures are Ed25519")
    return key


def public_key_fingerprint(pem_bytes: bytes) -> str:
    """Fingerprint (SHA-256 of DER SPKI) of an Ed25519 public key given as PEM."""
    return fingerprint_of(load_public_key(pem_bytes))


def generate_key(path: Path, passphrase: str | None) -> Signer:
    """Create a new key at ``path`` (never overwriting) and its public half at ``PATH.pub``.

    With ``passphrase`` None or empty the key is stored unencrypted, still mode 0600.
    """
    key = ed25519.Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pub = public_path(path)
    for target in (path, pub):
        if target.exists():
            raise SigningError(f"{target} already exists; not overwriting a key", hint="choose another --out")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(path, 0o600)  # in case a umask or ACL widened it
        pub.write_bytes(public_pem)
    except OSError as error:
        raise SigningError(f"cannot write key {path}: {error.strerror or error}") from None
    return Signer(
        path=path,
        private_key=key,
        public_pem=public_pem,
        fingerprint=fingerprint_of(key.public_key()),
        encrypted=bool(passphrase),
        created=True,
    )


def load_key(path: Path, prompt: PassphrasePrompt | None = None) -> Signer:
    """Load the Ed25519 private key at ``path``, decrypting it when needed.

    Raises SigningError (one line) for a missing or unreadable file, a wrong passphrase, a non-Ed25519 key,
    or a file that is not a private key at all.
    """
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = handle.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise SigningError(
            f"signing key {path} does not exist", hint="create one with `evicap keys generate --out PATH`"
        ) from None
    except IsADirectoryError:
        raise SigningError(f"signing key {path} is a directory, not a key file") from None
    except OSError as error:
        raise SigningError(f"cannot read signing key {path}: {error.strerror or error}") from None
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise SigningError(f"{path} holds a public key; signing needs the private key")
    if len(data) > MAX_KEY_FILE:
        raise SigningError(f"{path} is larger than {MAX_KEY_FILE} bytes: not a signing key")
    if stat.S_IMODE(mode) & 0o077:
        raise SigningError(
            f"signing key {path} is open to group or others (mode {stat.S_IMODE(mode):04o}); refusing to use it",
            hint=f"chmod 600 {path}",
        )
    encrypted = b"ENCRYPTED PRIVATE KEY" in data
    password: bytes | None = None
    if encrypted:
        passphrase = os.environ.get(PASSPHRASE_ENV)
        if passphrase is None and prompt is not None:
            passphrase = prompt()
        if not passphrase:
            raise SigningError(
                f"signing key {path} is encrypted and no passphrase was given",
                hint=f"set {PASSPHRASE_ENV} or run interactively",
            )
        password = passphrase.encode("utf-8")
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except ValueError as error:
        if encrypted:
            raise SigningError(f"wrong passphrase for signing key {path}") from None
        raise SigningError(f"{path} is not a PEM private key: {first_line(error)}") from None
    except TypeError:
        raise SigningError(f"signing key {path}: unexpected passphrase for an unencrypted key") from None
    except UnsupportedAlgorithm as error:
        raise SigningError(f"signing key {path}: unsupported key: {first_line(error)}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SigningError(
            f"signing key {path} is a {_kind(key)} key; evicap signs with Ed25519",
            hint="create one with `evicap keys generate --out PATH`",
        )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Signer(
        path=path,
        private_key=key,
        public_pem=public_pem,
        fingerprint=fingerprint_of(key.public_key()),
        encrypted=encrypted,
    )


def _kind(key: object) -> str:
    kinds = (
        ((rsa.RSAPrivateKey, rsa.RSAPublicKey), "RSA"),
        ((ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey), "ECDSA"),
        ((dsa.DSAPrivateKey, dsa.DSAPublicKey), "DSA"),
        ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), "Ed448"),
    )
    for types, name in kinds:
        if isinstance(key, types):
            return name
    return type(key).__name__


