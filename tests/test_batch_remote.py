"""How the coordinator reads a worker's task ending: a bug of ours on the worker stops the batch, as it would
locally; a machine failure (the pool process died) is a capture failure, retried like a browser crash."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from evicap.batch.distributed import RemoteCapture, WorkerBug
from evicap.batch.targets import Target
from evicap.errors import CaptureError

TARGET = Target(url="https://a.example/x", item="EX-1", line=1, profile=None, note=None, extra={})
RUNNER = {"hostname": "m1", "worker": "w1@m1", "pid": 7}


class Answers:
    """Stands in for the result watcher: the task's states, one per round."""

    def __init__(self, *metas: dict[str, Any]) -> None:
        self.metas = list(metas)

    async def next_meta(self, _tid: str) -> dict[str, Any]:
        return self.metas.pop(0)

    def forget(self, _tid: str) -> None:
        pass


def remote(tmp_path: Path, *metas: dict[str, Any]) -> tuple[RemoteCapture, list[Any]]:
    sent: list[Any] = []
    app: Any = SimpleNamespace(
        send_task=lambda *args, **kwargs: sent.append((args, kwargs)),
        backend=SimpleNamespace(forget=lambda _tid: None),
        control=SimpleNamespace(revoke=lambda _tid: None),
    )
    capture = RemoteCapture(app, tmp_path, "2026-12-01T00:00:00.000000Z", {}, 60.0, asyncio.Event())
    capture.watcher = Answers(*metas)  # type: ignore[assignment]
    return capture, sent


def failure(exc_type: str, message: str) -> dict[str, Any]:
    return {"status": "FAILURE", "result": {"exc_type": exc_type, "exc_message": message, "exc_module": "x"}}


def test_a_bug_raised_in_a_workers_task_stops_the_batch_and_is_never_retried(tmp_path: Path) -> None:
    capture, sent = remote(tmp_path, {"status": "STARTED", "result": RUNNER},
                           failure("KeyError", "'final_url'\nTraceback ..."))
    with pytest.raises(WorkerBug) as raised:
        asyncio.run(capture.capture(TARGET, 1))
    assert not isinstance(raised.value, CaptureError)  # the batch runner retries CaptureError as transient
    message = str(raised.value)
    assert "KeyError" in message and "pid 7 on m1" in message and TARGET.url in message
    assert "\n" not in message
    assert len(sent) == 1


def test_a_pool_process_lost_mid_task_is_a_capture_failure_worth_another_try(tmp_path: Path) -> None:
    capture, _sent = remote(tmp_path, failure("WorkerLostError", "Worker exited prematurely: signal 9 (SIGKILL)."))
    with pytest.raises(CaptureError):
        asyncio.run(capture.capture(TARGET, 1))
