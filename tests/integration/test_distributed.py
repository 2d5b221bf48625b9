"""`evicap batch --broker` with `evicap worker` processes: a real redis-server on 127.0.0.1, real workers (their
own keys), real Chromium, real local servers (issue 15 section 3).

A worker SIGKILLed mid-capture has its target delivered again to the other worker (late acknowledgement, short
visibility timeout set for the test); every target ends with exactly one verifiable bundle and the index verifies.
A task delivered twice returns the bundle its first delivery published; Ctrl-C then --resume finishes the batch;
a bad or unreachable broker is one line and exit 2. Skipped only when redis-server is absent outside CI (the
Makefile installs it; in CI its absence fails).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from click.testing import CliRunner

from evicap.batch.index import verify_index
from evicap.cli.main import cli
from tests.brokers import EVICAP, RedisServer, Worker, redis_available
from tests.servers import LocalServer

PAGE = "<!doctype html><title>{0}</title><h1>{0}</h1><p>distributed evidence page</p>"
VISIBILITY = 15.0  # seconds before a dead worker's target goes to another worker (production default: 600)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing in CI (make test installs it)")
        pytest.skip("redis-server not installed (make test installs it)")
    with RedisServer(tmp_path / "redis") as server:
        yield server.url


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def start_worker(started: list[Worker], redis_url: str, tmp_path: Path, name: str) -> Worker:
    worker = Worker(redis_url, tmp_path / f"cfg-{name}", tmp_path / f"{name}.log", name=name, visibility=VISIBILITY)
    started.append(worker)
    worker.wait_ready()
    return worker


def coordinator(targets: Path, out: Path, config_home: Path, redis_url: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [EVICAP, "batch", str(targets), "-o", str(out), "--case", "OP-D", "--no-timestamp", "--no-report",
         "--broker", redis_url, "--per-host", "8", "--json", *extra],
        env={**os.environ, "XDG_CONFIG_HOME": str(config_home)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )


def bundles(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").is_file())


def manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text("utf-8"))


def acquired(bundle: Path) -> dict:
    first = (bundle / "custody.jsonl").read_text("utf-8").splitlines()[0]
    event = json.loads(first)
    assert event["action"] == "acquired"
    return event["details"]


def index_of(directory: Path) -> dict:
    return json.loads((directory / "case-index.json").read_text("utf-8"))


def failures(checks: list) -> list:
    return [c for c in checks if c.status == "fail"]


def wait_until(condition, limit: float, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"batch ended before {what}: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class HeldOnce:
    """The first request hangs until released (the capture is mid-flight); later ones are answered at once."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            self.release.wait(60)
            return  # the worker that asked is dead by now; nothing to answer
        body = PAGE.format("held").encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def test_worker_killed_mid_capture_its_target_is_captured_once_by_the_other(
    http_server: LocalServer, redis_url: str, workers: list[Worker], tmp_path: Path
) -> None:
    held = HeldOnce()
    urls = [http_server.route_fn("/held", held)]
    urls += [http_server.route(f"/p{n}", PAGE.format(f"p{n}")) for n in range(1, 6)]
    targets = tmp_path / "targets.txt"
    targets.write_text("\n".join(urls) + "\n", encoding="utf-8")
    out = tmp_path / "case"
    config_home = tmp_path / "cfg-coordinator"

    doomed = start_worker(workers, redis_url, tmp_path, "doomed")  # alone: the held target (listed first) is its
    batch = coordinator(targets, out, config_home, redis_url)
    try:
        wait_until(lambda: held.calls >= 1, 90, "the doomed worker's request for /held", batch)
        survivor = start_worker(workers, redis_url, tmp_path, "survivor")
        staging = [p.name for p in out.iterdir() if p.name.startswith(".staging-T0001_")]
        assert len(staging) == 1, staging  # the doomed worker's capture of /held is under way
        doomed.kill()
        held.release.set()
        stdout, stderr = batch.communicate(timeout=240)
    finally:
        if batch.poll() is None:
            os.killpg(batch.pid, signal.SIGKILL)
            batch.wait()
    assert batch.returncode == 0, stderr.decode()

    index = index_of(out)
    assert index["state"] == "finished" and index["summary"]["complete"] == len(urls)
    made = [manifest(b)["case"]["item_id"] for b in bundles(out)]
    assert sorted(made) == sorted(e["item"] for e in index["targets"])  # exactly one bundle per target
    assert {e["bundle"] for e in index["targets"]} == {b.name for b in bundles(out)}
    entries = {e["url"]: e for e in index["targets"]}
    held_bundle = out / entries[urls[0]]["bundle"]
    details = acquired(held_bundle)
    assert details["worker"]["worker"] == f"survivor@{details['worker']['hostname']}"
    assert details["attempt"] == 1  # the same attempt, delivered again; not a retry
    assert held.calls == 2
    assert (out / ".unsealed" / staging[0]).is_dir()  # the dead worker's half-made capture: kept, set aside
    assert not [p for p in out.iterdir() if p.name.startswith(".staging-")]
    lines = [json.loads(line) for line in stdout.decode().splitlines()]
    assert sum(1 for line in lines if line.get("item")) == len(urls) and lines[-1]["event"] == "index"

    # whose key seals what: each bundle by its worker's key, the index by the coordinator's
    coordinator_key = config_home / "evicap" / "signing-key.pem.pub"
    trusted = [coordinator_key, doomed.public_key, survivor.public_key]
    assert not failures(verify_index(out, trusted_keys=trusted, tsa_cas=[]))
    args = ["verify", str(out)] + [a for key in trusted for a in ("--trusted-key", str(key))]
    verify = CliRunner().invoke(cli, args)
    assert verify.exit_code == 0, verify.output
    untrusted = CliRunner().invoke(cli, ["verify", str(out), "--trusted-key", str(coordinator_key)])
    assert untrusted.exit_code == 1  # the bundles are sealed by the workers' keys, not the coordinator's


def test_a_task_delivered_twice_returns_the_bundle_it_published(
    http_server: LocalServer, tmp_path: Path
) -> None:
    """A redelivered message (its worker died after publishing, before acknowledging) captures nothing again."""
    pytest.importorskip("celery")
    from evicap.batch.case import open_case
    from evicap.batch.targets import load_targets
    from evicap.batch.tasks import WorkerRuntime
    from evicap.batch.wire import Task, sent_options
    from evicap.cli.runner import build_plan

    url = http_server.route("/once", PAGE.format("once"))
    listing = tmp_path / "list.txt"
    listing.write_text(url + "\n", encoding="utf-8")
    out = tmp_path / "case"
    out.mkdir()
    targets = load_targets(str(listing))
    index = open_case(out, "OP-R", targets, resume=False).index
    run = index.runs[-1]["started_at"]
    plan = build_plan({"timeout": 20.0, "viewport": (1280, 900), "output": str(out), "max_media_size": 1 << 20,
                       "no_timestamp": True, "case": "OP-R"})
    runtime = WorkerRuntime("w-test", plan.options, plan.browser, plan.sealing, plan.browser_user)
    (target,) = targets.targets
    payload = Task(target, 1, run, str(out), sent_options(plan.options), 120.0).to_json()
    half = out / f".staging-{target.item}_127.0.0.1_20260101T000000Z-0123abcd"  # a killed worker's leftover
    half.mkdir()
    try:
        first = runtime.execute(payload)
        again = runtime.execute(payload)
        other_attempt = runtime.execute({**payload, "attempt": 2})
    finally:
        runtime.close()
    assert first["status"] == "complete" and not first["reused"], first
    assert again["reused"] and again["bundle"] == first["bundle"]
    assert again["manifest_sha256"] == first["manifest_sha256"]
    assert other_attempt["bundle"] != first["bundle"] and not other_attempt["reused"]  # a new attempt captures
    assert len(http_server.requests_for("/once")) == 2
    assert (out / ".unsealed" / half.name).is_dir()
    assert {b.name for b in bundles(out)} == {first["bundle"], other_attempt["bundle"]}

    # a task of a run that has ended is refused, not captured
    index.runs[-1]["ended_at"] = "2026-01-01T00:00:00.000000Z"
    index.save(force=True)
    idle = WorkerRuntime("w-test", plan.options, plan.browser, plan.sealing)
    stale = idle.execute({**payload, "attempt": 3})
    assert stale["raised"]["kind"] == "usage" and "stale" in stale["raised"]["message"]
    # a worker that does not see the shared directory says so (the coordinator stops: an environment problem)
    unmounted = idle.execute({**payload, "directory": str(tmp_path / "not-mounted")})
    assert unmounted["raised"]["kind"] == "environment" and "mount" in unmounted["raised"]["message"]
    assert len(http_server.requests_for("/once")) == 2


def test_ctrl_c_revokes_queued_targets_and_resume_finishes(
    http_server: LocalServer, redis_url: str, workers: list[Worker], tmp_path: Path
) -> None:
    urls = [http_server.route(f"/q{n}", PAGE.format(f"q{n}"), delay=0.5) for n in range(1, 7)]
    targets = tmp_path / "targets.txt"
    targets.write_text("\n".join(urls) + "\n", encoding="utf-8")
    out = tmp_path / "case"
    config_home = tmp_path / "cfg-coordinator"
    worker = start_worker(workers, redis_url, tmp_path, "only")
    batch = coordinator(targets, out, config_home, redis_url)
    wait_until(lambda: out.exists() and len(bundles(out)) >= 1, 120, "a first bundle", batch)
    os.killpg(batch.pid, signal.SIGINT)
    _stdout, stderr = batch.communicate(timeout=120)
    assert batch.returncode == 130, stderr.decode()
    assert b"--resume" in stderr
    index = index_of(out)
    assert index["state"] == "interrupted"
    assert all(e["status"] in ("complete", "pending") for e in index["targets"]), index["targets"]
    done = index["summary"]["complete"]
    assert 1 <= done < len(urls)
    assert f"revoked {len(urls) - done} queued task(s)".encode() in stderr  # said so
    time.sleep(2)  # a queued task that was revoked must not be captured after the stop
    assert {b.name for b in bundles(out)} == {e["bundle"] for e in index["targets"] if e["bundle"]}

    again = coordinator(targets, out, config_home, redis_url, "--resume")
    _stdout, stderr = again.communicate(timeout=240)
    assert again.returncode == 0, stderr.decode()
    index = index_of(out)
    assert index["summary"]["complete"] == len(urls) and index["state"] == "finished"
    made = sorted(manifest(b)["case"]["item_id"] for b in bundles(out))
    assert made == sorted(e["item"] for e in index["targets"])  # none lost, none twice
    trusted = [config_home / "evicap" / "signing-key.pem.pub", worker.public_key]
    assert not failures(verify_index(out, trusted_keys=trusted, tsa_cas=[]))


@pytest.mark.parametrize("broker", ["http://127.0.0.1:6379/0", "redis://127.0.0.1:notaport/0", "redis://:1/x"])
def test_bad_broker_url_is_one_line_and_exit_2(broker: str, tmp_path: Path) -> None:
    pytest.importorskip("celery")
    listing = tmp_path / "list.txt"
    listing.write_text("http://127.0.0.1:9/a\n", encoding="utf-8")
    for args in (["batch", str(listing), "-o", str(tmp_path / "case"), "--case", "X", "--broker", broker],
                 ["worker", "--broker", broker]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "--broker" in lines[0] and "Traceback" not in result.output, result.stderr
    assert not (tmp_path / "case").exists()


def test_unreachable_broker_is_one_line_and_exit_2(tmp_path: Path) -> None:
    pytest.importorskip("celery")
    from tests.brokers import free_port

    listing = tmp_path / "list.txt"
    listing.write_text("http://127.0.0.1:9/a\n", encoding="utf-8")
    broker = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    for args in (["batch", str(listing), "-o", str(tmp_path / "case"), "--case", "X", "--broker", broker],
                 ["worker", "--broker", broker]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "cannot reach the broker" in lines[0], result.stderr


def test_options_of_the_worker_machine_are_refused_on_the_coordinator(tmp_path: Path) -> None:
    pytest.importorskip("celery")
    listing = tmp_path / "list.txt"
    listing.write_text("http://127.0.0.1:9/a\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["batch", str(listing), "-o", str(tmp_path / "c"), "--case", "X",
                                      "--broker", "redis://127.0.0.1:1/0", "--proxy", "http://127.0.0.1:8080"])
    assert result.exit_code == 2 and "--proxy" in result.stderr and "evicap worker" in result.stderr


def test_a_local_batch_does_not_import_celery() -> None:
    code = ("import sys; import evicap.cli.batch, evicap.batch.job, evicap.batch.case, evicap.batch.wire, "
            "evicap.batch.claims; print(sorted(m for m in sys.modules if m.split('.')[0] in ('celery', 'kombu')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_pool_process_that_dies_has_its_target_put_back_at_once(
    http_server: LocalServer, redis_url: str, workers: list[Worker], tmp_path: Path
) -> None:
    """task_reject_on_worker_lost: the worker lives on, its pool process running the capture is killed (as the OOM
    killer would); the target is delivered again at once, not after the visibility timeout (600 s here)."""
    import psutil

    held = HeldOnce()
    url = http_server.route_fn("/held", held)
    targets = tmp_path / "targets.txt"
    targets.write_text(url + "\n", encoding="utf-8")
    out = tmp_path / "case"
    config_home = tmp_path / "cfg-coordinator"
    worker = Worker(redis_url, tmp_path / "cfg-w", tmp_path / "w.log", name="w", visibility=600.0)
    workers.append(worker)
    worker.wait_ready()
    batch = coordinator(targets, out, config_home, redis_url)
    try:
        wait_until(lambda: held.calls >= 1, 90, "the worker's request for /held", batch)
        pool = [p for p in psutil.Process(worker.proc.pid).children() if "python" in p.name().lower()
                or "evicap" in " ".join(p.cmdline())]
        assert len(pool) == 1, pool  # --concurrency 1: one pool process
        pool[0].kill()
        held.release.set()
        _stdout, stderr = batch.communicate(timeout=180)
    finally:
        if batch.poll() is None:
            os.killpg(batch.pid, signal.SIGKILL)
            batch.wait()
    assert batch.returncode == 0, stderr.decode()
    (bundle,) = bundles(out)
    assert acquired(bundle)["attempt"] == 1 and held.calls == 2
    assert len(list((out / ".unsealed").iterdir())) == 1  # the dead process's half-made capture, kept
    assert not failures(verify_index(out, trusted_keys=[config_home / "evicap" / "signing-key.pem.pub",
                                                        worker.public_key], tsa_cas=[]))
