"""Certificate PEM/JSON formatting, with certificates built here (no network) and read back by openssl."""

from __future__ import annotations

import datetime
import hashlib
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from evicap.capture.certs import chains_json, chains_pem
from evicap.capture.types import CertificateChain

HOSTILE_CN = "evil\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIB"


def _self_signed(common_name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x1234)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("example.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def test_server_chosen_subject_cannot_forge_pem_markers_and_openssl_reads_every_block() -> None:
    der = _self_signed(HOSTILE_CN)
    chain = CertificateChain("https://example.test", (der, b"not a certificate"), {"protocol": "TLS 1.3"})
    pem = chains_pem([chain])

    assert pem.count("-----BEGIN CERTIFICATE-----") == 2 and pem.count("-----END CERTIFICATE-----") == 2
    assert all(line.startswith("# ") or not line.startswith("#") for line in pem.splitlines())
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=pem, capture_output=True, text=True, check=True
    ).stdout
    digest = hashlib.sha256(der).hexdigest().upper()
    assert out.strip().split("=")[1].replace(":", "") == digest

    facts = chains_json([chain])["origins"][0]
    assert facts["connection"] == {"protocol": "TLS 1.3"}
    leaf, broken = facts["chain"]
    assert leaf["subject"].startswith("CN=evil") and leaf["san"] == ["example.test"]
    assert (leaf["not_before"], leaf["not_after"], leaf["serial_number"]) == (
        "2026-01-01T00:00:00Z",
        "2026-01-31T00:00:00Z",
        "1234",
    )
    assert "parse_error" in broken and broken["sha256"] == hashlib.sha256(b"not a certificate").hexdigest()
