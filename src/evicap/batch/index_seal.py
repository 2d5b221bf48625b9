"""Sealing the case index like a bundle, and checking that seal.

Files beside ``case-index.json`` in the case directory (each named after the index, so a recipient sees at a
glance what seals what, and stock tools check them the same way as a bundle's seal):

    case-index.sig            raw 64-byte Ed25519 signature over the exact bytes of case-index.json
    case-index.pub.pem        the signer's SubjectPublicKeyInfo PEM
    case-index.tsr            RFC 3161 TimeStampResp over SHA-256(case-index.json), when an authority answered
    case-index.custody.jsonl  custody log bound to SHA-256(case-index.json): acquired, sealed, timestamped|note

When a resumed batch changes a sealed index, the old index and its seal files are moved, unchanged, to
``case-index.history/<n>/`` before the new ones are written: a sealed record is superseded, never overwritten.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evicap.bundle import layout
from evicap.errors import EvicapError, SigningError

SIGNATURE = "case-index.sig"
SIGNER_KEY = "case-index.pub.pem"
TIMESTAMP = "case-index.tsr"
CUSTODY = "case-index.custody.jsonl"
SEAL_FILES = (SIGNATURE, SIGNER_KEY, TIMESTAMP, CUSTODY)
HISTORY = "case-index.history"


@dataclass(frozen=True)
class IndexSeal:
    """What sealing the index achieved."""

    index_sha256: str
    timestamped: bool
    tsa_url: str | None
    warnings: tuple[str, ...]


def is_sealed(directory: Path) -> bool:
    return (directory / SIGNATURE).exists()


def archive_seal(directory: Path) -> Path | None:
    """Move a sealed index and its seal files to case-index.history/<n>/ (before the index changes)."""
    if not is_sealed(directory):
        for name in SEAL_FILES:  # an unsigned leftover (e.g. crash while sealing) seals nothing: drop it
            (directory / name).unlink(missing_ok=True)
        return None
    history = directory / HISTORY
    history.mkdir(exist_ok=True)
    number = 1 + max((int(p.name) for p in history.iterdir() if p.name.isdigit()), default=0)
    target = history / f"{number:03d}"
    target.mkdir()
    for name in (layout.INDEX, *SEAL_FILES):
        if (directory / name).exists():
            shutil.copy2(directory / name, target / name)
    for name in SEAL_FILES:
        (directory / name).unlink(missing_ok=True)
    return target


def seal_index(directory: Path, sealing: Any, details: dict[str, Any]) -> IndexSeal:
    """Sign, timestamp and start the custody log of ``directory/case-index.json``.

    ``sealing`` is the capture session's ``Sealing`` (a loaded signer and SealSettings). Raises SigningError when
    the signature cannot be made; a missing timestamp is a warning, as for bundles.
    """
    from evicap.seal.custody import Actor, append_event
    from evicap.seal.signing import verify_signature
    from evicap.seal.timestamp import load_trust_anchors, request_timestamp

    signer, settings = sealing.signer, sealing.settings
    actor = Actor(sealing.actor_name or "unknown", signer.fingerprint)
    archive_seal(directory)
    data = (directory / layout.INDEX).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    signature = signer.sign(data)
    try:
        verify_signature(data, signature, signer.public_pem)
    except EvicapError:
        raise SigningError("the case index signature just made does not verify; not sealing") from None
    _write(directory / SIGNER_KEY, signer.public_pem)
    _write(directory / SIGNATURE, signature)
    custody = directory / CUSTODY
    append_event(custody, signer, actor, "acquired", {"subject": "case index", **details}, digest)
    append_event(
        custody,
        signer,
        actor,
        "sealed",
        {"signature_file": SIGNATURE, "algorithm": "Ed25519", "key_fingerprint": signer.fingerprint},
        digest,
    )
    warnings: list[str] = []
    if settings.no_timestamp or not settings.tsa:
        reason = "time-stamping turned off (--no-timestamp)" if settings.no_timestamp else "no authority configured"
        append_event(custody, signer, actor, "note", {"timestamped": False, "reason": reason}, digest)
        return IndexSeal(digest, False, None, (f"case index not timestamped: {reason}",))
    try:
        outcome = request_timestamp(data, settings.tsa, load_trust_anchors(settings.tsa_ca), settings.tsa_timeout)
    except EvicapError as error:
        append_event(custody, signer, actor, "note", {"timestamped": False, "reason": error.message}, digest)
        return IndexSeal(digest, False, None, (f"case index not timestamped: {error.message}",))
    warnings += [f"{f.tsa_url}: {f.reason}" for f in outcome.failures]
    if outcome.stamp is None:
        append_event(custody, signer, actor, "note", {"timestamped": False, "reason": "no authority answered"}, digest)
        return IndexSeal(digest, False, None, (*warnings, "case index not timestamped: no authority answered"))
    stamp = outcome.stamp
    _write(directory / TIMESTAMP, stamp.token)
    append_event(
        custody,
        signer,
        actor,
        "timestamped",
        {
            "tsa": stamp.tsa_url,
            "gen_time": stamp.info.gen_time.isoformat().replace("+00:00", "Z"),
            "token_file": TIMESTAMP,
            "token_sha256": hashlib.sha256(stamp.token).hexdigest(),
            "clock_offset_ms": round(stamp.clock_offset_seconds * 1000),
        },
        digest,
    )
    return IndexSeal(digest, True, stamp.tsa_url, tuple(warnings))


def _write(path: Path, data: bytes) -> None:
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
