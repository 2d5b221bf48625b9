"""What crosses the broker in a distributed batch: tasks and answers as small JSON, errors as their classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evicap.batch.targets import Target
from evicap.batch.wire import SENT_OPTIONS, Task, apply_options, error_json, result_from_json, result_json, sent_options
from evicap.bundle.model import CaptureResult, CaptureWarning
from evicap.capture.options import CaptureOptions
from evicap.errors import CaptureError, EnvironmentProblem, SigningError, UsageError

WORKER = {"hostname": "m1", "worker": "w1", "pid": 7}


def test_a_task_survives_json_and_carries_only_what_to_capture() -> None:
    target = Target(url="https://a.example/x", item="EX-1", line=3, profile="generic", note="n", extra={"k": "v"})
    coordinator = CaptureOptions(case="C", investigator="I", timeout=30.0, proxy="http://10.0.0.1:3128",
                                 no_sandbox=True, session="mine", match_lists=("/coordinator/list.csv",))
    task = Task(target, 2, "2026-01-01T00:00:00.000000Z", "/shared/case", sent_options(coordinator), 170.0)
    back = Task.from_json(json.loads(json.dumps(task.to_json())))
    assert back == task
    assert set(back.options) == set(SENT_OPTIONS)
    worker_own = CaptureOptions(proxy="http://127.0.0.1:8080", session=None, no_sandbox=False)
    applied = apply_options(worker_own, back.options)
    assert (applied.case, applied.investigator, applied.timeout) == ("C", "I", 30.0)
    assert (applied.proxy, applied.session, applied.no_sandbox, applied.match_lists) == (
        "http://127.0.0.1:8080", None, False, ())  # the worker machine's own, never the coordinator's


@pytest.mark.parametrize("data", [None, {"format": 99}, {"format": 1, "target": {"url": "x"}}])
def test_a_malformed_task_is_a_usage_error(data: object) -> None:
    with pytest.raises(UsageError):
        Task.from_json(data)


def test_an_answer_becomes_a_result_on_the_coordinators_path(tmp_path: Path) -> None:
    result = CaptureResult(url="https://a.example/x", status="partial", bundle="/worker/mount/EX-1_a.example_T",
                           error="cut", manifest_sha256="ab" * 32, item="EX-1",
                           warnings=[CaptureWarning("load-timeout", "slow", "https://a.example/x")])
    answer = json.loads(json.dumps(result_json(result, WORKER)))
    back = result_from_json(answer, tmp_path)
    assert back.bundle == str(tmp_path / "EX-1_a.example_T")  # the name travels, not the worker's path
    assert (back.status, back.error, back.manifest_sha256, back.item) == ("partial", "cut", "ab" * 32, "EX-1")
    assert back.warnings == result.warnings


@pytest.mark.parametrize("bundle", ["../elsewhere", ".staging-x", "a/b"])
def test_an_answer_naming_a_bundle_outside_the_case_is_refused(bundle: str, tmp_path: Path) -> None:
    answer = {"status": "complete", "bundle": bundle, "url": "u", "worker": WORKER}
    with pytest.raises(CaptureError):
        result_from_json(answer, tmp_path)


@pytest.mark.parametrize("error", [EnvironmentProblem("no browser"), SigningError("bad key"),
                                   CaptureError("crashed"), UsageError("stale")])
def test_a_workers_error_is_raised_as_its_class(error: Exception, tmp_path: Path) -> None:
    answer = json.loads(json.dumps(error_json(error, WORKER)))  # type: ignore[arg-type]
    with pytest.raises(type(error)) as raised:
        result_from_json(answer, tmp_path)
    assert str(error) in str(raised.value) and "w1 on m1" in str(raised.value)
