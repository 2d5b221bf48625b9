"""`evicap watch` end to end: a local channel whose posts change between two rounds (one deleted, one new, one
edited), captured by a real Chromium through the CLI, and the changes it must report; SIGTERM mid-watch, then a
restart that keeps the schedule and captures nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from click.testing import CliRunner

from evicap.cli.main import cli
from evicap.watch.history import target_history
from evicap.watch.state import parse_utc
from tests.servers import LocalServer
from tests.test_detect import scene
from tests.tsa import isolated_config  # noqa: F401

pytestmark = pytest.mark.timeout(600)

BEFORE = [("1", "Hello from the channel"), ("2", "This post will be deleted"), ("3", "Original wording")]
AFTER = [("1", "Hello from the channel"), ("3", "Edited wording"), ("4", "A brand new post")]


def _page(posts: list[tuple[str, str]], image: bool = False) -> bytes:
    ld = [{"@context": "https://schema.org", "@type": "SocialMediaPosting", "identifier": pid, "articleBody": text,
           "url": f"/post/{pid}"} for pid, text in posts]  # fmt: skip
    html = "<!doctype html><title>channel</title>"
    html += f"<script type='application/ld+json'>{json.dumps(ld)}</script><h1>Channel</h1>"
    html += "".join(f"<article id=p{pid}><p>{text}</p></article>" for pid, text in posts)
    if image:
        html += "<img src=/media/flag.png>"
    return html.encode()


def _rounds_done(case: Path) -> int:
    try:
        state = json.loads((case / "watch-state.json").read_text())
    except (OSError, ValueError):
        return 0
    return max((t["rounds"] for t in state["targets"].values()), default=0)


def channel(server: LocalServer, case: Path) -> str:
    """The channel shows BEFORE until the watch has recorded its first capture, AFTER from then on."""

    def serve(handler: BaseHTTPRequestHandler) -> None:
        body = _page(AFTER, image=True) if _rounds_done(case) >= 1 else _page(BEFORE)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return server.route_fn("/channel", serve)


def bundles(case: Path) -> list[Path]:
    return sorted(p for p in case.iterdir() if (p / "manifest.json").is_file() and not p.name.startswith("."))


def test_posts_deleted_added_and_edited_between_two_rounds_are_reported(
    http_server: LocalServer, isolated_config: Path, tmp_path: Path  # noqa: F811
) -> None:
    case = tmp_path / "case"
    targets = tmp_path / "targets.txt"
    targets.write_text(channel(http_server, case) + "\n")
    flag = scene(tmp_path / "flag.png", seed=11).read_bytes()  # posted with the new post, and on a hash list
    http_server.route("/media/flag.png", flag, content_type="image/png")
    hash_list = tmp_path / "list.csv"
    hash_list.write_text(f"signal_type,signal_value,label\nmd5,{hashlib.md5(flag).hexdigest()},entity-Z flag\n")
    result = CliRunner().invoke(
        cli, ["watch", str(targets), "--every", "2s", "--rounds", "2", "-o", str(case), "--no-timestamp", "--json",
              "--match-list", str(hash_list)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    logged = [json.loads(line) for line in (case / "watch-changes.jsonl").read_text().splitlines()]
    assert printed == logged
    kinds = {(c["change"], c.get("post_id")) for c in logged}
    assert {("deleted", "2"), ("new", "4"), ("edited", "3")} <= kinds
    assert not {k for k in kinds if k[1] == "1"}  # the unchanged post is not reported
    (matched,) = [c for c in logged if c["change"] == "hash-match"]
    assert matched["label"] == "entity-Z flag" and matched["url"].endswith("/media/flag.png")
    assert any(c["change"] == "media-new" and c["url"].endswith("/media/flag.png") for c in logged)
    edited = next(c for c in logged if c["change"] == "edited")
    assert edited["before"] == "Original wording" and edited["after"] == "Edited wording"
    first, second = bundles(case)
    for change in logged:
        assert change["previous_bundle"] == str(first) and change["bundle"] == str(second)
    assert "CHANGE" in result.stderr and "deleted 2" in result.stderr
    (history,) = target_history(case)  # what a case report shows for the target
    assert [c["bundle"] for c in history.captures] == [str(first), str(second)] and history.rounds == 2
    assert history.changes == logged
    started = [json.loads((b / "manifest.json").read_text())["capture"]["started_at"] for b in (first, second)]
    assert (parse_utc(started[1]) - parse_utc(started[0])).total_seconds() >= 2  # the interval was kept


def _start(targets: Path, case: Path, config: Path, rounds: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(config.parent)}
    command = [str(Path(sys.executable).with_name("evicap")), "watch", str(targets), "--every", "10s",
               "--rounds", str(rounds), "-o", str(case), "--no-timestamp"]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def test_sigterm_stops_cleanly_and_a_restart_resumes_the_schedule(
    http_server: LocalServer, isolated_config: Path, tmp_path: Path  # noqa: F811
) -> None:
    case = tmp_path / "case"
    targets = tmp_path / "targets.txt"
    targets.write_text(channel(http_server, case) + "\n")
    proc = _start(targets, case, isolated_config, rounds=3)
    try:
        deadline = time.monotonic() + 180
        while _rounds_done(case) < 1:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "no first round"
            time.sleep(0.1)
        # A second watch of the same case directory is refused while the first runs.
        second = subprocess.run(
            [str(Path(sys.executable).with_name("evicap")), "watch", str(targets), "--every", "10s", "-o", str(case),
             "--no-timestamp"],
            env={**os.environ, "XDG_CONFIG_HOME": str(isolated_config.parent)}, capture_output=True, timeout=120,
        )  # fmt: skip
        assert second.returncode == 2 and b"running" in second.stderr
        os.kill(proc.pid, signal.SIGTERM)  # to evicap alone, as systemd's KillMode=mixed does
        _out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err.decode()
    assert b"resume" in err
    state = json.loads((case / "watch-state.json").read_text())
    (entry,) = state["targets"].values()
    done = entry["rounds"]
    assert 1 <= done < 3 and len(bundles(case)) == done
    due = parse_utc(entry["next_due_at"])

    proc = _start(targets, case, isolated_config, rounds=3)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    made = bundles(case)
    assert len(made) == 3  # three rounds in all: none repeated, none lost
    after_restart = json.loads((made[done] / "manifest.json").read_text())["capture"]["started_at"]
    assert parse_utc(after_restart) >= due  # the restart waited for the saved schedule
    kinds = {(c["change"], c.get("post_id")) for c in map(json.loads, (case / "watch-changes.jsonl").open())}
    assert {("deleted", "2"), ("new", "4"), ("edited", "3")} <= kinds
