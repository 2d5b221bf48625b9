"""The coordinator's side of a distributed batch: a CaptureFn that sends each attempt to the workers.

The batch scheduler (batch.runner) is unchanged: it decides what runs when, retries transient failures with
backoff and stops cleanly; only "capture this target" becomes "send a task and wait for its small JSON answer".
``--concurrency`` is then the number of tasks in flight (queued or running), per-host limits and delays hold
across all workers, and the case index is built and sealed here, by the coordinator, as in a local batch.

Waiting for an answer: the result backend is polled for the task's state. The hang guard counts from the moment
a worker reports the task started (and starts again when another worker takes it over after the first died), so
time spent queued behind other targets is not held against a target. On a stop (first Ctrl-C) a task not started
yet is revoked and its target left unfinished (``Withdrawn``); one a worker is running is waited for. A second
Ctrl-C stops waiting: running tasks are revoked but finish on their workers; `--resume` adopts their bundles.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from celery import Celery

from evicap.batch.runner import CaptureFn, Withdrawn
from evicap.batch.targets import Target
from evicap.batch.wire import TASK_NAME, Task, result_from_json
from evicap.bundle.model import CaptureResult
from evicap.errors import CaptureError

POLL_FIRST, POLL_MAX = 0.1, 1.0  # seconds between two looks at a task's state (growing while nothing changes)
QUEUE_WAIT = 24 * 3600.0  # the scheduler's bound on one attempt, queue included: workers may all be busy or down
REVOKE_SETTLE = 1.0  # seconds a revoked task is watched in case a worker had just taken it


def task_id(directory: Path, run: str, target: Target, attempt: int) -> str:
    """The same id for the same attempt (a redelivered message keeps it; a new attempt gets a new one)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"evicap:{directory}:{run}:{target.item}:{attempt}"))


class RemoteCapture:
    """Sends attempts to the workers through ``app`` and waits for their answers."""

    def __init__(self, app: Celery, directory: Path, run: str, options: Mapping[str, Any], guard: float,
                 stop: asyncio.Event) -> None:
        self.app, self.directory, self.run, self.options = app, directory.resolve(), run, dict(options)
        self.guard, self.stop = guard, stop
        self.withdrawn = 0  # queued tasks called back at a stop

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

    async def _meta(self, tid: str) -> dict[str, Any]:
        meta = await asyncio.to_thread(self.app.backend.get_task_meta, tid)
        return meta if isinstance(meta, dict) else {}

    async def _answer(self, tid: str, target: Target) -> CaptureResult:
        loop = asyncio.get_running_loop()
        runner: Any = None
        started_at = 0.0
        pause = POLL_FIRST
        while True:
            meta = await self._meta(tid)
            state = meta.get("status")
            if state == "SUCCESS":
                await asyncio.to_thread(self.app.backend.forget, tid)
                return result_from_json(meta.get("result"), self.directory)
            if state in ("FAILURE", "REVOKED"):
                await asyncio.to_thread(self.app.backend.forget, tid)
                raise CaptureError(f"the worker's task ended {state}: {str(meta.get('result'))[:200]}",
                                   url=target.url)
            if state == "STARTED":
                who = meta.get("result")
                if who != runner:  # a (new) worker took it: the guard starts now
                    runner, started_at, pause = who, loop.time(), POLL_FIRST
                elif loop.time() - started_at > self.guard:
                    await asyncio.to_thread(self.app.control.revoke, tid)
                    raise CaptureError(f"no answer from the worker ({_who(runner)}) within the batch's guard of "
                                       f"{self.guard:g} s; task revoked", url=target.url)
            elif self.stop.is_set():  # queued, not started: call it back
                await asyncio.to_thread(self.app.control.revoke, tid)
                await asyncio.sleep(REVOKE_SETTLE)
                if (await self._meta(tid)).get("status") in (None, "PENDING", "REVOKED"):
                    self.withdrawn += 1
                    raise Withdrawn()
                continue
            await asyncio.sleep(pause)
            pause = min(POLL_MAX, pause * 1.5)


def _who(meta: Any) -> str:
    if isinstance(meta, dict):
        return f"pid {meta.get('pid')} on {meta.get('hostname')}"
    return "unknown"
