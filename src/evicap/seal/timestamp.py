"""RFC 3161 trusted timestamps through rfc3161-client: request, check, verify later.

A token is requested over SHA-256 of manifest.json with a nonce and certReq (so the token carries the
authority's certificate). Before a token is kept it must pass every check a court would ask about: it parses,
the authority granted it, the message imprint is our hash, the nonce is ours, the signature is good, the signed
ESSCertID / ESSCertIDv2 names the certificate that signed, that certificate has the timeStamping extended key
usage (critical) and chains to a configured trust anchor, valid at genTime. Authorities are tried in order
(or all of them: ``every=True``); each failure is recorded with its reason, and a capture without any token is
still signed (the caller records the fallback).

The token is kept exactly as received. rfc3161-client reads a copy whose unsigned certificate SET was put in
DER order (``evicap.seal.token.strict_der``): authorities that embed their chain often send it unsorted.

Trust material is the ``tsa_ca`` PEM files; with none configured, the system CA bundle is used, so a public
authority whose root the operating system trusts works out of the box. Self-signed certificates in them are
trust anchors; any other certificate (an intermediate, or the authority's own certificate for authorities whose
tokens carry none) only helps to build a chain, which must still end at an anchor (OpenSSL's rule for
``-CAfile``, and the rule of the PKCS#7 verification underneath).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ssl
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from evicap.errors import TimestampError, first_line
from evicap.seal.token import ess_problem, is_signer, strict_der, token_facts

local_clock = time.time
"""This machine's clock, read around each exchange to measure its offset to the authority (tests move it)."""
MAX_RESPONSE = 1024 * 1024  # a token with a long chain is a few KiB; anything near 1 MiB is not a token
SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
)
_HASHES = {
    "2.16.840.1.101.3.4.2.1": ("SHA-256", hashlib.sha256),
    "2.16.840.1.101.3.4.2.2": ("SHA-384", hashlib.sha384),
    "2.16.840.1.101.3.4.2.3": ("SHA-512", hashlib.sha512),
}


@dataclass(frozen=True)
class TimestampInfo:
    """What a verified token says."""

    gen_time: dt.datetime
    """The authority's time (UTC) at which it saw the hash."""
    serial_number: int
    policy: str
    """OID of the authority's time-stamping policy."""
    hash_algorithm: str
    nonce: int | None
    authority: str
    """Subject of the certificate that signed the token."""
    accuracy_seconds: float | None = None
    """The authority's stated accuracy of genTime; None when the token states none."""
    ess: str = ""
    """Which signed certificate binding was checked, e.g. "ESSCertIDv2 (sha256)"."""


@dataclass(frozen=True)
class Stamp:
    """A token that passed every check at request time."""

    token: bytes
    """The TimeStampResp DER, written as manifest.tsr."""
    info: TimestampInfo
    tsa_url: str
    clock_offset_seconds: float
    """Authority genTime minus the local clock at the middle of the exchange; positive: local clock behind."""


@dataclass(frozen=True)
class TsaFailure:
    """One authority that gave no usable token, and why."""

    tsa_url: str
    reason: str


@dataclass(frozen=True)
class TimestampOutcome:
    """Result of asking the authorities: the stamps kept (in URL order), plus every failure met on the way."""

    stamps: tuple[Stamp, ...]
    failures: tuple[TsaFailure, ...]

    @property
    def stamp(self) -> Stamp | None:
        """The first stamp kept, if any."""
        return self.stamps[0] if self.stamps else None


def load_trust_anchors(paths: Sequence[Path]) -> list[x509.Certificate]:
    """Certificates from PEM files (several per file allowed); the system bundle when ``paths`` is empty."""
    files = list(paths) or [Path(p) for p in SYSTEM_BUNDLES if Path(p).is_file()][:1]
    anchors: list[x509.Certificate] = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as error:
            raise TimestampError(
                f"cannot read time-stamp trust anchor {path}: {error.strerror or error}",
                hint="check --tsa-ca / tsa_ca",
            ) from None
        try:
            with warnings.catch_warnings():
                # System bundles hold a few legacy roots (e.g. non-positive serials) that cryptography warns about.
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                anchors.extend(x509.load_pem_x509_certificates(data))
        except ValueError:
            raise TimestampError(
                f"time-stamp trust anchor {path} holds no PEM certificate", hint="check --tsa-ca / tsa_ca"
            ) from None
    if not anchors:
        raise TimestampError(
            "no time-stamp trust anchors: none configured and no system CA bundle found",
            hint="pass --tsa-ca PEM or set tsa_ca in the config",
        )
    return anchors


def request_timestamp(
    data: bytes,
    urls: Sequence[str],
    anchors: Sequence[x509.Certificate],
    timeout: float = 10.0,
    *,
    every: bool = False,
) -> TimestampOutcome:
    """Ask authorities for a token over SHA-256(``data``): in turn until one checks out, or (``every``) all."""
    failures: list[TsaFailure] = []
    stamps: list[Stamp] = []
    for url in urls:
        try:
            stamps.append(_request_one(data, url, anchors, timeout))
        except TimestampError as error:
            failures.append(TsaFailure(url, error.message))
            continue
        if not every:
            break
    return TimestampOutcome(tuple(stamps), tuple(failures))


def _request_one(data: bytes, url: str, anchors: Sequence[x509.Certificate], timeout: float) -> Stamp:
    request = (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    http = urllib.request.Request(
        url,
        data=request.as_bytes(),
        headers={"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"},
        method="POST",
    )
    sent = local_clock()
    try:
        with urllib.request.urlopen(http, timeout=timeout) as answer:
            body = answer.read(MAX_RESPONSE + 1)
    except urllib.error.HTTPError as error:
        raise TimestampError(f"authority answered HTTP {error.code} {error.reason}") from None
    except (TimeoutError, ssl.SSLError, urllib.error.URLError, OSError) as error:
        raise TimestampError(_network_reason(error, timeout)) from None
    received = local_clock()
    if len(body) > MAX_RESPONSE:
        raise TimestampError(f"authority answered more than {MAX_RESPONSE} bytes; not a time-stamp response")
    info = check_token(body, data, anchors, nonce=request.nonce)
    local_mid = dt.datetime.fromtimestamp((sent + received) / 2, dt.UTC)
    offset = (info.gen_time - local_mid).total_seconds()
    return Stamp(token=body, info=info, tsa_url=url, clock_offset_seconds=round(offset, 3))


def verify_timestamp(tsr_bytes: bytes, data: bytes, trust_anchors: list[Path]) -> TimestampInfo:
    """Verify a stored TimeStampResp over ``data`` against PEM trust anchors (system bundle if none).

    Raises TimestampError naming the failed check: garbage, not granted, imprint mismatch, bad signature,
    untrusted chain.
    """
    return check_token(tsr_bytes, data, load_trust_anchors(trust_anchors))


def check_token(
    tsr_bytes: bytes, data: bytes, anchors: Sequence[x509.Certificate], nonce: int | None = None
) -> TimestampInfo:
    """Every check on one token, in the order that gives the most precise reason first."""
    try:
        return _check_token(tsr_bytes, data, anchors, nonce)
    except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm) as error:
        # rfc3161-client and cryptography parse lazily: a malformed part shows when it is first read.
        raise TimestampError(f"time-stamp token is malformed: {first_line(error, 200)}") from None


def _check_token(
    tsr_bytes: bytes, data: bytes, anchors: Sequence[x509.Certificate], nonce: int | None
) -> TimestampInfo:
    response = _parse(tsr_bytes)
    if response.status not in (PKIStatus.GRANTED.value, PKIStatus.GRANTED_WITH_MODS.value):
        detail = "; ".join(response.status_string) if response.status_string else ""
        raise TimestampError(f"authority refused the request (PKIStatus {response.status}) {detail}".strip())
    facts = token_facts(tsr_bytes)
    tst = response.tst_info
    imprint = tst.message_imprint
    known = _HASHES.get(imprint.hash_algorithm.dotted_string)
    if known is None:
        raise TimestampError(f"token uses unsupported hash algorithm {imprint.hash_algorithm.dotted_string}")
    hash_name, hash_fn = known
    if imprint.message != hash_fn(data).digest():
        raise TimestampError(f"message imprint mismatch: the token is over another {hash_name} than the data")
    if nonce is not None and tst.nonce != nonce:
        raise TimestampError("nonce mismatch: the token answers a different request (replay?)")
    unique = list({a.public_bytes(serialization.Encoding.DER): a for a in anchors}.values())  # a root in two files
    roots = [a for a in unique if _self_signed(a)]
    helpers = [a for a in unique if not _self_signed(a)]
    carried = [der for der in facts.certificates if is_signer(facts, der)]
    configured = [c for c in helpers if is_signer(facts, c.public_bytes(serialization.Encoding.DER))]
    if carried:
        signer_der = carried[0]
    elif configured:
        signer_der = configured[0].public_bytes(serialization.Encoding.DER)
    else:
        raise TimestampError(
            "the token carries no certificate of its signer and none configured matches it",
            hint="add the authority's certificate to --tsa-ca / tsa_ca",
        )
    try:
        signer = x509.load_der_x509_certificate(signer_der)
        authority = signer.subject.rfc4514_string()
    except ValueError:
        raise TimestampError("the token's signing certificate cannot be parsed") from None
    problem = ess_problem(facts, signer_der)
    if problem:
        raise TimestampError(f"{problem} ({authority})")
    if not roots:
        raise TimestampError("no self-signed trust anchor among the time-stamp CAs", hint="check --tsa-ca / tsa_ca")
    builder = VerifierBuilder()
    for anchor in roots:
        builder = builder.add_root_certificate(anchor)
    for helper in helpers:
        if helper.public_bytes(serialization.Encoding.DER) != signer_der:
            builder = builder.add_intermediate_certificate(helper)
    if not carried:
        builder = builder.tsa_certificate(signer)
    try:
        builder.build().verify_message(response, data)
    except VerificationError as error:
        raise TimestampError(_verification_reason(str(error), authority)) from None
    except ValueError as error:
        raise TimestampError(f"token cannot be verified: {first_line(error, 200)}") from None
    first = facts.ess[0]
    return TimestampInfo(
        gen_time=tst.gen_time.astimezone(dt.UTC) if tst.gen_time.tzinfo else tst.gen_time.replace(tzinfo=dt.UTC),
        serial_number=tst.serial_number,
        policy=tst.policy.dotted_string,
        hash_algorithm=hash_name,
        nonce=tst.nonce,
        authority=authority,
        accuracy_seconds=facts.accuracy_seconds,
        ess=f"{'ESSCertIDv2' if first.version == 2 else 'ESSCertID'} ({first.algorithm})",
    )


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _parse(tsr_bytes: bytes) -> TimeStampResponse:
    if not tsr_bytes:
        raise TimestampError("empty answer: not a time-stamp response")
    try:
        return decode_timestamp_response(strict_der(tsr_bytes))
    except ValueError:
        raise TimestampError("garbage: the answer is not a DER RFC 3161 time-stamp response") from None


def _verification_reason(text: str, authority: str) -> str:
    lowered = text.lower()
    if "certificate verify error" in lowered or "issuer" in lowered or "untrusted" in lowered:
        return f"untrusted chain: {authority} does not chain to a configured time-stamp trust anchor"
    if "certificate" in lowered and ("eku" in lowered or "neither found" in lowered):
        return f"authority certificate unusable for time-stamping: {text}"
    if "signature" in lowered or "digest" in lowered:
        return f"bad signature on the token from {authority}"
    return f"token verification failed: {(first_line(text, 200) or 'unknown error')}"


def _network_reason(error: BaseException, timeout: float) -> str:
    reason = getattr(error, "reason", error)
    if isinstance(reason, TimeoutError | ssl.SSLError) and "timed out" in str(reason).lower():
        return f"no answer within {timeout:g} s (timeout)"
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s (timeout)"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (authority down?)"
    text = getattr(reason, "strerror", None) or str(reason)
    return f"cannot reach authority: {(first_line(text, 200) or 'unknown error')}"

