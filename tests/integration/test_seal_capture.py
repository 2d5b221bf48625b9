"""A real capture through the real CLI, sealed by two local authorities: what the seal adds to a bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from evicap.seal.keys import generate_key
from tests.integration.capture_helpers import manifest_of
from tests.servers import LocalServer
from tests.tsa import LocalTSA, tsa  # noqa: F401

EVICAP = str(Path(sys.executable).with_name("evicap"))


def test_capture_with_tsa_all_records_clock_key_protection_tokens_and_head(
    tmp_path: Path, http_server: LocalServer, tsa: LocalTSA  # noqa: F811
) -> None:
    http_server.route("/post", body="<!doctype html><title>Post</title><p>the statement</p>")
    key = tmp_path / "key.pem"
    generate_key(key, None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVICAP_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    out = tmp_path / "out"
    done = subprocess.run(
        [EVICAP, "capture", http_server.url("/post"), "--output", str(out), "--key", str(key),
         "--tsa", tsa.url(), "--tsa", tsa.matrix_url("second"), "--tsa-ca", str(tsa.ca_pem), "--tsa-all"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "is UNENCRYPTED" in done.stderr
    [bundle] = [p for p in out.iterdir() if p.is_dir()]
    manifest = manifest_of(bundle)
    assert manifest["seal"]["key_protection"] == "unencrypted-file-mode-0600"
    clock = manifest["capture"]["clock"]
    assert clock["source"] in ("adjtimex", "unavailable") and clock["synchronized"] in (True, False, None)
    assert (bundle / "manifest.tsr").is_file() and (bundle / "manifest.2.tsr").is_file()
    head = json.loads((bundle / "custody.head").read_bytes())
    events = [json.loads(line) for line in (bundle / "custody.jsonl").read_bytes().splitlines()]
    assert head["seq"] == events[-1]["seq"] == len(events) - 1 == 4  # the head signs the last event
    assert events[-1]["action"] == "reported"  # the court report capture writes by default (issue 13)
    assert [e["details"]["token_file"] for e in events if e["action"] == "timestamped"] == [
        "manifest.tsr", "manifest.2.tsr"]
    verified = subprocess.run(
        [EVICAP, "verify", "--json", str(bundle), "--tsa-ca", str(tsa.ca_pem), "--trusted-key", f"{key}.pub"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    stamps = [c for c in report["checks"] if c["name"] == "timestamp"]
    assert [c["status"] for c in stamps] == ["pass", "pass"]
    assert all("NTP-synchronised" in c["reason"] or "sync unknown" in c["reason"] for c in stamps)
