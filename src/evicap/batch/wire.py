"""What travels through the broker between `evicap batch --broker` and `evicap worker`: small JSON, never bodies.

A task names one target, its attempt, the run that sent it, the case directory (a path every worker mounts at the
same place) and the capture options that say *what* to capture (case, investigator, timeout, viewport, ...).
Options that say *how this machine* captures (key, browser, proxy, sandbox, allowed networks, sessions, hash lists)
are the worker's own and never travel. A result carries the bundle's name (relative to the case directory), its
status, reason, manifest digest and warnings, and which worker made it; an error carries its class and one line.

No Celery here: the local batch imports nothing from the distributed path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evicap.batch.targets import Target
from evicap.bundle.model import CaptureResult, CaptureWarning
from evicap.capture.options import CaptureOptions
from evicap.errors import BundleError, CaptureError, EnvironmentProblem, EvicapError, SigningError, UsageError

TASK_NAME = "evicap.capture_target"
FORMAT = 1

# CaptureOptions fields the coordinator decides; every other field is the worker machine's own.
SENT_OPTIONS = (
    "case", "investigator", "organization", "authority", "persona", "description", "timeout", "user_agent",
    "ignore_tls_errors", "profile", "keep_secrets", "max_media_size", "max_body_size", "full_page_max_height",
)
_ERRORS: dict[str, type[EvicapError]] = {
    "environment": EnvironmentProblem,
    "signing": SigningError,
    "capture": CaptureError,
    "bundle": BundleError,
    "usage": UsageError,
}


@dataclass(frozen=True)
class Task:
    """One attempt at one target, as a worker receives it."""

    target: Target
    attempt: int
    run: str  # the sending run's start time in the case index (runs[-1].started_at): idempotency and staleness
    directory: str  # the case directory, the same path on every machine (shared file system)
    options: Mapping[str, Any]  # SENT_OPTIONS only
    guard: float  # the batch's hang guard for one attempt, seconds

    def to_json(self) -> dict[str, Any]:
        target = self.target
        return {
            "format": FORMAT,
            "target": {
                "url": target.url, "item": target.item, "line": target.line, "profile": target.profile,
                "note": target.note, "description": target.description, "extra": dict(target.extra),
            },
            "attempt": self.attempt,
            "run": self.run,
            "directory": self.directory,
            "options": dict(self.options),
            "guard": self.guard,
        }

    @classmethod
    def from_json(cls, data: Any) -> Task:
        """Parse a task; raises UsageError for anything malformed (a message from some other sender)."""
        try:
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("not an evicap task of this format")
            raw = data["target"]
            target = Target(
                url=str(raw["url"]), item=str(raw["item"]), line=int(raw["line"]), profile=raw.get("profile"),
                note=raw.get("note"), description=raw.get("description"),
                extra={str(k): str(v) for k, v in dict(raw.get("extra") or {}).items()},
            )
            options = {k: v for k, v in dict(data["options"]).items() if k in SENT_OPTIONS}
            return cls(target, int(data["attempt"]), str(data["run"]), str(data["directory"]), options,
                       float(data["guard"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"malformed task: {exc}") from exc


def sent_options(options: CaptureOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in SENT_OPTIONS}


def apply_options(local: CaptureOptions, sent: Mapping[str, Any]) -> CaptureOptions:
    """The worker's own options with the coordinator's decisions on what to capture."""
    values = {k: v for k, v in sent.items() if k in SENT_OPTIONS}
    return dataclasses.replace(local, **values)


def result_json(result: CaptureResult, worker: Mapping[str, Any], *, reused: bool = False) -> dict[str, Any]:
    return {
        "status": result.status,
        "bundle": Path(result.bundle).name if result.bundle else None,
        "error": result.error,
        "manifest_sha256": result.manifest_sha256,
        "item": result.item,
        "url": result.url,
        "warnings": [w.to_json() for w in result.warnings],
        "worker": dict(worker),
        "reused": reused,
    }


def error_json(error: EvicapError, worker: Mapping[str, Any]) -> dict[str, Any]:
    kind = next((k for k, cls in _ERRORS.items() if isinstance(error, cls)), "usage")
    return {"raised": {"kind": kind, "message": error.one_line()}, "worker": dict(worker)}


def result_from_json(data: Any, directory: Path) -> CaptureResult:
    """A worker's answer as the scheduler's CaptureResult (bundle path on this machine), or the error it raised."""
    if not isinstance(data, dict):
        raise CaptureError(f"worker answered with something that is not an evicap result: {str(data)[:200]}")
    if "raised" in data:
        error = data["raised"] if isinstance(data["raised"], dict) else {}
        cls = _ERRORS.get(str(error.get("kind")), CaptureError)
        worker = _worker_name(data.get("worker"))
        raise cls(f"{error.get('message') or 'unknown error'} (on worker {worker})")
    status = data.get("status")
    if status not in ("complete", "partial", "failed"):
        raise CaptureError(f"worker answered with an unknown status {status!r}")
    bundle = data.get("bundle")
    if bundle is not None and (not isinstance(bundle, str) or Path(bundle).name != bundle or bundle.startswith(".")):
        raise CaptureError(f"worker named a bundle outside the case directory: {bundle!r}")
    warnings = [
        CaptureWarning(str(w.get("code")), str(w.get("message")), w.get("url"))
        for w in data.get("warnings") or () if isinstance(w, dict)
    ]
    return CaptureResult(
        url=str(data.get("url")),
        status=status,
        bundle=str(directory / bundle) if bundle else None,
        error=data.get("error"),
        manifest_sha256=data.get("manifest_sha256"),
        item=data.get("item"),
        warnings=warnings,
    )


def _worker_name(worker: Any) -> str:
    if isinstance(worker, dict):
        return f"{worker.get('worker')} on {worker.get('hostname')}"
    return "unknown"
