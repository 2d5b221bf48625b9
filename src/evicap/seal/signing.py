"""Ed25519 signatures over exact bytes, and the canonical JSON that custody events are signed in.

The manifest signature is the raw 64-byte Ed25519 signature over the exact bytes of manifest.json, so that
``openssl pkeyutl -verify -rawin`` checks it without any evicap code.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.exceptions import InvalidSignature

from evicap.errors import SigningError
from evicap.seal.keys import load_public_key

SIGNATURE_SIZE = 64


class SignatureMismatch(SigningError):
    """A signature was checked and does not match: evidence problem, exit 1."""

    exit_code = 1


def canonical_json(obj: Any) -> bytes:
    """The one byte form evicap signs JSON in: sorted keys, no spaces, UTF-8 (not ASCII-escaped).

    ``jq -cS`` produces the same bytes for the values evicap writes (strings, integers, booleans, null).
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def verify_signature(manifest_bytes: bytes, sig_bytes: bytes, pub_pem: bytes) -> None:
    """Check a raw Ed25519 signature over ``manifest_bytes`` with the SPKI PEM ``pub_pem``.

    Raises SignatureMismatch when the signature is wrong or malformed, SigningError when the key is unusable.
    """
    key = load_public_key(pub_pem, "signer public key")
    if len(sig_bytes) != SIGNATURE_SIZE:
        raise SignatureMismatch(f"signature is {len(sig_bytes)} bytes; an Ed25519 signature is {SIGNATURE_SIZE} bytes")
    try:
        key.verify(sig_bytes, manifest_bytes)
    except InvalidSignature:
        raise SignatureMismatch("signature does not match the signed bytes under the signer's key") from None
