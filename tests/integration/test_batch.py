"""`evicap batch` end to end: real Chromium, real local servers, the real CLI (in-process and as a subprocess).

Covers issue 6 section 6: mixed good and bad targets, retries against a flaky server, ``kill -9`` mid-batch then
``--resume`` (none lost, none twice), Ctrl-C, and the sealed index verifying and failing once a bundle is altered.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
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
from evicap.batch.job import SharedBrowser
from evicap.capture.browser import BrowserInfo
from evicap.cli.main import cli
from tests.servers import LocalServer
from tests.tsa import LocalTSA, isolated_config, tsa  # noqa: F401

PAGE = "<!doctype html><title>{0}</title><h1>{0}</h1><p>evidence page</p>"


def page(server: LocalServer, path: str, delay: float = 0.0) -> str:
    return server.route(path, PAGE.format(path.strip("/")), delay=delay)


def bundles(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.iterdir() if p.is_dir() and (p / "manifest.json").is_file() and not p.name.startswith(".")
    )


def staging_left(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".staging-")]


def index_of(directory: Path) -> dict:
    return json.loads((directory / "case-index.json").read_text("utf-8"))


def failures(checks: list) -> list:
    return [c for c in checks if c.status == "fail"]


def public_key(config: Path) -> Path:
    return config / "signing-key.pem.pub"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["batch", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def config(isolated_config: Path) -> Path:  # noqa: F811
    return isolated_config


def test_mixed_list_is_captured_indexed_sealed_and_verifies(
    http_server: LocalServer,
    http_server2: LocalServer,
    tsa: LocalTSA,  # noqa: F811
    config: Path,
    tmp_path: Path,
) -> None:
    a, b = page(http_server, "/a"), page(http_server, "/b")
    c = page(http_server2, "/c")
    gone = http_server.route("/gone", "<title>gone</title>", status=404)
    targets = tmp_path / "targets.csv"
    targets.write_text(
        f"url,item,note\n{a},EX-A,first\nnot a url,EX-X,\n{b},,\n{c},EX-C,other origin\n{a},EX-DUP,\n{gone},EX-GONE,\n",
        encoding="utf-8",
    )
    out = tmp_path / "case"
    code, stdout, stderr = invoke(
        str(targets),
        "-o",
        str(out),
        "--case",
        "OP-1",
        "--json",
        "--concurrency",
        "2",
        "--tsa",
        tsa.url(),
        "--tsa-ca",
        str(tsa.ca_pem),
    )
    assert code == 1, stderr  # a line was skipped and one target is not complete
    assert "line 3" in stderr and "line 2: duplicate" in stderr
    lines = [json.loads(line) for line in stdout.splitlines()]
    per_item = {line["item"]: line for line in lines if "item" in line}
    assert set(per_item) == {"EX-A", "T0003", "EX-C", "EX-GONE"}
    assert {k: v["status"] for k, v in per_item.items() if k != "EX-GONE"} == dict.fromkeys(
        ["EX-A", "T0003", "EX-C"], "complete"
    )
    assert per_item["EX-GONE"]["status"] != "complete" and per_item["EX-GONE"]["http_status"] == 404
    assert per_item["EX-GONE"]["attempts"] == 1  # 4xx is never retried
    assert lines[-1]["event"] == "index" and lines[-1]["timestamped"] is True

    index = index_of(out)
    assert index["state"] == "finished" and index["case_id"] == "OP-1"
    entries = {e["item"]: e for e in index["targets"]}
    assert entries["EX-A"]["note"] == "first" and entries["EX-A"]["line"] == 2
    for item in ("EX-A", "T0003", "EX-C"):
        bundle = out / entries[item]["bundle"]
        manifest = json.loads((bundle / "manifest.json").read_text("utf-8"))
        assert manifest["case"]["case_id"] == "OP-1" and manifest["case"]["item_id"] == item
    assert [p["line"] for p in index["problems"]] == [2, 3]
    assert not staging_left(out)

    checks = verify_index(out, trusted_keys=[public_key(config)], tsa_cas=[tsa.ca_pem])
    assert not failures(checks), failures(checks)
    assert {c.name for c in checks if c.status == "pass"} >= {
        "index-signature",
        "index-signer-trust",
        "index-timestamp",
        "index-custody",
        "index-bundle",
    }

    # one altered bundle: the index no longer matches it, and `evicap verify DIR` says so
    altered = out / entries["EX-C"]["bundle"] / "manifest.json"
    altered.write_bytes(altered.read_bytes().replace(b"other origin", b"other 0rigin"))
    bad = failures(verify_index(out, trusted_keys=[public_key(config)], tsa_cas=[tsa.ca_pem]))
    assert [(c.name, c.subject) for c in bad] == [("index-bundle", "EX-C")]
    assert "altered" in bad[0].reason
    verify = CliRunner().invoke(
        cli, ["verify", str(out), "--trusted-key", str(public_key(config)), "--tsa-ca", str(tsa.ca_pem)]
    )
    assert verify.exit_code == 1

    # an edited index breaks its seal
    index_path = out / "case-index.json"
    index_path.write_bytes(index_path.read_bytes().replace(b'"first"', b'"1st"'))
    bad = {c.name for c in failures(verify_index(out, trusted_keys=[public_key(config)], tsa_cas=[tsa.ca_pem]))}
    assert "index-signature" in bad


class Flaky:
    """Resets the connection twice (Chromium may retry one of those itself), then answers 503, then the page."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.calls += 1
            call = self.calls
        if call <= 2:  # RST instead of an answer: net::ERR_CONNECTION_RESET or ERR_EMPTY_RESPONSE
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.close_connection = True
            return
        body = b"<title>busy</title>try later" if call == 3 else b"<title>flaky</title><p>finally here</p>"
        handler.send_response(503 if call == 3 else 200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def test_flaky_server_is_retried_and_earlier_attempts_are_kept(
    http_server: LocalServer, config: Path, tmp_path: Path
) -> None:
    flaky = Flaky()
    url = http_server.route_fn("/flaky", flaky)
    targets = tmp_path / "list.txt"
    targets.write_text(url + "\n", encoding="utf-8")
    out = tmp_path / "case"
    code, _stdout, stderr = invoke(
        str(targets),
        "-o",
        str(out),
        "--case",
        "OP-2",
        "--no-timestamp",
        "--retries",
        "4",
        "--retry-backoff",
        "0.2",
        "--concurrency",
        "1",
    )
    assert code == 0, stderr
    assert flaky.calls == 4
    (entry,) = index_of(out)["targets"]
    assert entry["status"] == "complete" and entry["http_status"] == 200
    assert entry["attempts"] >= 2  # at least the 503 was retried by evicap
    # every attempt left a sealed bundle (a failed one records the failure): kept and listed, never deleted
    assert len(entry["superseded"]) == entry["attempts"] - 1
    listed = {entry["bundle"], *(s["bundle"] for s in entry["superseded"])}
    assert {p.name for p in bundles(out)} == listed
    assert not failures(verify_index(out, trusted_keys=[public_key(config)], tsa_cas=[]))


def start_batch(targets: Path, out: Path, config: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(config.parent)}
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("evicap")),
            "batch",
            str(targets),
            "-o",
            str(out),
            "--case",
            "OP-3",
            "--no-timestamp",
            "--concurrency",
            "2",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_for_bundles(out: Path, count: int, proc: subprocess.Popen[bytes], limit: float = 90) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if out.exists() and len(bundles(out)) >= count:
            return
        if proc.poll() is not None:
            raise AssertionError(f"batch ended early: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.1)
    raise AssertionError("no progress")


@pytest.fixture
def slow_site(http_server: LocalServer, tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    urls = [page(http_server, f"/p{n}", delay=0.4) for n in range(1, 7)]
    targets = tmp_path / "targets.txt"
    targets.write_text("\n".join(urls) + "\n", encoding="utf-8")
    yield targets, urls


def test_kill_9_then_resume_loses_none_and_captures_none_twice(
    http_server: LocalServer, slow_site: tuple[Path, list[str]], config: Path, tmp_path: Path
) -> None:
    targets, urls = slow_site
    out = tmp_path / "case"
    proc = start_batch(targets, out, config)
    try:
        wait_for_bundles(out, 2, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.5)  # let the orphaned driver and browser notice and go
    done_at_kill = {json.loads((b / "manifest.json").read_text())["case"]["item_id"] for b in bundles(out)}
    requests_at_kill = {u: len(http_server.requests_for("/" + u.rsplit("/", 1)[1])) for u in urls}
    assert 2 <= len(done_at_kill) < len(urls)

    code, _stdout, stderr = invoke(
        str(targets), "-o", str(out), "--case", "OP-3", "--no-timestamp", "--resume", "--concurrency", "2"
    )
    assert code == 0, stderr
    index = index_of(out)
    assert index["summary"]["complete"] == len(urls) and index["state"] == "finished"
    items = [json.loads((b / "manifest.json").read_text())["case"]["item_id"] for b in bundles(out)]
    assert sorted(items) == sorted(e["item"] for e in index["targets"])  # exactly one bundle per target
    assert not staging_left(out)
    for url in urls:  # targets complete before the kill were not fetched again
        item = next(e["item"] for e in index["targets"] if e["url"] == url)
        if item in done_at_kill:
            assert len(http_server.requests_for("/" + url.rsplit("/", 1)[1])) == requests_at_kill[url]
    assert not failures(verify_index(out, trusted_keys=[public_key(config)], tsa_cas=[]))


def test_ctrl_c_stops_cleanly_and_resume_finishes(
    slow_site: tuple[Path, list[str]], config: Path, tmp_path: Path
) -> None:
    targets, urls = slow_site
    out = tmp_path / "case"
    proc = start_batch(targets, out, config)
    wait_for_bundles(out, 1, proc)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole foreground process group
    _stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr.decode()
    assert b"--resume" in stderr
    index = index_of(out)
    assert index["state"] == "interrupted"
    assert not staging_left(out)
    listed = {e["bundle"] for e in index["targets"] if e["bundle"]}
    assert {b.name for b in bundles(out)} == listed  # every finished capture is in the index, nothing else
    assert all(e["status"] in ("complete", "pending") for e in index["targets"]), index["targets"]
    assert 1 <= index["summary"]["complete"] < len(urls)
    checks = verify_index(out, trusted_keys=[public_key(config)], tsa_cas=[])
    assert any(c.name == "index-signature" and "resume" in c.reason for c in failures(checks))

    code, _stdout, err = invoke(str(targets), "-o", str(out), "--case", "OP-3", "--no-timestamp", "--resume")
    assert code == 0, err
    assert index_of(out)["summary"]["complete"] == len(urls)
    assert len(bundles(out)) == len(urls)


def test_shared_browser_is_started_again_after_it_dies(browser_info: BrowserInfo) -> None:
    async def go() -> tuple[bool, int]:
        shared = SharedBrowser(browser_info)
        try:
            first = await shared.get()
            assert await shared.get() is first  # one browser for every capture while it lives
            await first.close()  # as if it crashed: disconnected
            second = await shared.get()
            return second is not first and second.is_connected(), shared.restarts
        finally:
            await shared.close()

    assert asyncio.run(go()) == (True, 1)


def test_target_cut_by_its_deadline_is_sealed_partial_not_thrown_away(
    http_server: LocalServer, config: Path, tmp_path: Path
) -> None:
    """Batch used to delete a timed-out target's bundle although the page had loaded: evidence thrown away."""
    video = bytes(range(256)) * 4096

    def stalled_video(handler: BaseHTTPRequestHandler) -> None:
        wanted = handler.headers.get("Range")
        if not wanted:
            time.sleep(120)  # the whole-file re-fetch never gets an answer
            return
        start = int(wanted.split("=")[1].split("-")[0] or 0)
        piece = video[start : start + 65536]
        handler.send_response(206)
        handler.send_header("Content-Type", "video/mp4")
        handler.send_header("Content-Range", f"bytes {start}-{start + len(piece) - 1}/{len(video)}")
        handler.send_header("Content-Length", str(len(piece)))
        handler.end_headers()
        handler.wfile.write(piece)

    http_server.route_fn("/stalled.mp4", stalled_video)
    stalled = http_server.route("/stalled", "<h1>stalled video</h1><video src=/stalled.mp4 preload=auto></video>")
    fine = page(http_server, "/fine")
    targets = tmp_path / "targets.txt"
    targets.write_text(f"{stalled}\n{fine}\n", encoding="utf-8")
    out = tmp_path / "case"
    out.mkdir()
    leftover = out / ".staging-T0009_earlier_run"  # a capture an earlier run left half-written
    leftover.mkdir()
    (leftover / "capture.warc.gz").write_bytes(b"half a WARC")
    started = time.monotonic()
    code, _stdout, stderr = invoke(
        str(targets), "-o", str(out), "--case", "OP-T", "--no-timestamp", "--timeout", "10", "--retries", "0"
    )
    assert time.monotonic() - started < 2 * (10 + 20) + 60  # two captures, each within --timeout + margin
    assert code == 1, stderr
    entries = {e["url"]: e for e in index_of(out)["targets"]}
    assert entries[fine]["status"] == "complete"
    cut = entries[stalled]
    assert cut["status"] == "partial" and "deadline" in cut["reason"] and cut["bundle"]
    manifest = json.loads((out / cut["bundle"] / "manifest.json").read_text("utf-8"))
    assert manifest["capture"]["status"] == "partial"
    assert (out / cut["bundle"] / "artifacts" / "screenshot-full.png").is_file()
    assert (out / ".unsealed" / leftover.name / "capture.warc.gz").read_bytes() == b"half a WARC"  # kept
    assert "set aside half-written" in stderr + _stdout
    assert not failures(verify_index(out, trusted_keys=[public_key(config)], tsa_cas=[]))
