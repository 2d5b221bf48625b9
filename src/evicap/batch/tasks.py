"""The Celery application of a distributed batch, and what a worker does with one task.

Delivery settings (why each): JSON only (no pickle: a worker may run as root, and a broker message must never
run code); late acknowledgement (``task_acks_late``): a message is acknowledged after the capture ends, so a worker
killed mid-capture leaves it unacknowledged and the broker delivers it again; ``task_reject_on_worker_lost``: a
pool process that dies (OOM killer, crash) has its task put back at once rather than marked failed; prefetch 1:
a worker holds no more targets than it runs, so a dead worker strands nothing else; ``task_track_started``: the
coordinator's hang guard counts from the moment a worker starts a task, not from when it was queued.

Redis keeps an unacknowledged message for ``visibility_timeout`` seconds before it hands it to another worker
(kombu's redis transport, swept every ``unacked_restore_interval`` seconds by the live workers). It must exceed the
longest attempt (``--timeout`` + sealing margin + hang guard), else a slow capture is delivered a second time while
it runs; the target's claim (batch.claims) makes such a copy wait and then return the first one's bundle.

Each pool process keeps one event loop and one browser across its tasks (batch.job.SharedBrowser).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from celery import Celery
from celery.signals import worker_process_shutdown

from evicap.batch.claims import claim, published_attempt, set_aside_half_made
from evicap.batch.index import read_index_json
from evicap.batch.job import SharedBrowser, browser_capture
from evicap.batch.wire import TASK_NAME, Task, apply_options, error_json, result_json
from evicap.bundle import layout
from evicap.bundle.model import CaptureResult
from evicap.errors import CaptureError, EnvironmentProblem, EvicapError, UsageError

if TYPE_CHECKING:
    from evicap.capture.browser import BrowserInfo
    from evicap.capture.options import CaptureOptions
    from evicap.capture.staged import Sealing

QUEUE = "evicap"
DEFAULT_VISIBILITY = 600.0  # seconds: 3x the default attempt (60 s + 20 s sealing margin + 120 s hang guard)
RESULT_EXPIRES = 7 * 86400  # results are read and forgotten at once; this only bounds what a dead coordinator leaves
log = logging.getLogger("evicap.worker")


def broker_display(url: str) -> str:
    """The broker URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_broker_url(url: str) -> str:
    """Refuse anything but redis://HOST[:PORT][/DB] (or rediss://) with a one-line UsageError; returns it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"bad --broker URL {url!r}: {exc}", hint="expected redis://HOST:PORT/DB") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise UsageError(f"bad --broker URL {broker_display(url)!r}", hint="expected redis://HOST:PORT/DB")
    db = parts.path.strip("/")
    if port == 0 or (db and not db.isdigit()):
        raise UsageError(f"bad --broker URL {broker_display(url)!r}: port or database is not usable",
                         hint="expected redis://HOST:PORT/DB")
    return url


def ping_broker(url: str, timeout: float = 5.0) -> None:
    """Reach the broker now, so that a wrong address is one line and exit 2, not a worker retrying forever."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.exceptions.RedisError, OSError, ValueError) as exc:
        raise EnvironmentProblem(f"cannot reach the broker at {broker_display(url)}: {exc}") from None


def make_app(url: str, *, visibility_timeout: float = DEFAULT_VISIBILITY) -> Celery:
    app = Celery("evicap", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        task_default_queue=QUEUE,
        result_expires=RESULT_EXPIRES,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            "unacked_restore_interval": max(1.0, min(10.0, visibility_timeout / 10)),
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


def connect(url: str, *, visibility_timeout: float = DEFAULT_VISIBILITY) -> Celery:
    """The app for a broker URL that is well-formed and answers now (else one line, exit 2)."""
    check_broker_url(url)
    ping_broker(url)
    return make_app(url, visibility_timeout=visibility_timeout)


def run_is_open(directory: Path, run: str) -> bool:
    """Whether the run that sent a task is still the case's running one (a later run or a closed one: stale)."""
    try:
        runs = read_index_json(directory / layout.INDEX).get("runs") or []
    except EvicapError:
        return False
    last = runs[-1] if runs and isinstance(runs[-1], dict) else {}
    return last.get("started_at") == run and "ended_at" not in last


class WorkerRuntime:
    """One worker machine's way of capturing: its options, browser and key; one browser per pool process."""

    def __init__(self, name: str, options: CaptureOptions, browser: BrowserInfo, sealing: Sealing,
                 browser_user: str | None = None) -> None:
        self.name, self.options, self.info, self.sealing = name, options, browser, sealing
        self.browser_user = browser_user
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shared: SharedBrowser | None = None

    def identity(self) -> dict[str, Any]:
        return {"hostname": socket.gethostname(), "worker": self.name, "pid": os.getpid()}

    def execute(self, payload: Any) -> dict[str, Any]:
        """Run one task to a JSON answer; never raises for a capture that went wrong (the answer says so)."""
        worker = self.identity()
        try:
            task = Task.from_json(payload)
            directory = Path(task.directory)
            if not (directory / layout.INDEX).is_file():
                raise EnvironmentProblem(f"no case index at {directory} on this worker",
                                         hint="mount the shared case directory at the same path on every machine")
            if not run_is_open(directory, task.run):
                raise UsageError(f"stale task for {task.target.item}: the batch run that sent it has ended")
            with claim(directory, task.target, timeout=task.guard):
                found = published_attempt(directory, task.options.get("case"), task.target, task.run, task.attempt)
                if found is not None:
                    log.info("%s attempt %d: already published as %s", task.target.item, task.attempt, found.bundle)
                    return result_json(found, worker, reused=True)
                for note in set_aside_half_made(directory, task.target):
                    log.warning("%s: %s", task.target.item, note)
                return result_json(self._capture(task, directory, worker), worker)
        except EvicapError as error:
            return error_json(error, worker)

    def _capture(self, task: Task, directory: Path, worker: dict[str, Any]) -> CaptureResult:
        applied = apply_options(self.options, task.options)
        base = dataclasses.replace(applied, extra={**applied.extra, "batch_run": task.run,
                                                   "batch_attempt": task.attempt, "batch_worker": worker})
        sealing = dataclasses.replace(
            self.sealing, acquired_details={"worker": worker, "batch_run": task.run, "attempt": task.attempt}
        )
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._shared = SharedBrowser(self.info, no_sandbox=self.options.no_sandbox,
                                         browser_user=self.browser_user)
        assert self._shared is not None
        capture = browser_capture(self._shared, base, directory, sealing)  # the local batch's own capture step
        go = capture(task.target, task.attempt)

        try:
            return self._loop.run_until_complete(asyncio.wait_for(go, task.guard))
        except TimeoutError:
            raise CaptureError(f"capture hung past the batch's guard of {task.guard:g} s (its staging directory "
                               "is kept)", url=task.target.url) from None

    def close(self) -> None:
        if self._loop is not None and self._shared is not None:
            self._loop.run_until_complete(self._shared.close())
            self._loop.close()
            self._loop = self._shared = None


def register(app: Celery, runtime: WorkerRuntime) -> None:
    """The capture task, bound to this worker's runtime (inherited by every pool process)."""

    @app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)
    def capture_target(payload: Any) -> dict[str, Any]:
        return runtime.execute(payload)

    @worker_process_shutdown.connect(weak=False)
    def _close(**_kwargs: Any) -> None:
        runtime.close()


def run_worker(app: Celery, *, name: str, concurrency: int) -> None:
    """Consume the evicap queue until stopped (Celery's own warm shutdown on SIGTERM / Ctrl-C)."""
    app.worker_main(argv=[
        "worker", "--pool=prefork", f"--concurrency={concurrency}", f"--hostname={name}", f"--queues={QUEUE}",
        "--prefetch-multiplier=1", "--without-gossip", "--loglevel=INFO",
    ])
