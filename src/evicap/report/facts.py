"""What a report says about one bundle, read from the bundle's own files (never from the live capture).

Everything here is plain data for the templates. Captured strings stay strings: the templates escape them.
A file the bundle lacks (no page facts, no certificates) gives an empty value and the report says so.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from evicap.bundle import layout
from evicap.errors import BundleError, EvicapError
from evicap.seal.custody import CustodyEvent, read_events
from evicap.verify.paths import PathProblem, read_small

MAX_JSON = 64 * 1024 * 1024
# Steps through which the capture acted on the page (as opposed to waiting or reading it).
ACTING_STEPS = ("dismiss", "click", "scroll", "hide", "type", "press")


@dataclass(frozen=True)
class Screenshot:
    """A screenshot artifact and its pixel size (read from the PNG header, never decoded)."""

    path: str
    width: int
    height: int


@dataclass
class BundleFacts:
    """One bundle as the report needs it."""

    root: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    page: dict[str, Any] = field(default_factory=dict)
    certificates: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    custody: list[CustodyEvent] = field(default_factory=list)
    custody_problem: str | None = None
    full_shot: Screenshot | None = None
    viewport_shot: Screenshot | None = None
    missing: list[str] = field(default_factory=list)
    """Bundle files the report wanted and could not read, with why."""

    @property
    def case(self) -> dict[str, Any]:
        return dict(self.manifest.get("case") or {})

    @property
    def target(self) -> dict[str, Any]:
        return dict(self.manifest.get("target") or {})

    @property
    def capture(self) -> dict[str, Any]:
        return dict(self.manifest.get("capture") or {})

    @property
    def environment(self) -> dict[str, Any]:
        return dict(self.manifest.get("environment") or {})

    @property
    def title(self) -> str | None:
        title = self.page.get("title")
        return str(title) if title else None

    @property
    def proxy_host(self) -> str | None:
        """The proxy's host (and port) only: never its scheme's credentials."""
        proxy = self.environment.get("proxy")
        if not proxy:
            return None
        parts = urlsplit(str(proxy) if "://" in str(proxy) else f"http://{proxy}")
        host = parts.hostname or ""
        return f"{host}:{parts.port}" if parts.port else host

    @property
    def timestamps(self) -> list[dict[str, Any]]:
        return [dict(e.details, recorded_at=e.time) for e in self.custody if e.action == "timestamped"]

    @property
    def clock_offset_ms(self) -> int | None:
        for stamp in self.timestamps:
            if isinstance(stamp.get("clock_offset_ms"), int):
                return int(stamp["clock_offset_ms"])
        return None

    @property
    def key_protection(self) -> str | None:
        for event in self.custody:
            if event.action == "sealed" and event.details.get("key_protection"):
                return str(event.details["key_protection"])
        return None

    @property
    def identifiers(self) -> list[dict[str, Any]]:
        """Account, post and media identifiers the capture found (manifest ``identifiers``, newer bundles)."""
        found = self.manifest.get("identifiers")
        return [i for i in found if isinstance(i, dict)] if isinstance(found, list) else []

    @property
    def page_changes(self) -> list[dict[str, Any]]:
        """Profile steps that acted on the page and did something, plus dialogs and pop-ups handled."""
        steps = (self.manifest.get("profile") or {}).get("steps") or []
        return [s for s in steps if s.get("kind") in ACTING_STEPS and s.get("outcome") not in ("skipped",)]


def _json_in(root: Path, rel: str, facts_missing: list[str]) -> Any:
    try:
        return json.loads(read_small(root, rel, MAX_JSON))
    except FileNotFoundError:
        return None
    except (PathProblem, OSError, ValueError) as error:
        facts_missing.append(f"{rel}: {error}")
        return None


def png_size(root: Path, rel: str) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, or None when the file is not a PNG."""
    try:
        head = _head(root / rel)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def _head(path: Path) -> bytes:
    if path.is_symlink():
        raise OSError("symlink")
    with open(path, "rb") as handle:
        return handle.read(24)


def _shot(root: Path, manifest: dict[str, Any], role: str) -> Screenshot | None:
    for artifact in manifest.get("artifacts") or []:
        if artifact.get("role") == role and artifact.get("media_type") == "image/png":
            size = png_size(root, str(artifact["path"]))
            if size:
                return Screenshot(str(artifact["path"]), *size)
    return None


def load_bundle(root: Path) -> BundleFacts:
    """Read what a report shows. Raises BundleError only when manifest.json itself is unusable."""
    try:
        manifest_bytes = read_small(root, layout.MANIFEST, MAX_JSON)
        manifest = json.loads(manifest_bytes)
    except (PathProblem, OSError, ValueError) as error:
        raise BundleError(f"{root}: cannot read {layout.MANIFEST}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "evicap-bundle":
        raise BundleError(f"{root}: {layout.MANIFEST} is not an evicap bundle manifest")
    missing: list[str] = []
    facts = BundleFacts(root, manifest, hashlib.sha256(manifest_bytes).hexdigest(), missing=missing)
    roles = {a.get("role"): str(a.get("path")) for a in manifest.get("artifacts") or []}
    page = _json_in(root, roles.get("page-facts", layout.PAGE_FACTS), missing)
    facts.page = page if isinstance(page, dict) else {}
    certs = _json_in(root, layout.CERTIFICATES_JSON, missing)
    facts.certificates = list(certs.get("origins") or []) if isinstance(certs, dict) else []
    items = _json_in(root, roles.get("items", layout.ITEMS), missing)
    facts.items = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    try:
        facts.custody = read_events(root / layout.CUSTODY)
    except FileNotFoundError:
        facts.custody_problem = "no custody log"
    except (EvicapError, OSError) as error:
        facts.custody_problem = str(error)
    facts.full_shot = _shot(root, manifest, "screenshot")
    facts.viewport_shot = _shot(root, manifest, "screenshot-viewport")
    return facts
