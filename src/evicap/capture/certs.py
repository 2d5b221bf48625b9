"""Server certificate chains as the capturing session saw them, written as PEM and JSON.

The chains come from the recorder (``Network.getCertificate`` plus the response's ``securityDetails``), never
from a second connection: a second connection could meet another server, another certificate, or nothing.

The PEM file is for stock tools: ``openssl x509`` and ``openssl crl2pkcs7 -nocrl -certfile`` read it as is.
Before each certificate come ``#`` comment lines (origin, position in the chain, subject, issuer, validity,
SHA-256 fingerprint in OpenSSL's colon form); OpenSSL skips text outside BEGIN/END markers. The comment
values come from the server, so they are flattened to one printable line and can never forge a marker.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from evicap.capture.types import CertificateChain
from evicap.errors import first_line

# securityDetails fields copied into the JSON as the browser reported them (CDP names, snake_cased).
SECURITY_FIELDS = {
    "protocol": "protocol",
    "keyExchange": "key_exchange",
    "keyExchangeGroup": "key_exchange_group",
    "cipher": "cipher",
    "mac": "mac",
    "serverSignatureAlgorithm": "server_signature_algorithm",
    "encryptedClientHello": "encrypted_client_hello",
    "subjectName": "subject_name",
    "sanList": "san_list",
    "issuer": "issuer",
    "certificateTransparencyCompliance": "certificate_transparency_compliance",
    "signedCertificateTimestampList": "signed_certificate_timestamps",
}

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]+")


def colon_hex(digest: bytes) -> str:
    """``AB:CD:...``, the form ``openssl x509 -fingerprint -sha256`` prints."""
    return ":".join(f"{b:02X}" for b in digest)


def pem_block(der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def _comment_value(value: object) -> str:
    text = _UNPRINTABLE.sub(" ", str(value))
    return text.replace("-----", "- - -")[:1000]


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch_iso(value: Any) -> str | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def _key_description(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__


def describe_certificate(der: bytes) -> dict[str, Any]:
    """Facts of one DER certificate. Fingerprints always; parsed fields when cryptography can parse it."""
    facts: dict[str, Any] = {
        "sha256": hashlib.sha256(der).hexdigest(),
        "sha1": hashlib.sha1(der).hexdigest(),  # a fingerprint people look up, not a check
        "size": len(der),
    }
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        facts["parse_error"] = first_line(str(exc)) or "unparseable certificate"
        return facts
    facts.update(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial_number=format(cert.serial_number, "x"),
        not_before=_iso(cert.not_valid_before_utc),
        not_after=_iso(cert.not_valid_after_utc),
        public_key=_key_description(cert),
        signature_algorithm_oid=cert.signature_algorithm_oid.dotted_string,
    )
    try:
        hash_algorithm = cert.signature_hash_algorithm
        facts["signature_hash"] = hash_algorithm.name if hash_algorithm else None
    except Exception:  # unsupported algorithm: the OID above still names it
        facts["signature_hash"] = None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        facts["san"] = [str(name.value) for name in san]
    except x509.ExtensionNotFound:
        facts["san"] = []
    except ValueError:
        facts["san"] = None
    try:
        facts["is_ca"] = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (x509.ExtensionNotFound, ValueError):
        facts["is_ca"] = False
    facts["self_signed"] = cert.subject == cert.issuer
    return facts


def chains_json(chains: Sequence[CertificateChain]) -> dict[str, Any]:
    """The JSON document of certificates.json: one entry per HTTPS origin, chain leaf first."""
    origins = []
    for chain in sorted(chains, key=lambda c: c.origin):
        details = chain.security_details or {}
        connection: dict[str, Any] = {
            name: details[key] for key, name in SECURITY_FIELDS.items() if details.get(key) is not None
        }
        valid_from, valid_to = _epoch_iso(details.get("validFrom")), _epoch_iso(details.get("validTo"))
        if valid_from:
            connection["valid_from"] = valid_from
        if valid_to:
            connection["valid_to"] = valid_to
        origins.append(
            {
                "origin": chain.origin,
                "remote_ip": chain.remote_ip,
                "connection": connection,
                "chain": [describe_certificate(der) for der in chain.der_chain],
            }
        )
    return {
        "source": "capturing browser session (CDP Network.getCertificate and securityDetails)",
        "origins": origins,
    }


def chains_pem(chains: Sequence[CertificateChain]) -> str:
    """PEM text of every chain, each certificate preceded by ``#`` comment lines naming what it is."""
    parts = ["# Server certificate chains seen by the capturing browser session, leaf first, one block per origin.\n"]
    for chain in sorted(chains, key=lambda c: c.origin):
        total = len(chain.der_chain)
        for index, der in enumerate(chain.der_chain):
            facts = describe_certificate(der)
            lines = [
                f"origin: {chain.origin}",
                f"chain position: {index + 1} of {total}{' (leaf)' if index == 0 else ''}",
            ]
            if chain.remote_ip and index == 0:
                lines.append(f"server address: {chain.remote_ip}")
            if "parse_error" in facts:
                lines.append(f"unparseable: {facts['parse_error']}")
            else:
                lines += [
                    f"subject: {facts['subject']}",
                    f"issuer: {facts['issuer']}",
                    f"validity: {facts['not_before']} to {facts['not_after']}",
                ]
            lines.append(f"SHA-256 fingerprint: {colon_hex(hashlib.sha256(der).digest())}")
            parts.append("\n" + "".join(f"# {_comment_value(line)}\n" for line in lines) + pem_block(der))
    return "".join(parts)
