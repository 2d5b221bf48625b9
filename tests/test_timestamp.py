"""RFC 3161 timestamps against a real local authority (openssl ts -reply), including every way it can fail."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest

from evicap.errors import TimestampError
from evicap.seal.timestamp import check_token, load_trust_anchors, request_timestamp, verify_timestamp
from evicap.seal.token import ess_problem, strict_der, token_facts
from tests.tsa import MATRIX, SLOW_SECONDS, AuthoritySpec, LocalTSA, tsa  # noqa: F401

STEP = 7  # every 7th byte: ~350 forgeries, each through the whole check
DATA = b'{"format": "evicap-bundle", "x": 1}\n'


def test_token_is_checked_kept_and_readable_by_openssl(tsa: LocalTSA, tmp_path: Path) -> None:  # noqa: F811
    outcome = request_timestamp(DATA, [tsa.url()], load_trust_anchors([tsa.ca_pem]), timeout=5)
    stamp = outcome.stamp
    assert stamp is not None and outcome.failures == ()
    assert stamp.tsa_url == tsa.url() and abs(stamp.clock_offset_seconds) < 5
    assert stamp.info.hash_algorithm == "SHA-256" and "evicap test TSA" in stamp.info.authority
    (tmp_path / "m.json").write_bytes(DATA)
    (tmp_path / "m.tsr").write_bytes(stamp.token)
    check = subprocess.run(
        ["openssl", "ts", "-verify", "-data", "m.json", "-in", "m.tsr", "-CAfile", str(tsa.ca_pem)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and "Verification: OK" in check.stdout
    # The token carries the authority's certificate (certReq) and a nonce.
    text = subprocess.run(
        ["openssl", "ts", "-reply", "-in", "m.tsr", "-text"], cwd=tmp_path, capture_output=True, text=True
    ).stdout
    assert "Nonce: 0x" in text and hashlib.sha256(DATA).hexdigest()[:8].upper() in text.replace(" ", "").upper()
    info = verify_timestamp(stamp.token, DATA, [tsa.ca_pem])
    assert info.gen_time == stamp.info.gen_time and info.serial_number == stamp.info.serial_number


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("down", "connection refused"),
        ("garbage", "garbage: the answer is not a DER RFC 3161 time-stamp response"),
        ("wrong-nonce", "nonce mismatch"),
        ("wrong-imprint", "message imprint mismatch"),
        ("untrusted", "untrusted chain: CN=evicap test TSA (rogue) does not chain to a configured"),
        ("error", "HTTP 500"),
    ],
)
def test_each_bad_authority_is_rejected_and_the_next_one_used(tsa: LocalTSA, mode: str, reason: str) -> None:  # noqa: F811
    bad = tsa.down_url if mode == "down" else tsa.url(mode)
    outcome = request_timestamp(DATA, [bad, tsa.url()], load_trust_anchors([tsa.ca_pem]), timeout=5)
    assert outcome.stamp is not None and outcome.stamp.tsa_url == tsa.url()
    [failure] = outcome.failures
    assert failure.tsa_url == bad and reason in failure.reason


def test_slow_authority_times_out(tsa: LocalTSA) -> None:  # noqa: F811
    started = time.monotonic()
    outcome = request_timestamp(DATA, [tsa.url("slow")], load_trust_anchors([tsa.ca_pem]), timeout=0.5)
    assert time.monotonic() - started < SLOW_SECONDS
    assert outcome.stamp is None
    assert "no answer within 0.5 s (timeout)" in outcome.failures[0].reason


def test_verify_stored_token_names_the_failed_check(tsa: LocalTSA) -> None:  # noqa: F811
    token = request_timestamp(DATA, [tsa.url()], load_trust_anchors([tsa.ca_pem])).stamp
    assert token is not None
    with pytest.raises(TimestampError, match="message imprint mismatch"):
        verify_timestamp(token.token, DATA + b" ", [tsa.ca_pem])
    with pytest.raises(TimestampError, match="untrusted chain"):
        verify_timestamp(token.token, DATA, [tsa.other_ca_pem])
    with pytest.raises(TimestampError, match="garbage"):
        verify_timestamp(b"\x30\x03\x02\x01\x00garbage", DATA, [tsa.ca_pem])
    # Flip one bit of the ECDSA signature (the token's last bytes): structure intact, signature bad.
    forged = bytearray(token.token)
    forged[-3] ^= 0x01
    with pytest.raises(TimestampError, match="bad signature on the token"):
        verify_timestamp(bytes(forged), DATA, [tsa.ca_pem])


def test_unreadable_trust_anchor_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TimestampError, match="cannot read time-stamp trust anchor"):
        load_trust_anchors([tmp_path / "missing.pem"])
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(TimestampError, match="holds no PEM certificate"):
        load_trust_anchors([tmp_path / "junk.pem"])


@pytest.mark.parametrize("spec", MATRIX, ids=[spec.name for spec in MATRIX])
def test_every_kind_of_authority_is_accepted_and_its_token_kept_as_received(
    tsa: LocalTSA, spec: AuthoritySpec, tmp_path: Path  # noqa: F811
) -> None:
    signer = tsa.matrix_signer(spec.name)
    needs = signer.verifier_needs
    anchors = [tsa.ca_pem] if needs is None else [tsa.ca_pem, needs]
    outcome = request_timestamp(DATA, [tsa.matrix_url(spec.name)], load_trust_anchors(anchors), timeout=10)
    assert outcome.failures == () and outcome.stamp is not None, outcome.failures
    info = outcome.stamp.info
    assert info.authority == f"CN=evicap test TSA ({spec.name})"
    assert info.accuracy_seconds == (1.0 if spec.accuracy else None)
    assert info.ess == ("ESSCertID (sha1)" if spec.ess == "sha1" else "ESSCertIDv2 (sha256)")
    # openssl puts the signer first; an RSA signer's certificate is longer than the EC CAs', so that SET is never in
    # DER order (the quirk rfc3161-client refuses) and the token is kept as sent, not re-encoded. (EC chains are
    # unsorted too, but whether depends on signature lengths.) Without a chain there is nothing to sort.
    if spec.chain and spec.key == "rsa":
        assert strict_der(outcome.stamp.token) != outcome.stamp.token
    if not (spec.chain and spec.embed_chain):
        assert strict_der(outcome.stamp.token) == outcome.stamp.token
    # The stored bytes are what the authority sent: openssl reads them, without our re-encoding.
    (tmp_path / "m.json").write_bytes(DATA)
    (tmp_path / "m.tsr").write_bytes(outcome.stamp.token)
    untrusted = [] if needs is None else ["-untrusted", str(needs)]
    check = subprocess.run(
        ["openssl", "ts", "-verify", "-data", "m.json", "-in", "m.tsr", "-CAfile", str(tsa.ca_pem), *untrusted],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0 and "Verification: OK" in check.stdout, check.stderr
    assert verify_timestamp(outcome.stamp.token, DATA, [Path(p) for p in anchors]).serial_number == info.serial_number


def test_token_without_certificates_needs_the_authoritys_certificate(tsa: LocalTSA) -> None:  # noqa: F811
    outcome = request_timestamp(DATA, [tsa.matrix_url("ec-no-certs")], load_trust_anchors([tsa.ca_pem]))
    assert outcome.stamp is None
    assert "carries no certificate of its signer and none configured matches it" in outcome.failures[0].reason


def test_authority_certificate_alone_is_no_trust_anchor(tsa: LocalTSA) -> None:  # noqa: F811
    """The authority's own certificate in tsa_ca helps build the chain; it does not replace the root."""
    signer = tsa.matrix_signer("ec-no-certs")
    outcome = request_timestamp(
        DATA, [tsa.matrix_url("ec-no-certs")], load_trust_anchors([tsa.other_ca_pem, signer.cert_pem])
    )
    assert outcome.stamp is None and "untrusted chain" in outcome.failures[0].reason


def test_ess_cert_id_must_name_the_signing_certificate(tsa: LocalTSA) -> None:  # noqa: F811
    """A token whose signer certificate was swapped for another one with the same issuer and serial fails."""
    token = request_timestamp(DATA, [tsa.url()], load_trust_anchors([tsa.ca_pem])).stamp
    assert token is not None
    facts = token_facts(token.token)
    assert ess_problem(facts, facts.certificates[0]) is None
    assert "ESSCertID does not match" in str(ess_problem(facts, facts.certificates[0] + b"\x00"))


def test_every_authority_is_asked_when_asked_to(tsa: LocalTSA) -> None:  # noqa: F811
    urls = [tsa.url(), tsa.down_url, tsa.matrix_url("second")]
    outcome = request_timestamp(DATA, urls, load_trust_anchors([tsa.ca_pem]), timeout=5, every=True)
    assert [s.tsa_url for s in outcome.stamps] == [tsa.url(), tsa.matrix_url("second")]
    assert [f.tsa_url for f in outcome.failures] == [tsa.down_url]
    first = request_timestamp(DATA, urls, load_trust_anchors([tsa.ca_pem]), timeout=5)
    assert [s.tsa_url for s in first.stamps] == [tsa.url()]


def test_the_same_root_in_two_trust_files_is_one_anchor(tsa: LocalTSA, tmp_path: Path) -> None:  # noqa: F811
    """Regression: a root given twice (tsa_ca plus a chain file holding it) was an internal error in the verifier."""
    copy = tmp_path / "again.pem"
    copy.write_bytes(tsa.ca_pem.read_bytes())
    outcome = request_timestamp(DATA, [tsa.url()], load_trust_anchors([tsa.ca_pem, copy]))
    assert outcome.stamp is not None, outcome.failures


@pytest.mark.parametrize("name", ["rsa-chain-sha1", "ec-no-certs"])
def test_any_flipped_byte_is_a_timestamp_error_never_a_crash(tsa: LocalTSA, name: str) -> None:  # noqa: F811
    """Hostile tokens: every single-byte change gives TimestampError or, where the byte lies in a certificate the
    verifier does not use (the embedded root), a token that still verifies. (Run with STEP = 1 once: all pass.)"""
    needs = tsa.matrix_signer(name).verifier_needs
    anchors = load_trust_anchors([tsa.ca_pem] if needs is None else [tsa.ca_pem, needs])
    token = request_timestamp(DATA, [tsa.matrix_url(name)], anchors).stamp
    assert token is not None
    original = check_token(token.token, DATA, anchors)
    rejected = 0
    for offset in range(0, len(token.token), STEP):
        forged = bytearray(token.token)
        forged[offset] ^= 0x5A
        try:
            info = check_token(bytes(forged), DATA, anchors)
        except TimestampError:
            rejected += 1
            continue
        assert (info.gen_time, info.serial_number, info.authority) == (
            original.gen_time, original.serial_number, original.authority)
    assert rejected > len(token.token) // STEP * 0.6
