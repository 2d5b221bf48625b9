"""Checks of the seal: signature, signer trust, custody log (tokens: evicap.verify.timestamps).

The cryptography lives in evicap.seal (the same code that made the seal); this module turns each outcome into a
Check, so a verdict always says which part of the seal held and which did not.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from evicap.bundle import layout
from evicap.errors import EvicapError, VerificationError
from evicap.seal.custody import verify_custody
from evicap.seal.keys import public_key_fingerprint
from evicap.seal.signing import verify_signature
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


def custody_check(root: Path, manifest_bytes: bytes, trusted: Mapping[str, str]) -> Check:
    """`custody`: sequence, prev hashes, event signatures, first event bound to this manifest."""
    try:
        fd, info = open_inside(root, layout.CUSTODY)
    except PathProblem as problem:
        return failed("custody", f"{layout.CUSTODY}: {problem}")


    os.close(fd)
    if info.st_size > MAX_CUSTODY:
        return failed("custody", f"{layout.CUSTODY}: {info.st_size} bytes, more than {MAX_CUSTODY} allowed")
    if os.path.lexists(root / layout.CUSTODY_HEAD):
        try:
            head_fd, _head = open_inside(root, layout.CUSTODY_HEAD)
        except PathProblem as problem:
            return failed("custody", f"{layout.CUSTODY_HEAD}: {problem}")
        os.close(head_fd)
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    try:
        problems = verify_custody(root / layout.CUSTODY, manifest_sha256, set(trusted))
    except EvicapError as error:
        return failed("custody", f"{layout.CUSTODY}: {error.one_line()}")
    if problems:
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        return failed("custody", f"{shown}{more}")
    if not os.path.lexists(root / layout.CUSTODY_HEAD):
        return passed("custody", "custody log chain intact, every event signed, first event bound to this manifest "
                                 "(a log from before signed heads: events cut from its end would not show)")
    return passed("custody", "custody log chain intact, every event signed, first event bound to this manifest; "
                             f"{layout.CUSTODY_HEAD} signs its last event")
