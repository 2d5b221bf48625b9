"""The batch scheduler: N captures at once, per-host limits and delays, retries with backoff, clean stops.

The capture itself is injected (``CaptureFn``), so this module knows nothing about browsers: it decides what runs
when. Order is the list's order, except that a host at its in-flight limit or inside its delay is passed over for
the next target of another host. A retried target keeps its place in its host's queue.

Which failures are retried (transient ones, where trying again later can plausibly succeed):
  - connection refused / reset / closed / timed out, empty response, DNS failure, network changed, proxy failure;
  - the per-target timeout firing, or the capture stopping abnormally (browser crash: a ``CaptureError``);
  - HTTP 502, 503 and 504 (gateway and overload answers).
Never retried: any 4xx (429 included: the per-host delay is the remedy, and hammering a rate limit makes it
worse), other 5xx (500 is usually a deterministic server bug), TLS certificate errors, refused schemes and bad URLs.

Stopping: ``stop`` (first Ctrl-C) starts nothing new and lets captures in flight finish; ``abort`` (second Ctrl-C)
cancels them, and the capture function discards their staging directories whole.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from evicap import clock
from evicap.batch.targets import Target
from evicap.bundle.model import CaptureResult
from evicap.errors import CaptureError, EnvironmentProblem, EvicapError, SigningError

CaptureFn = Callable[[Target, int], Awaitable[CaptureResult]]
"""Capture one target; the int is the attempt number (1-based). Returns a result or raises EvicapError."""

RETRY_HTTP = (502, 503, 504)
_TRANSIENT = re.compile(
    r"ERR_CONNECTION_(REFUSED|RESET|CLOSED|TIMED_OUT|FAILED|ABORTED)|ERR_EMPTY_RESPONSE|ERR_NAME_NOT_RESOLVED"
    r"|ERR_NAME_RESOLUTION_FAILED|ERR_NETWORK_CHANGED|ERR_ADDRESS_UNREACHABLE|ERR_INTERNET_DISCONNECTED"
    r"|ERR_PROXY_CONNECTION_FAILED|ERR_TIMED_OUT|ERR_NETWORK_IO_SUSPENDED|timed out",
    re.IGNORECASE,
)
FATAL = (EnvironmentProblem, SigningError)  # every further target would fail the same way: stop the batch


class Withdrawn(Exception):
    """Raised by a CaptureFn whose attempt never started and was called back at a stop (a distributed task
    revoked while queued): the target goes back to the unfinished ones, and the attempt does not count."""


@dataclass(frozen=True)
class RunSettings:
    """How hard to push: limits apply to the whole run."""

    concurrency: int = 2  # captures in flight at once (isolated browser contexts)
    per_host: int = 6  # captures in flight on one host (host:port): docs/batch.md says why
    host_delay: float = 0.0  # seconds between two capture starts on one host
    retries: int = 2  # extra attempts for a transient failure
    backoff: float = 2.0  # seconds before the first retry; doubles each time, with jitter
    backoff_max: float = 120.0
    target_timeout: float = 300.0  # hard limit for one attempt, sealing included

    def retry_delay(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with jitter in [50 %, 100 %]: retries of many targets do not fire in lockstep."""
        base = min(self.backoff_max, self.backoff * (2 ** max(0, attempt - 1)))
        return base * rng.uniform(0.5, 1.0)


@dataclass(frozen=True)
class TargetOutcome:
    """The final word on one target in this run."""

    target: Target
    result: CaptureResult
    attempts: int  # attempts made in this run
    http_status: int | None
    started_at: str
    ended_at: str
    superseded: tuple[CaptureResult, ...] = ()  # earlier attempts that left a bundle (kept, listed in the index)


@dataclass(frozen=True)
class Unfinished:
    """A target the run did not finish because it was stopped."""

    target: Target
    attempts: int
    superseded: tuple[CaptureResult, ...] = ()


@dataclass(frozen=True)
class RunReport:
    interrupted: bool
    unfinished: tuple[Unfinished, ...]


class BatchProgress(Protocol):
    """What a progress display is told. The default does nothing."""

    def started(self, target: Target, attempt: int) -> None: ...

    def retrying(self, target: Target, attempt: int, delay: float, reason: str) -> None: ...

    def finished(self, outcome: TargetOutcome) -> None: ...


class NoProgress:
    def started(self, target: Target, attempt: int) -> None:
        pass

    def retrying(self, target: Target, attempt: int, delay: float, reason: str) -> None:
        pass

    def finished(self, outcome: TargetOutcome) -> None:
        pass


def retry_reason(result: CaptureResult, http_status: int | None) -> str | None:
    """Why this result is worth another attempt, or None when it is final."""
    if http_status in RETRY_HTTP:
        return f"HTTP {http_status}"
    if result.status == "complete" or (http_status is not None and 400 <= http_status < 600):
        return None
    match = _TRANSIENT.search(result.error or "")
    return match.group(0) if match else None


def utc_now() -> str:
    return clock.iso_now()


@dataclass
class _Job:
    target: Target
    seq: int
    attempts: int = 0
    first_started: str | None = None
    superseded: list[CaptureResult] = field(default_factory=list)

    def __lt__(self, other: _Job) -> bool:
        return self.seq < other.seq


class _Scheduler:
    """Who runs next. All state changes happen under one asyncio.Condition."""

    def __init__(self, targets: Sequence[Target], settings: RunSettings) -> None:
        self.settings = settings
        self.queues: dict[str, list[_Job]] = {}
        for seq, target in enumerate(targets):
            heapq.heappush(self.queues.setdefault(target.host, []), _Job(target, seq))
        self.waiting: list[tuple[float, int, _Job]] = []  # retries not yet due
        self.in_flight: dict[str, int] = {}
        self.next_start: dict[str, float] = {}
        self.running: dict[int, _Job] = {}
        self.stopping = False
        self.changed = asyncio.Condition()

    def _pick(self, now: float) -> tuple[_Job | None, float | None]:
        while self.waiting and self.waiting[0][0] <= now:
            _, _, job = heapq.heappop(self.waiting)
            heapq.heappush(self.queues.setdefault(job.target.host, []), job)
        best: _Job | None = None
        wake = self.waiting[0][0] if self.waiting else None
        for host, queue in self.queues.items():
            if not queue or self.in_flight.get(host, 0) >= self.settings.per_host:
                continue
            ready = self.next_start.get(host, 0.0)
            if ready > now:
                wake = ready if wake is None else min(wake, ready)
            elif best is None or queue[0].seq < best.seq:
                best = queue[0]
        return best, wake

    def _finished(self) -> bool:
        return not self.running and not self.waiting and not any(self.queues.values())

    async def take(self) -> _Job | None:
        async with self.changed:
            while not self.stopping:
                now = time.monotonic()
                job, wake = self._pick(now)
                if job is not None:
                    host = job.target.host
                    heapq.heappop(self.queues[host])
                    self.in_flight[host] = self.in_flight.get(host, 0) + 1
                    self.next_start[host] = now + self.settings.host_delay
                    self.running[job.seq] = job
                    return job
                if self._finished():
                    return None
                try:
                    await asyncio.wait_for(self.changed.wait(), None if wake is None else max(0.0, wake - now))
                except TimeoutError:
                    pass
            return None

    async def release(self, job: _Job, retry_at: float | None = None) -> None:
        async with self.changed:
            host = job.target.host
            self.in_flight[host] -= 1
            self.running.pop(job.seq, None)
            if retry_at is not None:
                heapq.heappush(self.waiting, (retry_at, job.seq, job))
            self.changed.notify_all()

    async def stop(self) -> None:
        async with self.changed:
            self.stopping = True
            self.changed.notify_all()

    def leftovers(self) -> list[_Job]:
        jobs = [job for queue in self.queues.values() for job in queue]
        jobs += [job for _, _, job in self.waiting] + list(self.running.values())
        return sorted(jobs, key=lambda j: j.seq)


async def run_batch(
    targets: Sequence[Target],
    capture: CaptureFn,
    settings: RunSettings,
    *,
    on_outcome: Callable[[TargetOutcome], None],
    progress: BatchProgress | None = None,
    http_status: Callable[[CaptureResult], int | None] | None = None,
    stop: asyncio.Event | None = None,
    abort: asyncio.Event | None = None,
    rng: random.Random | None = None,
) -> RunReport:
    """Capture every target once (plus retries), calling ``on_outcome`` as each one is final.

    Raises the first fatal EvicapError (no usable key, output not writable) after the captures in flight end.
    """
    shown = progress or NoProgress()
    status_of = http_status or _manifest_http_status
    random_source = rng or random.Random()
    scheduler = _Scheduler(targets, settings)
    fatal: list[EvicapError] = []

    async def attempt(job: _Job) -> None:
        job.attempts += 1
        job.first_started = job.first_started or utc_now()
        shown.started(job.target, job.attempts)
        transient: str | None = None
        try:
            result = await asyncio.wait_for(capture(job.target, job.attempts), settings.target_timeout)
        except TimeoutError:
            result = _failed(job.target, f"capture hung past the batch's guard of {settings.target_timeout:g} s "
                             "(its staging directory is kept)")
            transient = "timed out"
        except Withdrawn:
            job.attempts -= 1
            await scheduler.release(job, retry_at=time.monotonic())
            return
        except FATAL as error:
            fatal.append(error)
            await scheduler.stop()
            await scheduler.release(job)
            return
        except CaptureError as error:  # the capture stopped abnormally (browser crash): worth another try
            result = _failed(job.target, error.one_line())
            transient = "capture stopped abnormally"
        except EvicapError as error:  # bad URL, bad profile: final for this target
            result = _failed(job.target, error.one_line())
        status = status_of(result)
        reason = transient or retry_reason(result, status)
        if reason and job.attempts <= settings.retries and not scheduler.stopping:
            delay = settings.retry_delay(job.attempts, random_source)
            if result.bundle:
                job.superseded.append(result)
            shown.retrying(job.target, job.attempts, delay, reason)
            await scheduler.release(job, retry_at=time.monotonic() + delay)
            return
        outcome = TargetOutcome(
            target=job.target,
            result=result,
            attempts=job.attempts,
            http_status=status,
            started_at=job.first_started,
            ended_at=utc_now(),
            superseded=tuple(job.superseded),
        )
        await scheduler.release(job)
        on_outcome(outcome)
        shown.finished(outcome)

    async def worker() -> None:
        while (job := await scheduler.take()) is not None:
            await attempt(job)

    workers = [asyncio.create_task(worker()) for _ in range(max(1, settings.concurrency))]
    watchers = []
    if stop is not None:
        watchers.append(asyncio.create_task(_on_event(stop, scheduler.stop)))
    if abort is not None:
        watchers.append(asyncio.create_task(_on_event(abort, lambda: _cancel(workers))))
    try:
        ended = await asyncio.gather(*workers, return_exceptions=True)
    finally:
        for task in watchers:
            task.cancel()
    if fatal:
        raise fatal[0]
    for outcome in ended:
        if isinstance(outcome, Exception):  # a bug in a callback or the capture: never swallow it
            raise outcome
    unfinished = tuple(Unfinished(j.target, j.attempts, tuple(j.superseded)) for j in scheduler.leftovers())
    return RunReport(interrupted=scheduler.stopping, unfinished=unfinished)


async def _on_event(event: asyncio.Event, action: Callable[[], Awaitable[None]]) -> None:
    await event.wait()
    await action()


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()


def _failed(target: Target, reason: str) -> CaptureResult:
    return CaptureResult(url=target.url, status="failed", bundle=None, error=reason, item=target.item)


def _manifest_http_status(result: CaptureResult) -> int | None:
    """The HTTP status the bundle's manifest recorded for the main document (None without a bundle)."""
    if not result.bundle:
        return None
    from evicap.batch.resume import read_bundle_facts

    bundle = Path(result.bundle)
    facts = read_bundle_facts(bundle.parent, bundle)
    return facts.http_status if facts else None
