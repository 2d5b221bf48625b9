"""What rfc3161-client does not read from a token: the unsigned certificate set's order, ESSCertID, accuracy.

A TimeStampResp is kept exactly as the authority sent it. Two views of it are read here with asn1crypto (a
complete, maintained ASN.1/CMS library; we parse nothing by hand):

* ``strict_der(token)``: the same response with its SignedData ``certificates`` SET re-encoded in DER order.
  That SET is *not* covered by the authority's signature (CMS signs the encapsulated TSTInfo and the signed
  attributes only), yet rfc3161-client refuses a response whose SET is out of order, which is what
  ``openssl ts -reply`` with ``certs = chain.pem`` (and several public authorities) produce. Every signed byte
  is carried over unchanged, so the signature over it still has to verify.
* ``token_facts(token)``: the signer's identifier, the certificates carried, the ESSCertID / ESSCertIDv2 in the
  signed attributes (RFC 2634 / RFC 5035: the hash of the certificate the authority says it signed with), and
  the TSTInfo accuracy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509

from evicap.errors import TimestampError

# What asn1crypto raises on malformed input it parses lazily (a hostile token must never become a traceback).
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)
_ESS_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


@dataclass(frozen=True)
class EssCertId:
    """One ESSCertID(v2) entry: which certificate the signed attributes name."""

    algorithm: str
    """Hash algorithm name as asn1crypto spells it (sha1, sha256, ...)."""
    cert_hash: bytes
    version: int
    """1: signingCertificate (ESSCertID, SHA-1); 2: signingCertificateV2 (ESSCertIDv2)."""


@dataclass(frozen=True)
class TokenFacts:
    """Facts read from the token with asn1crypto; checked by timestamp.check_token."""

    certificates: tuple[bytes, ...]
    """DER of every certificate the SignedData carries (empty when the query did not ask for them)."""
    signer_issuer: bytes
    """DER of the signer's issuer Name (SignerInfo sid, issuerAndSerialNumber)."""
    signer_serial: int
    ess: tuple[EssCertId, ...]
    accuracy_seconds: float | None
    """TSTInfo accuracy (seconds + millis + micros), None when the authority states none."""


def _load(token: bytes) -> tsp.TimeStampResp:
    try:
        response = tsp.TimeStampResp.load(token, strict=True)
        _ = response["status"]["status"].native  # parse the parts we need now, so errors surface here
        return response
    except _ASN1_ERRORS:
        raise TimestampError("garbage: the answer is not a DER RFC 3161 time-stamp response") from None


def _signed_data(response: tsp.TimeStampResp) -> cms.SignedData:
    token = response["time_stamp_token"]
    if token.native is None or token["content_type"].native != "signed_data":
        raise TimestampError("time-stamp response carries no signed token")
    return token["content"]


def strict_der(token: bytes) -> bytes:
    """``token`` with the unsigned certificate SET in DER order; the bytes themselves when already so or when
    the response cannot be read that far (rfc3161-client then says what is wrong with it)."""
    response = _load(token)
    try:
        if response["time_stamp_token"].native is None:
            return token
        signed = _signed_data(response)
        certificates = signed["certificates"]
        if certificates.contents is None or len(certificates) < 2:
            return token
        signed["certificates"] = cms.CertificateSet(sorted(certificates, key=lambda choice: choice.dump()))
        return bytes(response.dump())
    except TimestampError:
        return token
    except _ASN1_ERRORS:
        return token


def token_facts(token: bytes) -> TokenFacts:
    """Signer id, carried certificates, ESSCertID(s) and accuracy; TimestampError when absent or malformed."""
    response = _load(token)
    try:
        signed = _signed_data(response)
        infos = signed["signer_infos"]
        if len(infos) != 1:
            raise TimestampError(f"token has {len(infos)} SignerInfos; RFC 3161 requires exactly one")
        info = infos[0]
        sid = info["sid"]
        if sid.name != "issuer_and_serial_number":
            raise TimestampError("token's signer is named by key identifier only; cannot bind its certificate")
        certificates = tuple(
            bytes(choice.chosen.dump()) for choice in (signed["certificates"] or []) if choice.name == "certificate"
        )
        ess: list[EssCertId] = []
        for attribute in info["signed_attrs"] or []:
            kind = attribute["type"].native
            if kind == "signing_certificate":
                for value in attribute["values"]:
                    for cert_id in value["certs"]:
                        ess.append(EssCertId("sha1", bytes(cert_id["cert_hash"].native), 1))
            elif kind == "signing_certificate_v2":
                for value in attribute["values"]:
                    for cert_id in value["certs"]:
                        algorithm = cert_id["hash_algorithm"]["algorithm"].native
                        ess.append(EssCertId(str(algorithm), bytes(cert_id["cert_hash"].native), 2))
        tst = signed["encap_content_info"]["content"].parsed
        accuracy = tst["accuracy"]
        seconds: float | None = None
        if accuracy.native is not None:
            parts = accuracy.native
            seconds = (parts.get("seconds") or 0) + (parts.get("millis") or 0) / 1e3 + (parts.get("micros") or 0) / 1e6
        return TokenFacts(
            certificates=certificates,
            signer_issuer=bytes(sid.chosen["issuer"].dump()),
            signer_serial=int(sid.chosen["serial_number"].native),
            ess=tuple(ess),
            accuracy_seconds=seconds,
        )
    except _ASN1_ERRORS:
        raise TimestampError("time-stamp token is malformed (SignedData or TSTInfo unreadable)") from None


def is_signer(facts: TokenFacts, cert_der: bytes) -> bool:
    """Whether the certificate ``cert_der`` is the one the SignerInfo names (issuer and serial number)."""
    try:
        cert = asn1_x509.Certificate.load(cert_der)
        return bool(cert.serial_number == facts.signer_serial and cert.issuer.dump() == facts.signer_issuer)
    except _ASN1_ERRORS:
        return False


def ess_problem(facts: TokenFacts, signer_der: bytes) -> str | None:
    """Why the signed ESSCertID(v2) does not bind ``signer_der``; None when its first entry does (RFC 5816 3.1)."""
    if not facts.ess:
        return "token's signed attributes carry no ESSCertID / ESSCertIDv2 naming the signing certificate"
    first = facts.ess[0]
    hasher = _ESS_HASHES.get(first.algorithm)
    if hasher is None:
        return f"ESSCertID uses unsupported hash {first.algorithm}"
    if hasher(signer_der).digest() != first.cert_hash:
        return "ESSCertID does not match the signing certificate (certificate substituted?)"
    return None
