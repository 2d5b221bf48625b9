"""A capture written into its staging directory, and the one acquire step that seals and publishes it.

``session.capture_url`` returns a ``StagedCapture``: the staging directory, what the capture learnt (its run) and
the manifest's facts, nothing sealed or published. ``acquire`` is the one step that turns any staged capture into
a sealed, published bundle: SHA256SUMS, manifest.json (schema-checked), seal (signature, time-stamp, custody
log), publish by rename. capture, batch, demo and watch all go through it. A capture that could not be sealed is
never reported complete.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evicap import clock
from evicap.bundle import layout
from evicap.bundle.manifest import write_checksums, write_manifest
from evicap.bundle.model import Artifact, CaptureResult, CaptureWarning, Status
from evicap.bundle.staging import publish
from evicap.capture.options import CaptureOptions
from evicap.errors import CaptureError, EvicapError, first_line

if TYPE_CHECKING:
    from evicap.seal.keys import Signer
    from evicap.seal.sealer import SealSettings

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Sealing:
    """How to seal: a loaded signer and the seal settings (see evicap.seal)."""

    signer: Signer
    settings: SealSettings
    actor_name: str | None = None
    acquired_details: Mapping[str, Any] = field(default_factory=dict)  # more for the custody log's "acquired"


@dataclass
class CaptureRun:
    """Mutable state of one capture while it runs."""

    url: str
    options: CaptureOptions
    capture_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: datetime = field(default_factory=clock.now)
    warnings: list[CaptureWarning] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    status: Status = "complete"
    reason: str | None = None
    scrubber: Any = None  # safety (issue 12): evicap.capture.secrets.Scrubber of this capture

    def degrade(self, status: Status, reason: str) -> None:
        """Lower the status (complete > partial > failed); the first reason for the worst status wins."""
        rank = {"complete": 0, "partial": 1, "failed": 2}
        if rank[status] > rank[self.status]:
            self.status, self.reason = status, reason


@dataclass
class StagedCapture:
    """A capture written whole into its staging directory, with its manifest facts; not sealed, not published."""

    url: str
    run: CaptureRun
    staging: Path
    output_dir: Path
    name: str  # the bundle's final name
    manifest: dict[str, Any]  # every fact but the checksums

    @property
    def status(self) -> Status:
        return self.run.status


async def acquire(staged: StagedCapture, sealing: Sealing, progress: Progress | None = None) -> CaptureResult:
    """The one acquire step of capture, batch, demo and watch: checksums and manifest, seal, publish by rename.
    Never raises for a capture that went wrong (the result says so); raises CaptureError when the OS stopped it
    (the staging directory is kept and named)."""
    say = progress or (lambda _msg: None)
    run, staging = staged.run, staged.staging
    try:
        checksums = write_checksums(staging, run.artifacts)
        manifest = dict(staged.manifest, checksums={"path": layout.CHECKSUMS, "sha256": checksums.sha256})
        manifest_digest = write_manifest(staging, manifest)
        error = await _seal(run, staging, sealing, say)
        final = publish(staging, staged.output_dir, staged.name)
    except (OSError, EvicapError) as exc:
        reason = exc.one_line() if isinstance(exc, EvicapError) else first_line(exc)
        message = f"capture of {staged.url} stopped: {reason}; partial work kept in {staging}"
        raise CaptureError(message, url=staged.url) from exc
    return CaptureResult(
        url=staged.url,
        status="failed" if error else run.status,
        bundle=str(final),
        error=error or run.reason,
        manifest_sha256=manifest_digest.sha256,
        item=run.options.item,
        warnings=run.warnings,
    )


async def _seal(run: CaptureRun, staging: Path, sealing: Sealing, say: Progress) -> str | None:
    """Seal the staged bundle. Returns None when sealed, else the one-line reason it is not complete."""
    from evicap.seal.sealer import Actor, seal_bundle

    say("sealing")
    try:
        # Off the event loop: a time-stamp authority may take seconds, and batch runs other captures meanwhile.
        result = await asyncio.to_thread(
            seal_bundle,
            staging,
            sealing.signer,
            sealing.settings,
            actor=Actor(sealing.actor_name or run.options.investigator or "unknown", sealing.signer.fingerprint),
            acquired={
                "capture_id": run.capture_id,
                "url": run.url,
                "status": run.status,
                "case": run.options.case,
                "item": run.options.item,
                **sealing.acquired_details,  # a distributed batch's worker: machine, worker id, attempt
            },
        )
    except EvicapError as exc:
        return f"not sealed: {exc.one_line()}"
    run.warnings.extend(result.warnings)
    return None
