"""What the bundles say, for a request: identifiers, URLs, capture times, manifest hashes, what was captured.

Every value carries its source (bundle name, manifest SHA-256, and the WARC record or manifest key), so the
recipient can trace each identifier in the request to the bytes the platform sent. Nothing here touches the
network; identifiers come from the manifest (``identifiers``, written at capture) or, for bundles sealed before
that existed, are read from the bundle's WARC now.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from evicap.bundle import layout
from evicap.errors import BundleError, UsageError
from evicap.seal.signing import SignatureMismatch, verify_signature


@dataclass(frozen=True)
class BundleFacts:
    """One bundle, as a request cites it."""

    path: Path
    name: str
    capture_id: str
    manifest_sha256: str
    requested_url: str
    final_url: str | None
    started_at: str
    ended_at: str
    status: str
    platform: str | None
    case_id: str | None
    identifiers: list[dict[str, Any]]
    """Each: platform, kind, value, form, record_id, uri, source, account (as identifiers.Identifier.to_json)."""
    identifiers_from: str
    """``manifest`` (written at capture, sealed) or ``warc`` (read now from the sealed WARC)."""
    artifacts: list[dict[str, Any]]

    def source(self, pointer: str, **more: Any) -> dict[str, Any]:
        return {"from": "bundle", "bundle": self.name, "manifest_sha256": self.manifest_sha256,
                "pointer": pointer, **more}


def load_bundle(path: Path) -> BundleFacts:
    """Read a sealed bundle's manifest (its signature checked against the bundle's own key)."""
    manifest_file = path / layout.MANIFEST
    try:
        raw = manifest_file.read_bytes()
        signature = (path / layout.SIGNATURE).read_bytes()
        public = (path / layout.SIGNER_KEY).read_bytes()
    except FileNotFoundError as error:
        raise UsageError(f"{path} is not a sealed evicap bundle: {Path(error.filename).name} missing",
                         hint="give the bundle directories evicap capture wrote") from None
    try:
        verify_signature(raw, signature, public)
    except SignatureMismatch:
        raise BundleError(f"{path}: manifest.json does not match its signature; not drafting from it",
                          hint="run evicap verify on it", path=str(path)) from None
    manifest = json.loads(raw)
    profile = manifest.get("profile") or {}
    platform = profile.get("name")
    if "identifiers" in manifest:
        found, origin = manifest["identifiers"], "manifest"
    else:
        from evicap.profiles.identifiers import from_warc

        found, origin = [i.to_json() for i in from_warc(path / layout.WARC, platform)], "warc"
    target, capture = manifest["target"], manifest["capture"]
    return BundleFacts(
        path=path, name=path.name, capture_id=manifest["capture_id"],
        manifest_sha256=hashlib.sha256(raw).hexdigest(), requested_url=target["requested_url"],
        final_url=target.get("final_url"), started_at=capture["started_at"], ended_at=capture["ended_at"],
        status=capture["status"], platform=platform, case_id=(manifest.get("case") or {}).get("case_id"),
        identifiers=list(found), identifiers_from=origin,
        artifacts=[{k: a[k] for k in ("path", "role", "sha256", "size")} for a in manifest["artifacts"]],
    )


def parse_utc(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def authority_zone(name: str | None) -> dt.tzinfo:
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return dt.UTC


def captures(bundles: list[BundleFacts], zone_name: str | None) -> list[dict[str, Any]]:
    """Per bundle: URLs, times in UTC and in the authority's zone, manifest hash, what was captured."""
    tz = authority_zone(zone_name)
    out = []
    for b in bundles:
        started = parse_utc(b.started_at)
        out.append({
            "bundle": b.name, "capture_id": b.capture_id, "url": b.requested_url, "final_url": b.final_url,
            "started_at_utc": b.started_at, "ended_at_utc": b.ended_at,
            "started_at_local": started.astimezone(tz).isoformat(timespec="seconds"),
            "time_zone": zone_name or "UTC", "status": b.status, "manifest_sha256": b.manifest_sha256,
            "captured": [f"{a['role']}: {a['path']}" for a in b.artifacts],
            "source": b.source("/capture/started_at"),
        })
    return out


def default_date_range(bundles: list[BundleFacts], days_before: int = 30) -> dict[str, str]:
    """From ``days_before`` days before the first capture to the day of the last one (UTC dates)."""
    starts = [parse_utc(b.started_at) for b in bundles]
    first, last = min(starts).date(), max(starts).date()
    return {"from": (first - dt.timedelta(days=days_before)).isoformat(), "to": last.isoformat()}
