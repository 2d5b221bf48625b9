"""What the manifest and the warcinfo record say about a capture: case, target, times, environment, profile.

Pure functions of what the capture learnt; no browser calls, no I/O. ``session.capture_url`` gathers the inputs.
"""

from __future__ import annotations

import json
import platform
import socket
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from evicap import TOOL_NAME, __version__
from evicap.bundle import layout
from evicap.bundle.manifest import FORMAT, FORMAT_VERSION, local_zone, utc_iso
from evicap.bundle.model import Artifact, CaptureWarning, Status
from evicap.capture.browser import BrowserInfo, desktop_user_agent, launch_args
from evicap.capture.options import CaptureOptions
from evicap.capture.pagewatch import PageWatch
from evicap.seal.clock import clock_state

if TYPE_CHECKING:
    from evicap.capture.recorder import NetworkRecorder
    from evicap.capture.types import Navigation


class CaptureFacts(Protocol):
    """The parts of a running capture that the manifest reports (see staged.CaptureRun)."""

    url: str
    options: CaptureOptions
    capture_id: str
    started: datetime
    warnings: list[CaptureWarning]
    artifacts: list[Artifact]
    status: Status
    reason: str | None


def warcinfo(run: CaptureFacts, browser_info: BrowserInfo, user_agent: str) -> dict[str, Any]:
    options = run.options
    return {
        "software": f"{TOOL_NAME} {__version__}",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "isPartOf": options.case or "",
        "operator": " / ".join(x for x in (options.investigator, options.organization) if x),
        "description": f"evidence capture {run.capture_id} of {run.url}",
        "browser": f"{browser_info.version or ''} ({browser_info.path})".strip(),
        "http-header-user-agent": user_agent,
        "hostname": socket.gethostname(),
        "capture-options": json.dumps(options.to_json(), ensure_ascii=False, sort_keys=True),
    }


def _playwright_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("playwright")
    except Exception:
        return None


def _environment(browser_info: BrowserInfo, browser_version: str, user_agent: str, options: CaptureOptions) -> dict:
    return {
        "evicap_version": __version__,
        "python": platform.python_version(),
        "playwright_version": _playwright_version(),
        "browser": {
            "path": browser_info.path,
            "version": browser_version or browser_info.version,
            "source": browser_info.source,
            "args": launch_args(no_sandbox=options.no_sandbox, user_agent=desktop_user_agent(browser_info.version)),
        },
        "user_agent": user_agent,
        "viewport": {"width": options.viewport[0], "height": options.viewport[1]},
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "hostname": socket.gethostname(),
        "proxy": options.proxy,
        "options": options.to_json(),
    }




def _profile_json(profile: Any, profile_run: Any) -> dict[str, Any] | None:
    if profile is None:
        return None
    wall = profile_run.wall if profile_run is not None else None
    return {
        "name": profile.name,
        "sha256": profile.sha256,
        "source": ("builtin:" if profile.builtin else "") + profile.path.name,
        "steps": [step.to_json() for step in profile_run.steps] if profile_run is not None else [],
        "wall": wall.to_json() if wall is not None else None,
    }


def manifest(
    run: CaptureFacts,
    ended: datetime,
    navigation: Navigation,
    recorder: NetworkRecorder,
    watch: PageWatch,
    browser_info: BrowserInfo,
    browser_version: str,
    user_agent: str,
    profile: Any,
    profile_run: Any,
    signer_fingerprint: str,
    tls_error: str | None,
    key_protection: str | None = None,
    clock: Mapping[str, Any] | None = None,
    detection: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest. ``clock``: the machine's clock state (evicap.seal.clock), read now when not given."""
    options = run.options
    zone, offset = local_zone(run.started)
    exchanges = recorder.exchanges
    failed = [x for x in exchanges if x.outcome in ("failed", "blocked", "aborted")]
    truncated = [x for x in exchanges if x.outcome == "truncated"]
    nav = navigation.to_json()
    seal: dict[str, Any] = {
        "algorithm": "Ed25519",
        "signer_fingerprint": signer_fingerprint,
        "signature": layout.SIGNATURE,
        "public_key": layout.SIGNER_KEY,
        "custody_log": layout.CUSTODY,
    }
    if key_protection is not None:
        seal["key_protection"] = key_protection
    data: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "capture_id": run.capture_id,
        "case": {
            "case_id": options.case,
            "item_id": options.item,
            "investigator": options.investigator,
            "organization": options.organization,
            "authority": options.authority,
            "persona": options.persona,
            "description": options.description,
        },
        "target": {
            "requested_url": run.url,
            "final_url": nav["final_url"],
            "redirects": nav["redirects"],
            "http_status": nav["status"],
            "status_text": nav["status_text"],
            "server_ip": nav["remote_ip"],
            "server_port": nav["remote_port"],
            "protocol": nav["protocol"],
            "mime_type": nav["mime_type"],
            "security_state": nav["security_state"],
            "tls_error": tls_error,
            "error": nav["error"],
        },
        "capture": {
            "status": run.status,
            "reason": run.reason,
            "started_at": utc_iso(run.started),
            "ended_at": utc_iso(ended),
            "duration_seconds": round((ended - run.started).total_seconds(), 3),
            "local_timezone": zone,
            "utc_offset": offset,
            "clock": dict(clock) if clock is not None else clock_state(),
            "warnings": [w.to_json() for w in run.warnings],
            "dialogs": watch.dialogs,
            "popups": watch.popups,
            "tls_errors_ignored": watch.tls_error_urls,
            "egress_blocked": [b.to_json() for b in recorder.blocked_requests],
            "service_workers": watch.service_workers,
        },
        "network": {
            "exchanges": len(exchanges),
            "recorded": sum(1 for x in exchanges if x.outcome == "recorded"),
            "failed": len(failed),
            "truncated": len(truncated),
            "origins": sorted(recorder.certificates) if recorder.certificates else [],
            "redactions": list(recorder.redactions),
            "targets": [t.to_json() for t in recorder.targets],
            "websockets": list(recorder.websockets),
        },
        "environment": _environment(browser_info, browser_version, user_agent, options),
        "profile": _profile_json(profile, profile_run),
        "artifacts": [a.to_json() for a in run.artifacts],
        "checksums": {"path": layout.CHECKSUMS, "sha256": "0" * 64},
        "seal": seal,
    }
    if detection is not None:  # media hashes and hash-list matches (evicap.detect)
        data["detection"] = detection
    return data
