"""custody.jsonl: an append-only, hash-chained log of signed custody events.

One JSON object per line (UTF-8, ``\\n``-terminated):

    {"seq": 0, "time": "2025-01-31T12:00:00Z", "actor": {"name", "fingerprint", "public_key"},
     "action": "acquired", "details": {...}, "manifest_sha256": "...", "prev": null, "signature": "..."}

``prev`` is the SHA-256 hex of the previous line's exact bytes (without its newline), so
``sed -n Np custody.jsonl | tr -d '\\n' | sha256sum`` recomputes it. ``signature`` is base64 Ed25519 by the
actor's key over the canonical JSON (``signing.canonical_json``) of the event without ``signature``.
``public_key`` (base64 DER SubjectPublicKeyInfo) makes each line checkable on its own; whether that key is
*trusted* is decided by its fingerprint. The first event binds the log to one manifest.json: every later
event records the manifest hash re-computed at that moment, and appending is refused once it differs.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from evicap.errors import BundleError, SigningError
from evicap.seal.keys import Signer, fingerprint_of
from evicap.seal.signing import canonical_json

ACTIONS = (
    "acquired",
    "sealed",
    "timestamped",
    "copied",
    "exported",
    "transferred",
    "received",
    "verified",
    "note",
    "matched",
)


@dataclass(frozen=True)
class Actor:
    """Who performed a custody action: a person's name and the fingerprint of the key they sign with."""

    name: str
    fingerprint: str


@dataclass(frozen=True)
class CustodyEvent:
    """One line of custody.jsonl, parsed."""

    seq: int
    time: str
    actor: Actor
    action: str
    details: dict[str, Any]
    manifest_sha256: str
    prev: str | None
    signature: str
    line: int = field(default=0, compare=False)
    """1-based line number in the file it was read from."""


@dataclass(frozen=True)
class CustodyProblem:
    """One thing wrong with a custody log, pinned to a line (and seq when the line parsed)."""

    line: int
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (seq {self.seq})" if self.seq is not None else "")
        return f"custody.jsonl {where}: {self.message}"


def utc_now() -> str:
    """Current UTC time as ISO 8601 with a Z, to the microsecond."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def append_event(
    path: Path,
    signer: Signer,
    actor: Actor,
    action: str,
    details: Mapping[str, Any],
    manifest_sha256: str,
    *,
    time: str | None = None,
) -> CustodyEvent:
    """Sign and append one event; creates the log (seq 0) when it does not exist yet.

    Refuses (BundleError) when ``manifest_sha256`` differs from the hash the first event is bound to.
    The file is locked while the last line is read and the new one written, so two appenders cannot fork it.
    """
    if actor.fingerprint != signer.fingerprint:
        raise SigningError(f"actor fingerprint {actor.fingerprint[:16]}… is not the signing key's")
    if action not in ACTIONS:
        raise BundleError(f"unknown custody action {action!r}", hint=f"one of: {', '.join(ACTIONS)}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    with os.fdopen(fd, "r+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        handle.seek(0)
        content = handle.read()
        lines = content.split(b"\n")
        if content and not content.endswith(b"\n"):
            raise BundleError(f"{path} does not end with a newline: last event incomplete", path=str(path))
        lines = [line for line in lines if line]
        prev: str | None = None
        seq = 0
        if lines:
            first = _load_line(path, lines[0], 1)
            if first.get("manifest_sha256") != manifest_sha256:
                raise BundleError(
                    f"manifest.json no longer matches the custody log ({path.name} seq 0 is bound to "
                    f"{str(first.get('manifest_sha256'))[:16]}…, manifest.json now hashes to {manifest_sha256[:16]}…)",
                    path=str(path),
                    hint="the bundle was altered; not appending to its custody log",
                )
            last = _load_line(path, lines[-1], len(lines))
            seq = int(last.get("seq", len(lines) - 1)) + 1
            prev = hashlib.sha256(lines[-1]).hexdigest()
        event: dict[str, Any] = {
            "seq": seq,
            "time": time or utc_now(),
            "actor": {"name": actor.name, "fingerprint": actor.fingerprint, "public_key": _public_b64(signer)},
            "action": action,
            "details": dict(details),
            "manifest_sha256": manifest_sha256,
            "prev": prev,
        }
        event["signature"] = base64.b64encode(signer.sign(canonical_json(event))).decode("ascii")
        handle.write(canonical_json(event) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return _event(event, len(lines) + 1)


def read_events(path: Path) -> list[CustodyEvent]:
    """Parse every line; BundleError naming the line when one is not a custody event."""
    events = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            data = _load_line(path, raw.rstrip(b"\n"), number)
            try:
                events.append(_event(data, number))
            except (KeyError, TypeError, ValueError):
                raise BundleError(f"{path} line {number}: not a custody event", path=str(path)) from None
    return events


def verify_custody(path: Path, manifest_sha256: str, trusted_fingerprints: Collection[str]) -> list[CustodyProblem]:
    """Check the whole log: parse, seq order, prev chain, signatures, keys, and the binding to manifest.json.

    Returns every problem found (empty list: the log is intact). Signatures by keys whose fingerprint is not in
    ``trusted_fingerprints`` are reported as problems too, after the signature itself was checked.
    """
    problems: list[CustodyProblem] = []
    try:
        content = path.read_bytes()
    except OSError as error:
        return [CustodyProblem(0, None, f"cannot read: {error.strerror or error}")]
    if not content:
        return [CustodyProblem(0, None, "empty log: no acquisition event")]
    if not content.endswith(b"\n"):
        problems.append(CustodyProblem(content.count(b"\n") + 1, None, "last line has no newline (truncated?)"))
    prev_hash: str | None = None
    for index, raw in enumerate(content.rstrip(b"\n").split(b"\n")):
        number = index + 1
        try:
            data = json.loads(raw.decode("utf-8"))
            event = _event(data, number)
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            problems.append(CustodyProblem(number, None, "not a valid custody event (JSON)"))
            prev_hash = hashlib.sha256(raw).hexdigest()
            continue

        def problem(message: str, event: CustodyEvent = event, number: int = number) -> None:
            problems.append(CustodyProblem(number, event.seq, message))

        if event.seq != index:
            problem(f"seq is {event.seq}, expected {index} (event missing, reordered or inserted)")
        if event.prev != prev_hash:
            problem("prev does not match the SHA-256 of the previous line (chain broken)")
        if index == 0 and event.manifest_sha256 != manifest_sha256:
            problem("first event is bound to a different manifest.json (manifest altered or log swapped)")
        elif index > 0 and event.manifest_sha256 != manifest_sha256:
            problem("records a manifest.json hash different from the current one")
        if index == 0 and event.action != "acquired":
            problem(f"first event is {event.action!r}, expected 'acquired'")
        problems.extend(CustodyProblem(number, event.seq, m) for m in _check_signature(data, event))
        if event.actor.fingerprint not in trusted_fingerprints:
            problem(f"signed by key {event.actor.fingerprint[:16]}… which is not trusted")
        prev_hash = hashlib.sha256(raw).hexdigest()
    return problems


def _check_signature(data: dict[str, Any], event: CustodyEvent) -> list[str]:
    try:
        der = base64.b64decode(data["actor"]["public_key"], validate=True)
        key = serialization.load_der_public_key(der)
        signature = base64.b64decode(event.signature, validate=True)
    except (KeyError, TypeError, ValueError):
        return ["actor public key or signature is missing or malformed"]
    if not isinstance(key, ed25519.Ed25519PublicKey):
        return ["actor public key is not Ed25519"]
    messages = []
    if fingerprint_of(key) != event.actor.fingerprint:
        messages.append("actor public key does not match the actor fingerprint")
    unsigned = {k: v for k, v in data.items() if k != "signature"}
    try:
        key.verify(signature, canonical_json(unsigned))
    except InvalidSignature:
        messages.append("signature does not match the event (edited after signing?)")
    return messages


def _public_b64(signer: Signer) -> str:
    der = signer.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def _load_line(path: Path, raw: bytes, number: int) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError(f"{path} line {number}: not valid JSON", path=str(path)) from None
    if not isinstance(data, dict):
        raise BundleError(f"{path} line {number}: not a JSON object", path=str(path))
    return data


def _event(data: dict[str, Any], number: int) -> CustodyEvent:
    actor = data["actor"]
    seq = data["seq"]
    if not isinstance(seq, int) or not isinstance(actor, dict) or not isinstance(data["details"], dict):
        raise ValueError("malformed event")
    return CustodyEvent(
        seq=seq,
        time=str(data["time"]),
        actor=Actor(str(actor["name"]), str(actor["fingerprint"])),
        action=str(data["action"]),
        details=data["details"],
        manifest_sha256=str(data["manifest_sha256"]),
        prev=data["prev"],
        signature=str(data["signature"]),
        line=number,
    )
