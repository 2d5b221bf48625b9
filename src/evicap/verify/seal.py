"""Checks of the seal: signature, signer trust, RFC 3161 timestamp, custody log.

The cryptography lives in evicap.seal (the same code that made the seal); this module turns each outcome into a
Check, so a verdict always says which part of the seal held and which did not.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evicap.bundle import layout
from evicap.errors import EvicapError, VerificationError
from evicap.seal.custody import verify_custody
from evicap.seal.keys import public_key_fingerprint
from evicap.seal.signing import verify_signature
from evicap.seal.timestamp import verify_timestamp
from evicap.verify.paths import PathProblem, open_inside, read_small
from evicap.verify.report import Check, failed, not_checked, passed

MAX_SEAL_FILE = 1024 * 1024
MAX_CUSTODY = 64 * 1024 * 1024


def trusted_fingerprints(paths: Iterable[Path]) -> dict[str, str]:
    """Fingerprint -> file for every public key given (files, or directories of *.pem files).

    A key file that cannot be read is a usage problem (exit 2), not a verification result: the user named it.
    """
    found: dict[str, str] = {}
    for path in paths:
        files = sorted(p for p in path.iterdir() if p.suffix == ".pem" or p.name.endswith(".pub")) \
            if path.is_dir() else [path]
        for file in files:
            try:
                pem = file.read_bytes()
                found[public_key_fingerprint(pem)] = str(file)
            except (OSError, EvicapError) as error:
                message = error.one_line() if isinstance(error, EvicapError) else (error.strerror or str(error))
                raise VerificationError(
                    f"trusted key {file}: {message}", hint="give an Ed25519 public key in PEM (keys show)"
                ) from None
    return found


def _read(root: Path, name: str, limit: int = MAX_SEAL_FILE) -> bytes | str:
    """The file's bytes, or the reason it cannot be used."""
    try:
        return read_small(root, name, limit)
    except PathProblem as problem:
        return f"{name}: {problem}"
    except OSError as error:
        return f"{name}: unreadable: {error.strerror or error}"


def signature_checks(
    root: Path, manifest_bytes: bytes, manifest: Mapping[str, Any] | None, trusted: Mapping[str, str]
) -> list[Check]:
    """`signature` (manifest.sig over manifest.json with signer.pub.pem) and `signer-trust`."""
    sig = _read(root, layout.SIGNATURE)
    pem = _read(root, layout.SIGNER_KEY)
    if isinstance(sig, str) or isinstance(pem, str):
        reason = "; ".join(r for r in (sig, pem) if isinstance(r, str))
        return [failed("signature", f"cannot check the signature: {reason}"),
                not_checked("signer-trust", "no verifiable signature")]
    try:
        verify_signature(manifest_bytes, sig, pem)
        fingerprint = public_key_fingerprint(pem)
    except EvicapError as error:
        return [failed("signature", f"{layout.SIGNATURE} does not verify over {layout.MANIFEST}: {error.one_line()}"),
                not_checked("signer-trust", "no verifiable signature")]
    checks = [passed("signature", f"Ed25519 signature over {layout.MANIFEST} verifies with {layout.SIGNER_KEY}")]
    named = (manifest or {}).get("seal", {}) if isinstance(manifest, Mapping) else {}
    named_fp = named.get("signer_fingerprint") if isinstance(named, Mapping) else None
    if named_fp is not None and named_fp != fingerprint:
        checks.append(failed("signer-trust", f"manifest names signer {named_fp} but {layout.SIGNER_KEY} is "
                                             f"{fingerprint}"))
    elif fingerprint in trusted:
        checks.append(passed("signer-trust", f"signer {fingerprint} is trusted ({trusted[fingerprint]})"))
    elif not trusted:
        checks.append(failed("signer-trust", f"valid signature by unknown key {fingerprint}: no trusted keys given "
                                             "(--trusted-key PUB.pem or trusted_keys in the config)"))
    else:
        checks.append(failed("signer-trust", f"valid signature by unknown key {fingerprint}: not among the "
                                             f"{len(trusted)} trusted key(s)"))
    return checks


def _parse_utc(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _custody_says_timestamped(root: Path) -> bool:
    """Whether custody.jsonl records that a token was added: then a missing manifest.tsr was removed."""
    log = _read(root, layout.CUSTODY, MAX_CUSTODY)
    if isinstance(log, str):
        return False
    for line in log.splitlines():
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(event, dict) and event.get("action") == "timestamped":
            return True
    return False


def timestamp_check(
    root: Path, manifest_bytes: bytes, manifest: Mapping[str, Any] | None, anchors: list[Path]
) -> Check:
    """`timestamp`: imprint, token signature, chain to an anchor, and a time after the capture started."""
    try:
        fd, _info = open_inside(root, layout.TIMESTAMP)
    except PathProblem as problem:
        if str(problem) == "missing":
            if _custody_says_timestamped(root):
                return failed("timestamp", f"{layout.TIMESTAMP} removed: the custody log records a "
                                           "'timestamped' event but the bundle has no token")
            return not_checked("timestamp", "bundle is not timestamped (no manifest.tsr): its time rests on the "
                                             "capturing machine's clock only")
        return failed("timestamp", f"{layout.TIMESTAMP}: {problem}")


    os.close(fd)
    token = _read(root, layout.TIMESTAMP)
    if isinstance(token, str):
        return failed("timestamp", token)
    try:
        info = verify_timestamp(token, manifest_bytes, anchors)
    except EvicapError as error:
        return failed("timestamp", f"{layout.TIMESTAMP}: {error.one_line()}")
    gen_time = getattr(info, "gen_time", None)
    capture = manifest.get("capture") if isinstance(manifest, Mapping) else None
    started = _parse_utc(capture.get("started_at")) if isinstance(capture, Mapping) else None
    if not isinstance(gen_time, datetime):
        return failed("timestamp", "token verified but carries no usable time")
    gen_utc = gen_time if gen_time.tzinfo else gen_time.replace(tzinfo=timezone.utc)
    if started is None:
        return failed("timestamp", "manifest has no usable capture.started_at to compare the token time with")
    if gen_utc < started:
        return failed("timestamp", f"token time {gen_utc.isoformat()} is before the capture started "
                                   f"({started.isoformat()})")
    return passed("timestamp", f"RFC 3161 token over SHA-256(manifest.json) verifies; time "
                               f"{gen_utc.isoformat()}, after the capture started")


def custody_check(root: Path, manifest_bytes: bytes, trusted: Mapping[str, str]) -> Check:
    """`custody`: sequence, prev hashes, event signatures, first event bound to this manifest."""
    try:
        fd, info = open_inside(root, layout.CUSTODY)
    except PathProblem as problem:
        return failed("custody", f"{layout.CUSTODY}: {problem}")


    os.close(fd)
    if info.st_size > MAX_CUSTODY:
        return failed("custody", f"{layout.CUSTODY}: {info.st_size} bytes, more than {MAX_CUSTODY} allowed")
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    try:
        problems = verify_custody(root / layout.CUSTODY, manifest_sha256, set(trusted))
    except EvicapError as error:
        return failed("custody", f"{layout.CUSTODY}: {error.one_line()}")
    if problems:
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        return failed("custody", f"{layout.CUSTODY}: {shown}{more}")
    return passed("custody", "custody log chain intact, every event signed, first event bound to this manifest")
