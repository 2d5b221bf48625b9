"""The watch loop: capture the targets that are due through the batch scheduler (its concurrency, per-host limits
and retries), compare each new bundle with that target's previous one, log the changes, then sleep until the next
target is due. A stop request lets the captures in flight finish; the state file then says where to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evicap.batch.runner import CaptureFn, RunSettings, TargetOutcome, run_batch
from evicap.batch.targets import Target
from evicap.watch.compare import compare, first_capture
from evicap.watch.snapshot import read_snapshot
from evicap.watch.state import WatchState, append_changes, parse_duration, parse_utc, utc

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class WatchSettings:
    every: float  # seconds between two captures of one target (a target's own `every` column overrides it)
    rounds: int | None = None  # captures per target in total, across restarts; None: until stopped
    run: RunSettings = field(default_factory=RunSettings)


class WatchEvents:
    """What the CLI is told; the default does nothing."""

    def captured(self, target: Target, outcome: TargetOutcome, round_number: int) -> None:
        pass

    def changed(self, change: dict[str, Any]) -> None:
        pass

    def waiting(self, seconds: float) -> None:
        pass


def interval_of(target: Target, settings: WatchSettings) -> float:
    own = target.extra.get("every") if target.extra else None
    return parse_duration(own) if own else settings.every


class Watch:
    def __init__(
        self, directory: Path, targets: Sequence[Target], capture: CaptureFn, settings: WatchSettings,
        events: WatchEvents | None = None, clock: Clock = _now,
    ) -> None:
        self.directory = directory
        self.targets = list(targets)
        self.capture = capture
        self.settings = settings
        self.events = events or WatchEvents()
        self.clock = clock
        self.state = WatchState.load(directory)
        self._stopping: asyncio.Event | None = None
        for target in self.targets:
            self.state.target(target.item, target.url)
        self.state.save()

    def _remaining(self, target: Target) -> bool:
        rounds = self.settings.rounds
        return rounds is None or self.state.target(target.item, target.url).rounds < rounds

    def finished(self) -> bool:
        return not any(self._remaining(t) for t in self.targets)

    def due(self) -> list[Target]:
        now = self.clock()
        return [t for t in self.targets if self._remaining(t) and self.state.target(t.item, t.url).due(now)]

    def seconds_to_next(self) -> float:
        now = self.clock()
        waits = []
        for target in self.targets:
            if self._remaining(target):
                state = self.state.target(target.item, target.url)
                if state.next_due_at is None:
                    return 0.0
                waits.append((parse_utc(state.next_due_at) - now).total_seconds())
        return max(0.0, min(waits)) if waits else 0.0

    def _record(self, target: Target, outcome: TargetOutcome, round_started: datetime) -> None:
        state = self.state.target(target.item, target.url)
        result = outcome.result
        if self._stopping is not None and self._stopping.is_set() and result.bundle is None:
            return  # lost to the stop itself (its browser went with it): still due, captured after the restart
        bundle = Path(result.bundle).resolve() if result.bundle else None  # a restart may run from elsewhere
        after = read_snapshot(bundle, status=result.status, error=result.error)
        changes: list[dict[str, Any]] = []
        found = compare(read_snapshot(Path(state.last_bundle)), after) if state.last_bundle else first_capture(after)
        for change in found:
            changes.append({"time": utc(self.clock()), "target": target.url, "item": target.item, **change})
        append_changes(self.directory, changes)
        state.rounds += 1
        # The interval runs from when this target's capture really started (it may have queued behind others, or
        # waited for the browser): the bundle's own start time, which is what its manifest shows.
        began = after.started_at or outcome.started_at
        started = parse_utc(began) if began else round_started
        state.schedule(started, interval_of(target, self.settings))
        if bundle is not None:
            state.last_bundle = str(bundle)
        self.state.save()
        self.events.captured(target, outcome, state.rounds)
        for change in changes:
            self.events.changed(change)

    async def round(self, stop: asyncio.Event, abort: asyncio.Event | None = None) -> bool:
        """Capture every target that is due, once. Returns False when the round was interrupted."""
        due = self.due()
        if not due:
            return True
        started = {t.item: self.clock() for t in due}
        self._stopping = stop
        report = await run_batch(
            due, self.capture, self.settings.run,
            on_outcome=lambda outcome: self._record(outcome.target, outcome, started[outcome.target.item]),
            stop=stop, abort=abort,
        )  # fmt: skip
        return not report.interrupted

    async def run(self, stop: asyncio.Event, abort: asyncio.Event | None = None) -> bool:
        """Rounds until every target has its rounds or ``stop`` is set. True when it ended by itself."""
        while not stop.is_set() and not self.finished():
            if not await self.round(stop, abort):
                return False
            if self.finished() or stop.is_set():
                break
            wait = self.seconds_to_next()
            if wait > 0:
                self.events.waiting(wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
        return not stop.is_set()
