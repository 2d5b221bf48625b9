"""A real local RFC 3161 time-stamp authority for tests: ``openssl ts -reply`` behind a LocalServer route.

A throwaway root CA issues the TSA certificate (EC P-256, extendedKeyUsage timeStamping, critical), so both
rfc3161-client and ``openssl ts -verify`` accept its tokens when given ``ca_pem``. Failure modes, one URL each:

    tsa.url()                  a good authority
    tsa.url("slow")            answers only after ``SLOW_SECONDS`` (past a short client timeout)
    tsa.url("garbage")         200 with bytes that are no TimeStampResp
    tsa.url("wrong-nonce")     a valid token for the right data but a different request (nonce differs)
    tsa.url("wrong-imprint")   a valid token over other data
    tsa.url("untrusted")       a valid token signed by a TSA certificate from a second, unknown CA
    tsa.url("error")           HTTP 500
    tsa.down_url               a closed port (connection refused)

The authority matrix (``MATRIX``: one URL each, ``tsa.matrix_url(name)``) covers the ways real authorities
differ: an RSA or an ECDSA signer; only the signer's certificate in the token, or signer + intermediate + root
(``certs = chain.pem``, which openssl writes in an order that is not DER-sorted), or a signer under an
intermediate that the token does not carry; ESSCertID with SHA-1 or
ESSCertIDv2 with SHA-256; with or without ``accuracy``; and no certificate at all (the query's certReq is
cleared before openssl answers, so the verifier needs the authority's certificate from its configuration:
``tsa.matrix_signer(name).cert_pem``). Every matrix authority chains to ``tsa.ca_pem``.

Use it through the ``tsa`` fixture: ``from tests.tsa import tsa  # noqa: F401`` in a test module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from asn1crypto import tsp as asn1_tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rfc3161_client import _rust as rfc3161_rust

from tests.servers import LocalServer, free_port

SLOW_SECONDS = 3.0
MODES = ("ok", "slow", "garbage", "wrong-nonce", "wrong-imprint", "untrusted", "error")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _new_key(kind: str) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _make_ca(
    common_name: str, issuer: tuple[x509.Certificate, PrivateKey] | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A root CA, or (``issuer`` given) an intermediate CA under it."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (_name(common_name), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256()), key


def _make_tsa_cert(
    common_name: str, ca: x509.Certificate, ca_key: PrivateKey, kind: str = "ec"
) -> tuple[x509.Certificate, PrivateKey]:
    key = _new_key(kind)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


_OPENSSL_CNF = """\
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.55555.1
other_policies = 1.3.6.1.4.1.55555.2
digests = sha256, sha384, sha512
ordering = no
tsa_name = yes
ess_cert_id_chain = {ess_chain}
ess_cert_id_alg = {ess}
{extra}"""


@dataclass(frozen=True)
class AuthoritySpec:
    """How one local authority signs: see the module docstring."""

    name: str
    key: str = "ec"
    """"ec" (P-256) or "rsa" (2048)."""
    chain: bool = False
    """True: root -> intermediate -> signer, and (``embed_chain``) the token embeds signer + intermediate + root."""
    embed_chain: bool = True
    """False: the token carries only the signer's certificate; the verifier needs the intermediate from elsewhere."""
    ess: str = "sha256"
    """ESSCertID hash: "sha1" (signingCertificate, ESSCertID) or "sha256" (signingCertificateV2)."""
    certs_in_token: bool = True
    """False: the query's certReq is cleared, so the token carries no certificate."""
    accuracy: bool = True


MATRIX = (
    AuthoritySpec("ec-signer-only"),
    AuthoritySpec("ec-chain", chain=True),
    AuthoritySpec("rsa-signer-only-sha1", key="rsa", ess="sha1", accuracy=False),
    AuthoritySpec("rsa-chain-sha1", key="rsa", chain=True, ess="sha1"),
    AuthoritySpec("rsa-chain-sha256-no-accuracy", key="rsa", chain=True, accuracy=False),
    AuthoritySpec("ec-no-certs", certs_in_token=False),
    AuthoritySpec("ec-intermediate-not-embedded", chain=True, embed_chain=False),
)


class _Signer:
    """One signing identity (certificate + key + openssl.cnf) in its own directory."""

    def __init__(
        self,
        directory: Path,
        ca: x509.Certificate,
        ca_key: PrivateKey,
        spec: AuthoritySpec | None = None,
    ) -> None:
        spec = spec or AuthoritySpec(directory.name)
        directory.mkdir(parents=True)
        issuer, issuer_key = ca, ca_key
        extra = "accuracy = secs:1\n" if spec.accuracy else ""
        if spec.chain:
            issuer, issuer_key = _make_ca(f"evicap test TSA intermediate ({directory.name})", (ca, ca_key))
            (directory / "chain.pem").write_bytes(_pem(issuer) + _pem(ca))
            if spec.embed_chain:
                extra += "certs = $dir/chain.pem\n"
        cert, key = _make_tsa_cert(f"evicap test TSA ({directory.name})", issuer, issuer_key, spec.key)
        (directory / "tsa.pem").write_bytes(_pem(cert))
        (directory / "tsa.key").write_bytes(_key_pem(key))
        (directory / "serial").write_text("01\n")
        (directory / "openssl.cnf").write_text(
            _OPENSSL_CNF.format(
                dir=directory, ess=spec.ess, ess_chain="yes" if spec.chain else "no", extra=extra
            )
        )
        self.directory = directory
        self.spec = spec
        self.cert = cert
        self.cert_pem = directory / "tsa.pem"
        """The authority's own certificate (what a verifier configures when tokens carry none)."""
        self.intermediate_pem = directory / "chain.pem" if spec.chain else None
        self._lock = threading.Lock()  # openssl updates the serial file

    @property
    def verifier_needs(self) -> Path | None:
        """The certificates a verifier must get from the authority besides its root (None: the token has them)."""
        if not self.spec.certs_in_token:
            return self.cert_pem
        if self.spec.chain and not self.spec.embed_chain:
            return self.intermediate_pem
        return None

    def reply(self, query: bytes) -> bytes:
        if not self.spec.certs_in_token:
            request = asn1_tsp.TimeStampReq.load(query)
            request["cert_req"] = False
            query = request.dump()
        with self._lock, tempfile.TemporaryDirectory(dir=self.directory) as tmp:
            query_file = Path(tmp) / "query.tsq"
            reply_file = Path(tmp) / "reply.tsr"
            query_file.write_bytes(query)
            subprocess.run(
                [
                    "openssl", "ts", "-reply",
                    "-config", str(self.directory / "openssl.cnf"),
                    "-queryfile", str(query_file),
                    "-out", str(reply_file),
                ],
                check=True,
                capture_output=True,
            )  # fmt: skip
            return reply_file.read_bytes()


def _query_for_digest(digest: bytes) -> bytes:
    """A fresh TimeStampReq (new random nonce, certReq) for a SHA-256 digest, made by openssl."""
    result = subprocess.run(
        ["openssl", "ts", "-query", "-digest", digest.hex(), "-sha256", "-cert"],
        check=True,
        capture_output=True,
    )
    return result.stdout


class LocalTSA:
    """A time-stamp authority on 127.0.0.1 with one URL per behaviour; see the module docstring."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca, ca_key = _make_ca("evicap test TSA root")
        self.ca_pem = directory / "tsa-ca.pem"
        self.ca_pem.write_bytes(_pem(self.ca))
        self._good = _Signer(directory / "good", self.ca, ca_key)
        other_ca, other_key = _make_ca("unknown TSA root")
        self.other_ca_pem = directory / "other-ca.pem"
        self.other_ca_pem.write_bytes(_pem(other_ca))
        self._rogue = _Signer(directory / "rogue", other_ca, other_key)
        self._matrix = {spec.name: _Signer(directory / spec.name, self.ca, ca_key, spec) for spec in MATRIX}
        self._second = _Signer(directory / "second", self.ca, ca_key)
        self.server = LocalServer()
        self.down_url = f"http://127.0.0.1:{free_port()}/tsr"
        self.hits: dict[str, int] = dict.fromkeys(MODES, 0)

    def start(self) -> LocalTSA:
        self.server.start()
        for mode in MODES:
            self.server.route_fn(f"/{mode}", self._handler(mode))
        for name, signer in [*self._matrix.items(), ("second", self._second)]:
            self.server.route_fn(f"/m/{name}", self._signer_handler(signer))
        return self

    def stop(self) -> None:
        self.server.stop()

    def url(self, mode: str = "ok") -> str:
        assert mode in MODES, mode
        return self.server.url(f"/{mode}")

    def matrix_url(self, name: str) -> str:
        """URL of the matrix authority ``name`` (one of MATRIX), or "second": another good authority."""
        assert name in self._matrix or name == "second", name
        return self.server.url(f"/m/{name}")

    def matrix_signer(self, name: str) -> _Signer:
        return self._second if name == "second" else self._matrix[name]

    def _signer_handler(self, signer: _Signer) -> object:
        def handle(handler: BaseHTTPRequestHandler) -> None:
            query = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
            try:
                status, body = 200, signer.reply(query)
            except (subprocess.CalledProcessError, ValueError):
                status, body = 400, b"bad request"
            handler.send_response(status)
            handler.send_header("Content-Type", "application/timestamp-reply")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

        return handle

    def _handler(self, mode: str) -> object:
        def handle(handler: BaseHTTPRequestHandler) -> None:
            self.hits[mode] += 1
            query = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
            status, body = 200, b""
            try:
                body = self._answer(mode, query)
            except subprocess.CalledProcessError:
                status, body = 400, b"bad request"
            if mode == "error":
                status, body = 500, b"internal error"
            handler.send_response(status)
            handler.send_header("Content-Type", "application/timestamp-reply")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            try:
                handler.wfile.write(body)
            except OSError:
                pass  # the client gave up (slow mode)

        return handle

    def _answer(self, mode: str, query: bytes) -> bytes:
        if mode == "garbage":
            return b"<html>this is not a time-stamp response</html>" * 3
        if mode == "slow":
            time.sleep(SLOW_SECONDS)
        if mode == "untrusted":
            return self._rogue.reply(query)
        if mode == "wrong-nonce":
            imprint = rfc3161_rust.parse_timestamp_request(query).message_imprint.message
            return self._good.reply(_query_for_digest(imprint))
        if mode == "wrong-imprint":
            return self._good.reply(_query_for_digest(hashlib.sha256(os.urandom(16)).digest()))
        return self._good.reply(query)


@pytest.fixture(scope="session")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTSA]:
    """A running local TSA for the whole session (cheap: EC keys, one server)."""
    authority = LocalTSA(tmp_path_factory.mktemp("tsa")).start()
    yield authority
    authority.stop()


# -- helpers shared by the seal tests ------------------------------------------------------------------------

_EVICAP_ENV = (
    "EVICAP_CONFIG", "EVICAP_INVESTIGATOR", "EVICAP_ORGANIZATION", "EVICAP_KEY", "EVICAP_TSA", "EVICAP_TSA_CA",
    "EVICAP_TSA_TIMEOUT", "EVICAP_TSA_ALL", "EVICAP_CLOCK_TOLERANCE",
    "EVICAP_TRUSTED_KEYS", "EVICAP_PROFILES_DIR", "EVICAP_SESSIONS_DIR",
    "EVICAP_KEY_PASSPHRASE",
)  # fmt: skip


@pytest.fixture
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG_CONFIG_HOME and no EVICAP_* settings from the developer's environment."""
    home = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in _EVICAP_ENV:
        monkeypatch.delenv(name, raising=False)
    return home / "evicap"


def stage_bundle(directory: Path, files: dict[str, bytes] | None = None, fingerprint: str | None = None) -> Path:
    """A staged, unsealed bundle from real files: artifacts/, SHA256SUMS, manifest.json binding SHA256SUMS."""
    files = files or {
        "page.html": "<!doctype html><title>Résumé</title><p>evidence</p>\n".encode(),
        "notes.txt": b"second artifact\n",
    }
    (directory / "artifacts").mkdir(parents=True)
    lines = []
    for name, data in sorted(files.items()):
        (directory / "artifacts" / name).write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  artifacts/{name}\n")
    sums = "".join(lines).encode()
    (directory / "SHA256SUMS").write_bytes(sums)
    manifest = {
        "format": "evicap-bundle",
        "artifacts": [{"path": f"artifacts/{n}", "sha256": hashlib.sha256(d).hexdigest()} for n, d in files.items()],
        "checksums": {"path": "SHA256SUMS", "sha256": hashlib.sha256(sums).hexdigest()},
        "seal": {"algorithm": "Ed25519", "signer_fingerprint": fingerprint},
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return directory
