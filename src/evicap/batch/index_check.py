"""Checks of a case directory's index: its seal, and that it still names the bundles beside it.

Each listed bundle must be a directory inside the case directory (no absolute path, no ``..``, no symlink) whose
manifest.json has exactly the SHA-256 the index recorded. The contents of each bundle are not re-checked here:
``verify_bundle`` does that, and ``evicap verify DIR`` runs it on every bundle after these checks.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from evicap.batch.index_seal import CUSTODY, SIGNATURE, SIGNER_KEY, TIMESTAMP
from evicap.bundle import layout
from evicap.errors import EvicapError
from evicap.verify.report import Check, failed, not_checked, passed

MAX_INDEX = 256 * 1024 * 1024
MAX_SEAL_FILE = 16 * 1024 * 1024


def check_index(directory: Path, *, trusted_keys: list[Path], tsa_cas: list[Path]) -> list[Check]:
    from evicap.verify.seal import trusted_fingerprints

    index_path = directory / layout.INDEX
    data = _read(index_path, MAX_INDEX)
    if isinstance(data, str):
        return [failed("case-index", f"{layout.INDEX}: {data}")]
    try:
        index = json.loads(data)
        targets = index["targets"]
        if index.get("format") != "evicap-case-index" or not isinstance(targets, list):
            raise ValueError("not an evicap case index")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        return [failed("case-index", f"{layout.INDEX} is not a readable case index: {exc}")]
    checks = [passed("case-index", f"{len(targets)} target(s) listed, state {index.get('state')!r}")]
    trusted = trusted_fingerprints(trusted_keys)
    checks += _seal_checks(directory, data, trusted, tsa_cas, index)
    listed: set[str] = set()
    for entry in targets:
        if not isinstance(entry, Mapping):
            checks.append(failed("index-bundle", "an index entry is not an object"))
            continue
        refs = [(entry.get("bundle"), entry.get("manifest_sha256"))]
        refs += [
            (s.get("bundle"), s.get("manifest_sha256")) for s in entry.get("superseded") or () if isinstance(s, Mapping)
        ]
        for bundle, sha in refs:
            if bundle:
                listed.add(str(bundle))
                checks.append(_bundle_check(directory, str(entry.get("item")), str(bundle), sha))
        if entry.get("status") == "complete" and not entry.get("bundle"):
            checks.append(failed("index-bundle", "listed as complete but names no bundle", str(entry.get("item"))))
    for child in sorted(directory.iterdir()):
        if (
            child.is_dir()
            and not child.name.startswith(".")
            and (child / layout.MANIFEST).exists()
            and child.name not in listed
        ):
            checks.append(
                failed("index-bundle", "bundle in the case directory but not listed in the index", child.name)
            )
    return checks


def _read(path: Path, limit: int) -> bytes | str:
    """File bytes, or a reason string; never follows a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot open: {exc.strerror or exc}"
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        return f"larger than {limit} bytes"
    return data


def _seal_checks(
    directory: Path, data: bytes, trusted: Mapping[str, str], anchors: list[Path], index: Mapping[str, Any]
) -> list[Check]:
    from evicap.seal.custody import verify_custody
    from evicap.seal.keys import public_key_fingerprint
    from evicap.seal.signing import verify_signature
    from evicap.seal.timestamp import verify_timestamp

    sig, pem = _read(directory / SIGNATURE, MAX_SEAL_FILE), _read(directory / SIGNER_KEY, MAX_SEAL_FILE)
    if isinstance(sig, str) or isinstance(pem, str):
        state = index.get("state")
        hint = " (the batch did not finish: run it again with --resume)" if state != "finished" else ""
        return [failed("index-signature", f"case index is not sealed: {SIGNATURE} or {SIGNER_KEY} missing{hint}")]
    checks: list[Check] = []
    try:
        verify_signature(data, sig, pem)
        fingerprint = public_key_fingerprint(pem)
    except EvicapError as error:
        return [failed("index-signature", f"{SIGNATURE} does not verify over {layout.INDEX}: {error.one_line()}")]
    checks.append(passed("index-signature", f"Ed25519 signature over {layout.INDEX} verifies with {SIGNER_KEY}"))
    if fingerprint in trusted:
        checks.append(passed("index-signer-trust", f"signer {fingerprint} is trusted ({trusted[fingerprint]})"))
    else:
        checks.append(
            failed(
                "index-signer-trust",
                f"valid signature by unknown key {fingerprint}: not among the "
                f"{len(trusted)} trusted key(s) (--trusted-key PUB.pem)",
            )
        )
    token = _read(directory / TIMESTAMP, MAX_SEAL_FILE)
    if token == "missing":
        checks.append(not_checked("index-timestamp", f"case index is not timestamped (no {TIMESTAMP})"))
    elif isinstance(token, str):
        checks.append(failed("index-timestamp", f"{TIMESTAMP}: {token}"))
    elif not anchors:
        checks.append(not_checked("index-timestamp", "token present but no time-stamp trust anchor given (--tsa-ca)"))
    else:
        try:
            info = verify_timestamp(token, data, anchors)
            checks.append(
                passed(
                    "index-timestamp",
                    f"RFC 3161 token over SHA-256({layout.INDEX}) verifies; time {info.gen_time.isoformat()}",
                )
            )
        except EvicapError as error:
            checks.append(failed("index-timestamp", f"{TIMESTAMP}: {error.one_line()}"))
    if not (directory / CUSTODY).is_file():
        checks.append(failed("index-custody", f"{CUSTODY} missing"))
        return checks
    try:
        problems = verify_custody(directory / CUSTODY, hashlib.sha256(data).hexdigest(), set(trusted) or {fingerprint})
    except EvicapError as error:
        problems = [error.one_line()]  # type: ignore[list-item]
    if problems:
        checks.append(failed("index-custody", "; ".join(str(p) for p in problems[:5])))
    else:
        checks.append(passed("index-custody", "custody log chain intact and bound to this case index"))
    return checks


def _bundle_check(directory: Path, item: str, bundle: str, expected: Any) -> Check:
    rel = PurePosixPath(bundle)
    if rel.is_absolute() or ".." in rel.parts or len(rel.parts) != 1:
        return failed("index-bundle", f"bundle path {bundle!r} is not a directory name inside the case", item)
    path = directory / rel.parts[0]
    if path.is_symlink() or not path.is_dir():
        return failed("index-bundle", f"bundle {bundle} is missing (or not a directory)", item)
    manifest = _read(path / layout.MANIFEST, MAX_INDEX)
    if isinstance(manifest, str):
        return failed("index-bundle", f"{bundle}/{layout.MANIFEST}: {manifest}", item)
    actual = hashlib.sha256(manifest).hexdigest()
    if actual != expected:
        return failed(
            "index-bundle",
            f"{bundle}/{layout.MANIFEST} hashes to {actual[:16]}…, the index recorded "
            f"{str(expected)[:16]}… (bundle altered or swapped)",
            item,
        )
    return passed("index-bundle", f"{bundle}: manifest.json matches the index", item)
