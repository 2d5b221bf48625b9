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

Every append also re-signs the log's end into custody.head (evicap.seal.head), under the same lock, and is refused
when the log no longer ends where that head says. Logs begun by an evicap without heads announce none: their
``acquired`` and ``sealed`` events lack ``custody_head``, and only those may lack the head.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from evicap.errors import BundleError, SigningError
from evicap.seal.head import LastEvent, check_head, head_path, public_b64, refuse_if_cut, write_head
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
    "reported",
    "matched",
    "requested",
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
    file: str = "custody.jsonl"

    def __str__(self) -> str:
        if self.file != "custody.jsonl":
            return f"{self.file}: {self.message}"
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
            refuse_if_cut(path, first, seq - 1, prev)
        event: dict[str, Any] = {
            "seq": seq,
            "time": time or utc_now(),
            "actor": {"name": actor.name, "fingerprint": actor.fingerprint, "public_key": public_b64(signer)},
            "action": action,
            "details": dict(details),
            "manifest_sha256": manifest_sha256,
            "prev": prev,
        }
        event["signature"] = base64.b64encode(signer.sign(canonical_json(event))).decode("ascii")
        line = canonical_json(event)
        handle.write(line + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
        write_head(head_path(path), signer, seq, line, manifest_sha256, str(event["time"]))
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


MAX_LINE = 1024 * 1024
"""A custody event is a few KiB; a longer line is reported, not parsed."""
MAX_PROBLEMS = 20
"""Problems kept in full; the rest are counted (a hostile log must not grow memory with its size)."""
MAX_BAD_LINES = 1000
"""Unparseable lines after which the rest of the log is not examined: it is broken anyway."""


def _lines(handle: BinaryIO) -> Iterator[tuple[bytes, bool, bool]]:
    """(line without newline, too long, ended by a newline), reading at most MAX_LINE + 1 bytes at a time."""
    while True:
        raw = handle.readline(MAX_LINE + 1)
        if not raw:
            return
        if len(raw) <= MAX_LINE or raw.endswith(b"\n"):
            yield raw.rstrip(b"\n"), False, raw.endswith(b"\n")
            continue
        digest = hashlib.sha256(raw)
        while raw and not raw.endswith(b"\n"):  # skip the rest of an over-long line, still hashing it
            raw = handle.readline(MAX_LINE + 1)
            digest.update(raw.rstrip(b"\n"))
        yield digest.digest(), True, raw.endswith(b"\n")


def verify_custody(path: Path, manifest_sha256: str, trusted_fingerprints: Collection[str]) -> list[CustodyProblem]:
    """Check the whole log: parse, seq order, prev chain, signatures, keys, the binding to manifest.json, the head.

    Returns the problems found (empty list: the log is intact): the first MAX_PROBLEMS in full, then one saying
    how many more. The log is read line by line, so time grows with its size and memory does not. Signatures by
    keys whose fingerprint is not in ``trusted_fingerprints`` are reported as problems too, after the signature
    itself was checked.
    """
    problems: list[CustodyProblem] = []
    extra = 0

    def add(found: CustodyProblem) -> None:
        nonlocal extra
        if len(problems) < MAX_PROBLEMS:
            problems.append(found)
        else:
            extra += 1

    prev_hash: str | None = None
    last: LastEvent | None = None
    heads_announced = False
    bad_lines = 0
    index = -1
    try:
        handle = open(path, "rb")  # noqa: SIM115 - the with below closes it; only the open's failure is told here
    except OSError as error:
        return [CustodyProblem(0, None, f"cannot read: {error.strerror or error}")]
    with handle:
        for index, (raw, too_long, terminated) in enumerate(_lines(handle)):
            number = index + 1
            if not terminated:
                add(CustodyProblem(number, None, "last line has no newline (truncated?)"))
            if too_long:
                add(CustodyProblem(number, None, f"line longer than {MAX_LINE} bytes: not a custody event"))
                prev_hash, bad_lines = raw.hex(), bad_lines + 1
                continue
            try:
                data = json.loads(raw.decode("utf-8"))
                event = _event(data, number)
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError,
                    RecursionError):  # fmt: skip
                add(CustodyProblem(number, None, "not a valid custody event (JSON)"))
                prev_hash, bad_lines = hashlib.sha256(raw).hexdigest(), bad_lines + 1
                if bad_lines >= MAX_BAD_LINES:
                    add(CustodyProblem(number, None, f"{MAX_BAD_LINES} lines are no custody events; "
                                                     "the rest of the log was not examined"))  # fmt: skip
                    break
                continue
            for message in _event_problems(data, event, index, prev_hash, manifest_sha256, trusted_fingerprints):
                add(CustodyProblem(number, event.seq, message))
            prev_hash = hashlib.sha256(raw).hexdigest()
            last = LastEvent(event.seq, raw, event.actor.fingerprint)
            heads_announced = heads_announced or "custody_head" in event.details
    if index < 0:
        return [CustodyProblem(0, None, "empty log: no acquisition event")]
    if bad_lines < MAX_BAD_LINES:
        head = head_path(path)
        for message in check_head(head, last, heads_announced, manifest_sha256, trusted_fingerprints):
            add(CustodyProblem(0, None, message, head.name))
    if extra:
        problems.append(CustodyProblem(0, None, f"and {extra} more problems"))
    return problems


def _event_problems(
    data: dict[str, Any],
    event: CustodyEvent,
    index: int,
    prev_hash: str | None,
    manifest_sha256: str,
    trusted: Collection[str],
) -> list[str]:
    messages = []
    if event.seq != index:
        messages.append(f"seq is {event.seq}, expected {index} (event missing, reordered or inserted)")
    if event.prev != prev_hash:
        messages.append("prev does not match the SHA-256 of the previous line (chain broken)")
    if index == 0 and event.manifest_sha256 != manifest_sha256:
        messages.append("first event is bound to a different manifest.json (manifest altered or log swapped)")
    elif index > 0 and event.manifest_sha256 != manifest_sha256:
        messages.append("records a manifest.json hash different from the current one")
    if index == 0 and event.action != "acquired":
        messages.append(f"first event is {event.action!r}, expected 'acquired'")
    messages += _check_signature(data, event)
    if event.actor.fingerprint not in trusted:
        messages.append(f"signed by key {event.actor.fingerprint[:16]}… which is not trusted")
    return messages


def _check_signature(data: dict[str, Any], event: CustodyEvent) -> list[str]:
    try:
        der = base64.b64decode(data["actor"]["public_key"], validate=True)
        key = serialization.load_der_public_key(der)
        signature = base64.b64decode(event.signature, validate=True)
    except (KeyError, TypeError, ValueError, UnsupportedAlgorithm):
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
