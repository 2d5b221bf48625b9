"""Typed records shared by capture, bundle, seal and verify."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from evicap.bundle.hashing import FileDigest

Status = Literal["complete", "partial", "failed"]

# Roles an artifact can have; the manifest schema lists the same set.
ROLES = (
    "warc",
    "screenshot",
    "screenshot-viewport",
    "screenshot-element",
    "dom",
    "mhtml",
    "pdf",
    "certificates",
    "certificates-json",
    "page-facts",
    "items",
    "media",
    "identifiers",
    "media-hashes",
)


@dataclass(frozen=True)
class Artifact:
    """One file of the bundle, as the manifest lists it."""

    path: str  # relative to the bundle root, forward slashes, inside artifacts/
    role: str  # one of ROLES
    media_type: str
    digest: FileDigest
    warc_record_uri: str | None = None  # urn: URI of the copy stored in the WARC, if any
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "role": self.role,
            "media_type": self.media_type,
            "size": self.digest.size,
            "sha256": self.digest.sha256,
            "sha512": self.digest.sha512,
        }
        if self.warc_record_uri:
            data["warc_record"] = self.warc_record_uri
        if self.description:
            data["description"] = self.description
        return data


@dataclass(frozen=True)
class CaptureWarning:
    """Something the capture could not do fully: a failed load, a truncation, a redaction."""

    code: str  # short machine code, e.g. "load-failed", "body-truncated", "tls-error", "wall"
    message: str  # one line for humans
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.url:
            data["url"] = self.url
        return data


@dataclass
class CaptureResult:
    """What `capture_url` returns for one URL; the CLI prints it, batch indexes it."""

    url: str
    status: Status
    bundle: str | None  # path of the published bundle directory, or None
    error: str | None  # one-line reason when not complete
    manifest_sha256: str | None = None
    item: str | None = None
    warnings: list[CaptureWarning] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "bundle": self.bundle,
            "error": self.error,
            "item": self.item,
            "manifest_sha256": self.manifest_sha256,
            "warnings": [w.to_json() for w in self.warnings],
        }
