"""Sealing: Ed25519 keys and signatures, RFC 3161 timestamps, the custody log, and ``seal_bundle``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evicap.lazy import lazy_names

if TYPE_CHECKING:
    from evicap.seal.custody import Actor, CustodyEvent, CustodyProblem, append_event, read_events, verify_custody
    from evicap.seal.keys import Signer, generate_key, load_key, public_key_fingerprint
    from evicap.seal.sealer import SealResult, SealSettings, load_signer, seal_bundle, timestamp_bundle
    from evicap.seal.signing import SignatureMismatch, canonical_json, verify_signature
    from evicap.seal.timestamp import TimestampInfo, verify_timestamp

# Each name is imported from its module on first use: a capture that only reads the clock (seal.clock) or signs
# without a time-stamp authority does not load the RFC 3161 and ASN.1 machinery (about 0.3 s of CPU).
_HOME = {
    **dict.fromkeys(("Actor", "CustodyEvent", "CustodyProblem", "append_event", "read_events", "verify_custody"),
                    "custody"),
    **dict.fromkeys(("Signer", "generate_key", "load_key", "public_key_fingerprint"), "keys"),
    **dict.fromkeys(("SealResult", "SealSettings", "load_signer", "seal_bundle", "timestamp_bundle"), "sealer"),
    **dict.fromkeys(("SignatureMismatch", "canonical_json", "verify_signature"), "signing"),
    **dict.fromkeys(("TimestampInfo", "verify_timestamp"), "timestamp"),
}


__getattr__ = lazy_names(__name__, _HOME)


__all__ = [
    "Actor",
    "CustodyEvent",
    "CustodyProblem",
    "SealResult",
    "SealSettings",
    "SignatureMismatch",
    "Signer",
    "TimestampInfo",
    "append_event",
    "canonical_json",
    "generate_key",
    "load_key",
    "load_signer",
    "public_key_fingerprint",
    "read_events",
    "seal_bundle",
    "timestamp_bundle",
    "verify_custody",
    "verify_signature",
    "verify_timestamp",
]
