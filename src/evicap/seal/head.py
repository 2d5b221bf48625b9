"""custody.head: the signed end of a custody log, rewritten on every append.

One canonical JSON object ``{"format": "evicap-custody-head", "seq", "line_sha256", "manifest_sha256", "time",
"signer": {"fingerprint", "public_key"}, "signature"}``: ``seq`` is the last event's, ``line_sha256`` the SHA-256
of the last line's exact bytes and ``signature`` the appender's Ed25519 signature over the canonical JSON without
``signature``. The hash chain alone cannot show that events were cut from the end (a prefix of a valid chain is a
valid chain); the head can, because nobody without a trusted key can sign a head for a shorter log. The head of
``x.jsonl`` is ``x.head`` beside it. What remains possible: docs/bundle-format.md ("What the head does not
prevent").
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from evicap.bundle.staging import atomic_write
from evicap.errors import BundleError
from evicap.seal.keys import Signer, fingerprint_of
from evicap.seal.signing import canonical_json


def head_path(log: Path) -> Path:
    """Where the signed head of the log at ``log`` lives: custody.jsonl -> custody.head (x.jsonl -> x.head)."""
    return log.with_name(log.name.removesuffix(".jsonl") + ".head")

HEAD_FORMAT = "evicap-custody-head"



@dataclass(frozen=True)
class LastEvent:
    """The log's last event as the head must name it."""

    seq: int
    line: bytes
    """The line's exact bytes, without its newline."""
    fingerprint: str
    """Key of the actor who appended it (the head is signed by the same key)."""


@dataclass(frozen=True)
class Head:
    """What custody.head says (read, not verified: verify_custody checks it)."""

    seq: int
    line_sha256: str
    fingerprint: str


def read_head(log: Path) -> Head | None:
    """The head beside ``log``, or None when there is none or it is unreadable."""
    try:
        data = json.loads(head_path(log).read_bytes()[: 64 * 1024])
        return Head(int(data["seq"]), str(data["line_sha256"]), str(data["signer"]["fingerprint"]))
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


def refuse_if_cut(path: Path, first: Mapping[str, Any], last_seq: int, last_sha256: str) -> None:
    """Appending re-signs the head: never over a log that no longer ends where its head says (that would launder
    a cut or an edit into a log that verifies)."""
    head = read_head(path)
    announced = isinstance(first.get("details"), dict) and "custody_head" in first["details"]
    if head is None:
        if announced:
            raise BundleError(f"{head_path(path)} is missing or unreadable: the log's end cannot be checked",
                              path=str(path), hint="the bundle was altered; not appending to its custody log")
        return
    if (head.seq, head.line_sha256) != (last_seq, last_sha256):
        raise BundleError(
            f"{path.name} does not end where {head_path(path).name} says (seq {head.seq}; the log ends at seq "
            f"{last_seq}): events cut or edited",
            path=str(path),
            hint="the bundle was altered; not appending to its custody log",
        )


def write_head(path: Path, signer: Signer, seq: int, line: bytes, manifest_sha256: str, time: str) -> None:
    """Sign the log's new end into custody.head: written beside it, then renamed over the old head."""
    head: dict[str, Any] = {
        "format": HEAD_FORMAT,
        "seq": seq,
        "line_sha256": hashlib.sha256(line).hexdigest(),
        "manifest_sha256": manifest_sha256,
        "time": time,
        "signer": {"fingerprint": signer.fingerprint, "public_key": public_b64(signer)},
    }
    head["signature"] = base64.b64encode(signer.sign(canonical_json(head))).decode("ascii")
    atomic_write(path, canonical_json(head) + b"\n")


def check_head(
    path: Path,
    last: LastEvent | None,
    required: bool,
    manifest_sha256: str,
    trusted: Collection[str],
) -> list[str]:
    """Why the head at ``path`` does not sign exactly the log's last line (empty: it does); see the docstring."""

    def problem(message: str) -> list[str]:
        return [message]

    try:
        raw = path.read_bytes() if path.stat().st_size <= 64 * 1024 else b""
    except FileNotFoundError:
        if required:
            return problem("missing: the log announces a signed head, so its end cannot be checked (removed?)")
        return []
    except OSError as error:
        return problem(f"unreadable: {error.strerror or error}")
    try:
        head = json.loads(raw.decode("utf-8"))
        signer = head["signer"]
        seq, line_sha256, fingerprint = head["seq"], str(head["line_sha256"]), str(signer["fingerprint"])
        der = base64.b64decode(signer["public_key"], validate=True)
        signature = base64.b64decode(head["signature"], validate=True)
        key = serialization.load_der_public_key(der)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError, UnsupportedAlgorithm):
        return problem("not a signed custody head (JSON with seq, line_sha256, signer, signature)")
    if head.get("format") != HEAD_FORMAT or not isinstance(seq, int):
        return problem("not a signed custody head (JSON with seq, line_sha256, signer, signature)")
    if not isinstance(key, ed25519.Ed25519PublicKey) or fingerprint_of(key) != fingerprint:
        return problem("signer public key is not the Ed25519 key its fingerprint names")
    try:
        key.verify(signature, canonical_json({k: v for k, v in head.items() if k != "signature"}))
    except InvalidSignature:
        return problem("signature does not match the head (edited after signing?)")
    found: list[str] = []
    if fingerprint not in trusted:
        found += problem(f"signed by key {fingerprint[:16]}… which is not trusted")
    if head.get("manifest_sha256") != manifest_sha256:
        found += problem("is bound to a different manifest.json")
    if last is None:
        return found + problem(f"names seq {seq} but the log has no event")
    if seq > last.seq:
        found += problem(f"names seq {seq} but the log ends at seq {last.seq}: events cut from its end")
    elif seq < last.seq:
        found += problem(f"names seq {seq} but the log goes on to seq {last.seq}: events appended without a "
                         "signed head")  # fmt: skip
    elif line_sha256 != hashlib.sha256(last.line).hexdigest():
        found += problem(f"seq {seq} is signed with another last line: the last event was replaced")
    elif fingerprint != last.fingerprint:
        found += problem("was not signed by the key that appended the last event")
    return found


def public_b64(signer: Signer) -> str:
    """Base64 DER SubjectPublicKeyInfo of the signer: how events and heads carry the key."""
    der = signer.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")
