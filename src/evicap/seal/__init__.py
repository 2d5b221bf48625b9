"""Sealing: Ed25519 keys and signatures, RFC 3161 timestamps, the custody log, and ``seal_bundle``."""

from evicap.seal.custody import Actor, CustodyEvent, CustodyProblem, append_event, read_events, verify_custody
from evicap.seal.keys import Signer, generate_key, load_key, public_key_fingerprint
from evicap.seal.sealer import SealResult, SealSettings, load_signer, seal_bundle, timestamp_bundle
from evicap.seal.signing import SignatureMismatch, canonical_json, verify_signature
from evicap.seal.timestamp import TimestampInfo, verify_timestamp

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
