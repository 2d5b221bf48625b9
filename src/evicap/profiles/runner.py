"""Run a profile's steps on a loaded page within the capture's deadline, then look for a wall.

The result is the record of what the collection itself did to the page: every step with its UTC start and
end, outcome and detail, for the manifest. When time is up the remaining steps are recorded as ``timeout``
without running, so the capture still ends on time and the record says what was left undone.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from playwright.async_api import Page

from evicap.bundle.model import Artifact, CaptureWarning
from evicap.errors import first_line
from evicap.profiles.loader import Profile
from evicap.profiles.steps import STEPS, NetworkTracker, StepContext
from evicap.profiles.walls import Wall, detect_wall

StepOutcome = Literal["ok", "skipped", "failed", "timeout"]
DEFAULT_STEP_TIMEOUT = 30.0
WALL_CHECK_SECONDS = 3.0  # the wall check runs even at the deadline: without it a wall could pass as content


@dataclass(frozen=True)
class StepRecord:
    """One step as it ran, for the manifest."""

    name: str  # the step's label, e.g. "click See more"
    kind: str  # the step kind from the vocabulary
    started_at: str  # UTC ISO 8601
    ended_at: str
    outcome: StepOutcome
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "outcome": self.outcome,
            "detail": self.detail,
        }


@dataclass
class ProfileRun:
    """Everything running a profile produced; the capture session writes it into the bundle."""

    profile: Profile
    steps: list[StepRecord] = field(default_factory=list)
    items: list[dict[str, Any]] | None = None  # None when the profile has no extract step
    wall: Wall | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    warnings: list[CaptureWarning] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile.to_json(),
            "steps": [s.to_json() for s in self.steps],
            "wall": self.wall.to_json() if self.wall else None,
            "items": len(self.items or []),
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def run_profile(
    page: Page, profile: Profile, *, deadline: float, artifacts_dir: Path, status: int | None = None
) -> ProfileRun:
    """Run every step of ``profile`` on ``page`` before ``deadline`` (a ``time.monotonic()`` value).

    ``status`` is the main document's HTTP status when the caller knows it (else read from the page).
    """
    run = ProfileRun(profile)
    network = NetworkTracker(page)
    network.attach()
    ctx = StepContext(page=page, artifacts_dir=artifacts_dir, network=network)
    skipped = 0
    try:
        for index, step in enumerate(profile.steps):
            ctx.index = index + 1
            started = _now()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                run.steps.append(
                    StepRecord(step.label, step.kind, started, started, "timeout", "not run: the capture's time was up")
                )
                skipped += 1
                continue
            budget = min(float(step.params.get("timeout", DEFAULT_STEP_TIMEOUT)), remaining)
            outcome: StepOutcome
            try:
                result, detail = await asyncio.wait_for(STEPS[step.kind](ctx, step.params, budget), budget + 0.5)
                outcome = result  # type: ignore[assignment]
            except TimeoutError:
                outcome, detail = "timeout", f"stopped after {budget:.1f}s"
            except Exception as error:  # page trouble: a missing selector, a detached element, a closed frame
                timeout_like = "Timeout" in type(error).__name__
                outcome, detail = ("timeout" if timeout_like else "failed"), first_line(error, typed=True)
            run.steps.append(StepRecord(step.label, step.kind, started, _now(), outcome, detail))
            if outcome in ("failed", "timeout") and not step.params.get("optional", False):
                run.warnings.append(
                    CaptureWarning(
                        f"step-{outcome}", f"profile {profile.name} step {index + 1} ({step.label}): {detail}"
                    )
                )
        if skipped:
            run.warnings.append(
                CaptureWarning("step-timeout", f"profile {profile.name}: {skipped} step(s) not run, the time was up")
            )
        started = _now()
        try:
            run.wall = await asyncio.wait_for(
                detect_wall(page, profile.walls, status),
                max(WALL_CHECK_SECONDS, deadline - time.monotonic()),
            )
            run.steps.append(
                StepRecord(
                    "detect walls",
                    "detect-walls",
                    started,
                    _now(),
                    "ok",
                    f"{run.wall.kind}: {run.wall.evidence}" if run.wall else "no wall",
                )
            )
        except Exception as error:
            failure = first_line(error, typed=True)
            run.steps.append(StepRecord("detect walls", "detect-walls", started, _now(), "failed", failure))
            run.warnings.append(CaptureWarning("wall-check-failed", f"could not check for walls: {failure}"))
    finally:
        network.detach()
    run.items = ctx.items
    run.artifacts = ctx.artifacts
    run.warnings += ctx.warnings
    return run
