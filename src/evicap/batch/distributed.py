"""The coordinator's side of a distributed batch: a CaptureFn that sends each attempt to the workers.

The batch scheduler (batch.runner) is unchanged: it decides what runs when, retries transient failures with
backoff and stops cleanly; only "capture this target" becomes "send a task and wait for its small JSON answer".
``--concurrency`` is then the number of tasks in flight (queued or running), per-host limits and delays hold
across all workers, and the case index is built and sealed here, by the coordinator, as in a local batch.

Waiting for an answer: one loop reads the states of every task in flight from the result backend (one MGET a
round, ``ResultWatcher``). The hang guard counts from the moment
a worker reports the task started (and starts again when another worker takes it over after the first died), so
time spent queued behind other targets is not held against a target. On a stop (first Ctrl-C) a task not started
yet is revoked and its target left unfinished (``Withdrawn``); one a worker is running is waited for. A second
Ctrl-C stops waiting: running tasks are revoked but finish on their workers; `--resume` adopts their bundles.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from celery import Celery

from evicap.batch.index import CaseIndex
from evicap.batch.runner import CaptureFn, RunSettings, Withdrawn
from evicap.batch.targets import Target
from evicap.batch.wire import TASK_NAME, Task, result_from_json, sent_options
from evicap.bundle.model import CaptureResult
from evicap.capture.options import CaptureOptions
from evicap.errors import CaptureError, EnvironmentProblem, EvicapError, first_line

POLL = 0.25  # seconds between two looks at the states of every task in flight (one MGET for all of them)
BACKEND_PATIENCE = 60.0  # seconds the result backend may stay unreachable before the batch stops
QUEUE_WAIT = 24 * 3600.0  # the scheduler's bound on one attempt, queue included: workers may all be busy or down
REVOKE_SETTLE = 1.0  # seconds a revoked task is watched in case a worker had just taken it


def remote_capture(app: Celery, index: CaseIndex, options: CaptureOptions, settings: RunSettings,
                   stop: asyncio.Event) -> tuple[RemoteCapture, RunSettings]:
    """The sender for this run of the case, and the scheduler's settings for it: the hang guard moves into the
    sender (counted from a worker's start), the scheduler's own bound only adds the time a task may wait queued."""
    sender = RemoteCapture(app, index.directory, index.runs[-1]["started_at"], sent_options(options),
                           settings.target_timeout, stop)
    return sender, dataclasses.replace(settings, target_timeout=settings.target_timeout + QUEUE_WAIT)


def task_id(directory: Path, run: str, target: Target, attempt: int) -> str:
    """The same id for the same attempt (a redelivered message keeps it; a new attempt gets a new one)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"evicap:{directory}:{run}:{target.item}:{attempt}"))


class ResultWatcher:
    """One loop that reads the states of all tasks in flight with one MGET per round, however many there are: the
    coordinator's cost per target does not grow with the number of targets in flight."""

    def __init__(self, app: Celery, interval: float = POLL) -> None:
        self.app, self.interval = app, interval
        self.wanted: set[str] = set()
        self.metas: dict[str, dict[str, Any]] = {}
        self.error: EvicapError | None = None
        self._round = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    async def next_meta(self, tid: str) -> dict[str, Any]:
        """The task's state as of the next round."""
        self.wanted.add(tid)
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.create_task(self._rounds())
        await self._round.wait()
        if self.error is not None:
            raise self.error
        return self.metas.get(tid, {"status": "PENDING"})

    def forget(self, tid: str) -> None:
        self.wanted.discard(tid)
        self.metas.pop(tid, None)

    async def _rounds(self) -> None:
        failing_since: float | None = None
        loop = asyncio.get_running_loop()
        while self.wanted:
            ids = sorted(self.wanted)
            try:
                self.metas.update(await asyncio.to_thread(self._fetch, ids))
                failing_since = None
            except Exception as exc:  # redis-py and kombu errors: the backend is unreachable for now
                failing_since = failing_since or loop.time()
                if loop.time() - failing_since > BACKEND_PATIENCE:
                    self.error = EnvironmentProblem(f"lost the result backend for {BACKEND_PATIENCE:g} s: {exc}")
                else:
                    await asyncio.sleep(self.interval)
                    continue
            done, self._round = self._round, asyncio.Event()
            done.set()
            if self.error is not None:
                return
            await asyncio.sleep(self.interval)

    def _fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        backend = self.app.backend
        values = backend.mget([backend.get_key_for_task(tid) for tid in ids])
        return {tid: backend.decode_result(value) if value else {"status": "PENDING"}
                for tid, value in zip(ids, values, strict=True)}


# Task failures that are the machine's, not our code's: the pool process died or hit Celery's time limit.
TRANSIENT_FAILURES = ("WorkerLostError", "TimeLimitExceeded", "SoftTimeLimitExceeded")


class WorkerBug(RuntimeError):
    """A worker's task raised something other than an EvicapError: a bug of ours, shown, never retried."""


class RemoteCapture:
    """Sends attempts to the workers through ``app`` and waits for their answers."""

    def __init__(self, app: Celery, directory: Path, run: str, options: Mapping[str, Any], guard: float,
                 stop: asyncio.Event) -> None:
        self.app, self.directory, self.run, self.options = app, directory.resolve(), run, dict(options)
        self.guard, self.stop = guard, stop
        self.withdrawn = 0  # queued tasks called back at a stop
        self.watcher = ResultWatcher(app)

    def capture_fn(self) -> CaptureFn:
        return self.capture

    async def capture(self, target: Target, attempt: int) -> CaptureResult:
        if self.stop.is_set():
            raise Withdrawn()
        tid = task_id(self.directory, self.run, target, attempt)
        task = Task(target, attempt, self.run, str(self.directory), self.options, self.guard)
        await asyncio.to_thread(self.app.send_task, TASK_NAME, args=[task.to_json()], task_id=tid)
        try:
            return await self._answer(tid, target)
        except asyncio.CancelledError:  # second Ctrl-C: stop waiting; the worker finishes, --resume adopts it
            await asyncio.shield(asyncio.to_thread(self.app.control.revoke, tid))
            raise
        finally:
            self.watcher.forget(tid)

    async def _answer(self, tid: str, target: Target) -> CaptureResult:
        loop = asyncio.get_running_loop()
        runner: Any = None
        started_at = 0.0
        while True:
            meta = await self.watcher.next_meta(tid)
            state = meta.get("status")
            if state == "SUCCESS":
                await asyncio.to_thread(self.app.backend.forget, tid)
                return result_from_json(meta.get("result"), self.directory)
            if state in ("FAILURE", "REVOKED"):
                await asyncio.to_thread(self.app.backend.forget, tid)
                answer = meta.get("result")
                failure: dict[str, Any] = answer if isinstance(answer, dict) else {}
                kind = str(failure.get("exc_type") or "")
                if state == "FAILURE" and kind not in TRANSIENT_FAILURES:
                    # The task catches every EvicapError, so anything else it raised is a bug of ours on the
                    # worker: as in a local batch, it stops the batch and is never retried as transient.
                    raise WorkerBug(f"{kind or 'error'} on worker ({_who(runner)}) capturing {target.url}: "
                                    f"{first_line(str(failure.get('exc_message') or answer))}")
                raise CaptureError(f"the worker's task ended {state}: {str(meta.get('result'))[:200]}",
                                   url=target.url)
            if state == "STARTED":
                who = meta.get("result")
                if who != runner:  # a (new) worker took it: the guard starts now
                    runner, started_at = who, loop.time()
                elif loop.time() - started_at > self.guard:
                    await asyncio.to_thread(self.app.control.revoke, tid)
                    raise CaptureError(f"no answer from the worker ({_who(runner)}) within the batch's guard of "
                                       f"{self.guard:g} s; task revoked", url=target.url)
            elif self.stop.is_set():  # queued, not started: call it back
                await asyncio.to_thread(self.app.control.revoke, tid)
                await asyncio.sleep(REVOKE_SETTLE)
                if (await self.watcher.next_meta(tid)).get("status") in (None, "PENDING", "REVOKED"):
                    self.withdrawn += 1
                    raise Withdrawn()


def _who(meta: Any) -> str:
    if isinstance(meta, dict):
        return f"pid {meta.get('pid')} on {meta.get('hostname')}"
    return "unknown"
