"""Seal a staged bundle: signature, public key, trusted timestamp, and the first custody events.

The capture writes artifacts/, SHA256SUMS and manifest.json into its staging directory; ``seal_bundle`` then
adds manifest.sig, signer.pub.pem, manifest.tsr (when an authority answered) and custody.jsonl. Sealing fails
closed: if the signature cannot be made and checked back, SigningError is raised and the capture must not be
reported complete. A missing timestamp is not fatal: the bundle is signed, the custody log says why there is
no token, and ``evicap timestamp BUNDLE`` (``timestamp_bundle``) adds one later.

Key policy: ``load_signer`` runs before the capture starts so that a wrong passphrase or a bad key fails fast.
With no key configured, a capture (``create=True``, and only a capture) uses or on first use creates
``signing-key.pem`` in the config directory, encrypted with EVICAP_KEY_PASSPHRASE when that is set, otherwise
unencrypted with mode 0600, and the caller says so; every other command that signs refuses to make a key. The
manifest and the custody log record which protection the key has (``key_protection``).

Several authorities: with ``tsa_all`` every configured authority is asked and every valid token kept, as
manifest.tsr, manifest.2.tsr, ... in URL order; each gets its own ``timestamped`` event naming the file, its
SHA-256, the authority and the clock offset measured against it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evicap.bundle import layout
from evicap.bundle.model import CaptureWarning
from evicap.config import Config
from evicap.errors import BundleError, SigningError, TimestampError
from evicap.seal.clock import clock_state
from evicap.seal.custody import Actor, append_event, sha256_file
from evicap.seal.keys import PASSPHRASE_ENV, PassphrasePrompt, Signer, generate_key, load_key
from evicap.seal.signing import SignatureMismatch, verify_signature

if TYPE_CHECKING:
    from evicap.seal.timestamp import Stamp

CLOCK_OFFSET_WARN_SECONDS = 60.0


@dataclass(frozen=True)
class SealSettings:
    """Everything sealing needs, resolved from CLI options over environment over config file."""

    key: Path
    """The signing key file."""
    key_is_default: bool
    """True when no key was configured: the default key in the config dir, created on first use."""
    tsa: tuple[str, ...] = ()
    tsa_ca: tuple[Path, ...] = ()
    no_timestamp: bool = False
    tsa_timeout: float = 10.0
    investigator: str | None = None
    organization: str | None = None
    tsa_all: bool = False
    """Ask every authority and keep every valid token, instead of stopping at the first."""

    @classmethod
    def resolve(
        cls,
        config: Config,
        *,
        key: Path | None = None,
        tsa: Sequence[str] | None = None,
        tsa_ca: Sequence[Path] | None = None,
        no_timestamp: bool = False,
        tsa_timeout: float | None = None,
        investigator: str | None = None,
        organization: str | None = None,
        tsa_all: bool = False,
    ) -> SealSettings:
        """CLI values (non-empty) win over ``config`` (already environment-over-file)."""
        chosen_key = key or config.key
        return cls(
            key=chosen_key or config.default_key_path,
            key_is_default=chosen_key is None,
            tsa=tuple(tsa) if tsa else config.tsa,
            tsa_ca=tuple(tsa_ca) if tsa_ca else config.tsa_ca,
            no_timestamp=no_timestamp,
            tsa_timeout=tsa_timeout or config.tsa_timeout,
            investigator=investigator or config.investigator,
            organization=organization or config.organization,
            tsa_all=tsa_all or config.tsa_all,
        )


@dataclass(frozen=True)
class SealResult:
    """How sealing went. The signature always exists when this is returned."""

    timestamped: bool
    tsa_url: str | None
    gen_time: dt.datetime | None
    clock_offset_seconds: float | None
    warnings: list[CaptureWarning] = field(default_factory=list)
    token_files: tuple[str, ...] = ()
    """Every token written, first one first (manifest.tsr, manifest.2.tsr, ...)."""


def load_signer(settings: SealSettings, prompt: PassphrasePrompt | None = None, *, create: bool = False) -> Signer:
    """Load the signing key. Only with ``create`` (a capture) is a missing default key made, and
    ``signer.created`` then tells the caller to say so; otherwise a missing key is an error saying how to make one."""
    if settings.key_is_default and not settings.key.exists():
        if not create:
            raise SigningError(
                f"no signing key: none configured and {settings.key} does not exist",
                hint=f"create one with `evicap keys generate --out {settings.key}` (or pass --key / set key)",
            )
        return generate_key(settings.key, os.environ.get(PASSPHRASE_ENV) or None)
    return load_key(settings.key, prompt)


def key_protection(signer: Signer) -> str:
    """How the private key is protected, as the manifest and custody log record it."""
    return signer.protection


def unencrypted_notice(signer: Signer) -> str | None:
    """The sentence a command prints when it signs with a key that has no passphrase; None otherwise."""
    if signer.encrypted:
        return None
    return (f"signing key {signer.path} is UNENCRYPTED (protected by file mode 0600 only); "
            "anyone who copies the file can sign as you")


def seal_bundle(
    staging_dir: Path,
    signer: Signer,
    settings: SealSettings,
    *,
    actor: Actor,
    acquired: Mapping[str, Any],
) -> SealResult:
    """Sign manifest.json, write the key, timestamp, and start the custody log. See the module docstring."""
    manifest = staging_dir / layout.MANIFEST
    try:
        manifest_bytes = manifest.read_bytes()
    except OSError as error:
        raise SigningError(f"cannot read {manifest}: {error.strerror or error}") from None
    _check_checksums_bound(staging_dir, manifest_bytes)
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    signature = signer.sign(manifest_bytes)
    try:
        verify_signature(manifest_bytes, signature, signer.public_pem)
    except SignatureMismatch:
        raise SigningError("the signature just made does not verify; not sealing") from None
    try:
        _write_new(staging_dir / layout.SIGNATURE, signature)
        _write_new(staging_dir / layout.SIGNER_KEY, signer.public_pem)
    except OSError as error:
        raise SigningError(f"cannot write the seal into {staging_dir}: {error.strerror or error}") from None

    custody = staging_dir / layout.CUSTODY
    acquired_details = {**acquired, "custody_head": layout.CUSTODY_HEAD}
    append_event(custody, signer, actor, "acquired", acquired_details, manifest_sha256)
    append_event(
        custody,
        signer,
        actor,
        "sealed",
        {
            "signature_file": layout.SIGNATURE,
            "algorithm": "Ed25519",
            "key_fingerprint": signer.fingerprint,
            "key_protection": key_protection(signer),
            "signature_sha256": hashlib.sha256(signature).hexdigest(),
            "custody_head": layout.CUSTODY_HEAD,
        },
        manifest_sha256,
    )
    if settings.no_timestamp:
        append_event(
            custody,
            signer,
            actor,
            "note",
            {"timestamped": False, "reason": "time-stamping turned off (--no-timestamp)"},
            manifest_sha256,
        )
        return SealResult(False, None, None, None, [_untimestamped("turned off with --no-timestamp")])
    return _timestamp(staging_dir, manifest_bytes, manifest_sha256, signer, settings, actor)


def timestamp_bundle(
    bundle_dir: Path, signer: Signer, settings: SealSettings, *, actor: Actor, add: bool = False
) -> SealResult:
    """Add a trusted timestamp to a bundle sealed without one (or, ``add``, one more token to a timestamped
    bundle: an independent authority, or a later time), and record it in its custody log.

    Raises BundleError when the bundle already has a token (and not ``add``) or manifest.json no longer matches
    its custody log, TimestampError (listing every authority's failure) when no authority gave a usable token.
    """
    manifest = bundle_dir / layout.MANIFEST
    if not manifest.is_file() or not (bundle_dir / layout.CUSTODY).is_file():
        raise BundleError(f"{bundle_dir} is not a sealed bundle (no manifest.json or custody.jsonl)")
    if (bundle_dir / layout.TIMESTAMP).exists() and not add:
        raise BundleError(f"{bundle_dir} already has a trusted timestamp ({layout.TIMESTAMP})",
                          hint="pass --add to add another authority's token")
    if not settings.tsa:
        raise TimestampError("no time-stamp authority configured", hint="pass --tsa URL or set tsa in the config")
    manifest_bytes = manifest.read_bytes()
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    _check_bound(bundle_dir, manifest_sha256)
    result = _timestamp(bundle_dir, manifest_bytes, manifest_sha256, signer, settings, actor, at_sealing=False)
    if not result.timestamped:
        failures = "; ".join(w.message for w in result.warnings if w.code == "timestamp-failed")
        raise TimestampError(f"no time-stamp authority gave a valid token: {failures or 'none answered'}")
    return result


def _timestamp(
    directory: Path,
    manifest_bytes: bytes,
    manifest_sha256: str,
    signer: Signer,
    settings: SealSettings,
    actor: Actor,
    *,
    at_sealing: bool = True,
) -> SealResult:
    """Ask the authorities, write each token and its event. ``at_sealing``: right after the capture (a failure is
    then recorded as a note, and the offset measured now describes the clock that timed the capture)."""
    custody = directory / layout.CUSTODY
    warnings: list[CaptureWarning] = []
    stamps, failures, reason = _ask_authorities(manifest_bytes, settings)
    attempts = [{"tsa": f.tsa_url, "error": f.reason} for f in failures]
    for failure in failures:
        warnings.append(CaptureWarning("timestamp-failed", f"{failure.tsa_url}: {failure.reason}"))
    if not stamps:
        if at_sealing:
            append_event(
                custody,
                signer,
                actor,
                "note",
                {"timestamped": False, "reason": reason, "attempts": attempts},
                manifest_sha256,
            )
        return SealResult(False, None, None, None, [*warnings, _untimestamped(reason)])
    clock = clock_state()
    names: list[str] = []
    for stamp in stamps:
        name = _next_token_name(directory)
        _write_new(directory / name, stamp.token)
        names.append(name)
        append_event(custody, signer, actor, "timestamped", _stamp_details(stamp, name, attempts, clock, at_sealing),
                     manifest_sha256)  # fmt: skip
        attempts = []  # failures are told once, with the first token
        if abs(stamp.clock_offset_seconds) > CLOCK_OFFSET_WARN_SECONDS:
            warnings.append(
                CaptureWarning(
                    "clock-offset",
                    f"local clock differs from the time-stamp authority {stamp.tsa_url} by "
                    f"{stamp.clock_offset_seconds:+.0f} s (more than {CLOCK_OFFSET_WARN_SECONDS:.0f} s); "
                    "recorded in the custody log",
                )
            )
    first = stamps[0]
    return SealResult(True, first.tsa_url, first.info.gen_time, first.clock_offset_seconds, warnings, tuple(names))


def _ask_authorities(manifest_bytes: bytes, settings: SealSettings) -> tuple[Sequence[Stamp], Sequence[Any], str]:
    """The tokens the authorities gave, their failures, and why there is no token if there is none. The RFC 3161
    machinery is imported only when an authority is configured."""
    if not settings.tsa:
        return (), (), "no time-stamp authority configured"
    from evicap.seal.timestamp import load_trust_anchors, request_timestamp

    try:
        anchors = load_trust_anchors(settings.tsa_ca)
    except TimestampError as error:
        return (), (), error.message
    outcome = request_timestamp(manifest_bytes, settings.tsa, anchors, settings.tsa_timeout, every=settings.tsa_all)
    return outcome.stamps, outcome.failures, "no time-stamp authority gave a valid token"


def _next_token_name(directory: Path) -> str:
    number = 1
    while os.path.lexists(directory / layout.timestamp_file(number)):
        number += 1
    return layout.timestamp_file(number)


def _stamp_details(
    stamp: Stamp, name: str, attempts: list[dict[str, str]], clock: Mapping[str, Any], at_sealing: bool
) -> dict[str, Any]:
    """The ``timestamped`` event: which file, which bytes, which authority, and the clocks at that moment."""
    return {
        "tsa": stamp.tsa_url,
        "authority": stamp.info.authority,
        "gen_time": stamp.info.gen_time.isoformat().replace("+00:00", "Z"),
        "accuracy_ms": None if stamp.info.accuracy_seconds is None else round(stamp.info.accuracy_seconds * 1000),
        "serial_number": str(stamp.info.serial_number),
        "policy": stamp.info.policy,
        "token_file": name,
        "token_sha256": hashlib.sha256(stamp.token).hexdigest(),
        "clock_offset_ms": round(stamp.clock_offset_seconds * 1000),
        "clock": dict(clock),
        "at_sealing": at_sealing,
        "attempts": attempts,
        "files": [{"path": name, "sha256": hashlib.sha256(stamp.token).hexdigest(), "size": len(stamp.token)}],
    }


def _untimestamped(reason: str) -> CaptureWarning:
    return CaptureWarning(
        "untimestamped", f"bundle is signed but has no trusted timestamp: {reason} (add one: evicap timestamp)"
    )


def _check_bound(bundle_dir: Path, manifest_sha256: str) -> None:
    """Refuse to touch a bundle whose manifest.json differs from the one its custody log began with."""
    with open(bundle_dir / layout.CUSTODY, "rb") as handle:
        first = handle.readline()
    try:
        bound = json.loads(first)["manifest_sha256"]
    except (ValueError, KeyError, TypeError):
        raise BundleError(f"{bundle_dir / layout.CUSTODY} line 1: not a custody event") from None
    if bound != manifest_sha256:
        raise BundleError(
            f"manifest.json in {bundle_dir} no longer matches its custody log (seq 0 is bound to {bound[:16]}…)",
            hint="the bundle was altered after sealing",
        )


def _check_checksums_bound(staging_dir: Path, manifest_bytes: bytes) -> None:
    """Fail closed if the manifest names a SHA256SUMS hash that the file on disk does not have."""
    sums = staging_dir / layout.CHECKSUMS
    try:
        declared = json.loads(manifest_bytes).get("checksums", {}).get("sha256")
    except (ValueError, AttributeError):
        raise SigningError(f"{staging_dir / layout.MANIFEST} is not a JSON object; not signing it") from None
    if declared and (not sums.is_file() or sha256_file(sums) != declared):
        raise SigningError(f"{layout.CHECKSUMS} does not match the hash manifest.json declares; not signing")


def _write_new(path: Path, data: bytes) -> None:
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
