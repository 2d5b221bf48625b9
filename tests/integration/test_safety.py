"""Safe for the investigator (issue 12), through the real CLI: a sandboxed renderer under an unprivileged account,
nothing of ours in any child's environment, no WebRTC UDP around the proxy, an ordinary desktop Chrome shown."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.capture_helpers import manifest_of, warc_records
from tests.proxy import ForwardProxy, Socks5Proxy
from tests.servers import LocalServer

EVICAP = str(Path(sys.executable).with_name("evicap"))
CANARY = "canary-4f1d9e7a0b"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# The page keeps loading for a few seconds so that its renderer can be looked at while the capture runs.
SLOW_PAGE = "<!doctype html><title>slow</title><p>hostile page</p><img src='/slow.png'>"


def _seccomp(pid: int) -> str | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Seccomp:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def watch_tree(proc: subprocess.Popen[str], timeout: float = 240) -> dict[int, dict[str, Any]]:
    """Every process below ``proc`` seen while it runs: uid, command line, environment, and for renderers the
    strongest seccomp mode seen and how long the process was watched (a renderer applies its filter only once it has
    initialised, so one seen only in its first instants may still show mode 0)."""
    seen: dict[int, dict[str, Any]] = {}
    root = psutil.Process(proc.pid)
    end = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < end:
        try:
            children = root.children(recursive=True)
        except psutil.Error:
            break
        now = time.monotonic()
        for child in children:
            try:
                facts = {
                    "uid": child.uids().effective,
                    "cmdline": " ".join(child.cmdline()).split(),
                    "environ": child.environ(),
                    "seccomp": _seccomp(child.pid),
                    "first_seen": now,
                    "last_seen": now,
                }
            except psutil.Error:
                continue
            known = seen.setdefault(child.pid, facts)
            known["last_seen"] = now
            if "--type=renderer" in facts["cmdline"]:
                known["cmdline"] = facts["cmdline"]
                if facts["seccomp"] is not None and (known["seccomp"] or "") < facts["seccomp"]:
                    known["seccomp"] = facts["seccomp"]
        time.sleep(0.1)
    return seen


def capture_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg"), EVICAP_TEST_CANARY=CANARY, EVICAP_INVESTIGATOR="J. Roe",
               MY_SERVICE_API_TOKEN=CANARY + "-token", HTTPS_PROXY="http://user:" + CANARY + "@127.0.0.1:9")
    return env


def slow_site(server: LocalServer) -> str:
    server.route("/slow.png", body=b"\x89PNG\r\n\x1a\n", content_type="image/png", delay=4.0)
    return server.route("/", body=SLOW_PAGE)


def test_renderer_is_sandboxed_and_no_child_process_inherits_our_environment(
    http_server: LocalServer, tmp_path: Path
) -> None:
    url = slow_site(http_server)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [EVICAP, "capture", url, "--output", str(out), "--no-timestamp", "--profile", "as-loaded"],
        env=capture_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    seen = watch_tree(proc)
    _stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr

    renderers = [f for f in seen.values() if "--type=renderer" in f["cmdline"]]
    assert renderers, "no renderer process seen during the capture"
    for facts in renderers:
        assert "--no-sandbox" not in facts["cmdline"]
        if facts["last_seen"] - facts["first_seen"] >= 1.0:  # watched past its start-up
            assert facts["seccomp"] == "2"  # seccomp-bpf filter: the sandbox really started
        if IS_ROOT:
            assert facts["uid"] != 0
    # The page's renderer lives for the seconds the slow image takes: it is watched long enough to be judged.
    assert any(f["seccomp"] == "2" for f in renderers)
    browsers = [f for f in seen.values() if any("chrom" in part for part in f["cmdline"][:1])]
    assert browsers and all("--no-sandbox" not in f["cmdline"] for f in browsers)
    for facts in seen.values():  # the driver (node), the wrapper, every browser process
        leaked = [k for k, v in facts["environ"].items() if k.startswith("EVICAP_") or CANARY in v]
        assert not leaked, f"{facts['cmdline'][:1]} inherited {leaked}"

    manifest = manifest_of(next(p for p in out.iterdir() if p.is_dir()))
    sandbox = manifest["environment"]["browser"]["sandbox"]
    assert sandbox["checked"]["verified"] is True and sandbox["disabled_by_user"] is False
    assert sandbox["mode"] == ("chromium, unprivileged account" if IS_ROOT else "chromium")
    assert not any(w["code"].startswith("sandbox") for w in manifest["capture"]["warnings"])
    # An ordinary desktop Chrome: no "Headless" in the UA or the client hints, navigator.webdriver false.
    presented = manifest["environment"]["presented"]
    assert "Headless" not in presented["user_agent"] and presented["webdriver"] is False
    assert manifest["environment"]["user_agent"] == presented["user_agent"]
    sent = [r.headers for r in http_server.requests]
    assert all("Headless" not in (h.get("User-Agent") or "") for h in sent)
    assert all("Headless" not in (h.get("Sec-CH-UA") or "") for h in sent)
    assert any('"Chromium"' in (h.get("Sec-CH-UA") or "") for h in sent)
    # The capturing machine's network identity: its addresses and the way the traffic left.
    network = manifest["environment"]["network"]
    assert {"interface": "lo", "address": "127.0.0.1", "family": "ipv4"} in network["local_addresses"]
    hop = network["first_hop"]
    assert hop["via"] == "direct" and hop["address"] == "127.0.0.1" and hop["interface"] == "lo"
    assert network["egress_check"] is None  # off by default: offline first


def _ordinary_user() -> pwd.struct_passwd | None:
    for name in ("evicap-browser", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


@pytest.mark.skipif(not IS_ROOT or shutil.which("setpriv") is None or _ordinary_user() is None,
                    reason="needs root to become an ordinary user for the test")
def test_as_an_ordinary_user_chromium_keeps_its_own_sandbox(http_server: LocalServer) -> None:
    user = _ordinary_user()
    assert user is not None
    # pytest's own temporary directories are root's (0700): the ordinary user works in one of its own.
    home = Path(tempfile.mkdtemp(prefix="evicap-ordinary-user-"))
    os.chown(home, user.pw_uid, user.pw_gid)
    try:
        _capture_as(user, home, http_server)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _capture_as(user: pwd.struct_passwd, home: Path, http_server: LocalServer) -> None:
    url = slow_site(http_server)
    env = capture_env(home)
    env["HOME"] = str(home)
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--",
         EVICAP, "capture", url, "--output", str(home / "out"), "--no-timestamp", "--profile", "as-loaded"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(home),
    )
    seen = watch_tree(proc)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    renderers = [f for f in seen.values() if "--type=renderer" in f["cmdline"]]
    assert renderers and all(f["uid"] == user.pw_uid and f["seccomp"] == "2" for f in renderers)
    assert all("--no-sandbox" not in f["cmdline"] for f in renderers)
    manifest = manifest_of(next(p for p in (home / "out").iterdir() if p.is_dir()))
    sandbox = manifest["environment"]["browser"]["sandbox"]
    assert sandbox["mode"] == "chromium" and sandbox["dropped_from_root"] is False
    assert sandbox["checked"]["verified"] is True


class StunListener:
    """UDP on 127.0.0.2 (a loopback address the target does not use): counts every datagram it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.2", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.datagrams = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.datagrams += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def webrtc_page(port: int) -> str:
    return f"""<!doctype html><title>webrtc</title><p id=c>gathering</p><script>
const pc = new RTCPeerConnection({{iceServers: [{{urls: 'stun:127.0.0.2:{port}'}}]}});
pc.createDataChannel('leak');
pc.onicecandidate = e => {{ console.log('candidate ' + (e.candidate ? e.candidate.candidate : 'done')); }};
pc.createOffer().then(o => pc.setLocalDescription(o));
setTimeout(() => {{ document.getElementById('c').textContent = 'done'; }}, 2500);
</script>"""


def test_webrtc_sends_no_udp_around_the_proxy(http_server: LocalServer, tmp_path: Path, run: Any) -> None:
    stun = StunListener()
    try:
        url = http_server.route("/", body=webrtc_page(stun.port))
        # Control: a browser without evicap's flags does send STUN to the listener, so silence below means something.
        from playwright.async_api import async_playwright

        async def bare() -> None:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=shutil.which("chromium-headless-shell")
                                                  or "/usr/lib/chromium/chromium-headless-shell",
                                                  args=["--no-sandbox"])
                page = await browser.new_page()
                await page.goto(url)
                await page.wait_for_timeout(3000)
                await browser.close()

        run(bare())
        assert stun.datagrams > 0, "control browser sent no STUN: the listener would prove nothing"
        before = stun.datagrams
        with ForwardProxy() as proxy:
            done = subprocess.run(
                [EVICAP, "capture", url, "--output", str(tmp_path / "out"), "--no-timestamp", "--proxy", proxy.url,
                 "--profile", "as-loaded"],
                env=capture_env(tmp_path), capture_output=True, text=True, timeout=240,
            )
        assert done.returncode == 0, done.stderr
        time.sleep(1.0)
        assert stun.datagrams == before, f"{stun.datagrams - before} UDP datagram(s) went around the proxy"
        manifest = manifest_of(next(p for p in (tmp_path / "out").iterdir() if p.is_dir()))
        args = manifest["environment"]["browser"]["args"]
        assert "--force-webrtc-ip-handling-policy=disable_non_proxied_udp" in args
        assert "--dns-prefetch-disable" in args
        # What the running browser really turned off, read from its command line (one switch, all lists joined).
        checked = manifest["environment"]["browser"]["sandbox"]["checked"]
        assert checked["verified"] is True
        assert {"NetworkPrediction", "Prerender2", "NoStatePrefetch"} <= set(checked["features_off"])
    finally:
        stun.close()


class _Internal(threading.Thread):
    """An 'intranet' service on 127.0.0.2 that counts the requests it gets."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        owner = self
        self.hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append(self.path)
                body = b"internal secret document"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.port = self.server.server_port

    def run(self) -> None:
        self.server.serve_forever()


def _egress_config(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "xdg" / "evicap" / "config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("egress_test_private: [127.0.0.2]\n")
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def test_egress_policy_blocks_the_internal_network_and_records_it(http_server: LocalServer, tmp_path: Path) -> None:
    internal = _Internal()
    internal.start()
    try:
        secret_url = f"http://127.0.0.2:{internal.port}/admin/keys"
        page = (f"<p>hostile</p><img src='{secret_url}'><script>fetch('{secret_url}?xhr').catch(() => 0)</script>"
                f"<iframe src='http://127.0.0.2:{internal.port}/frame'></iframe>")
        url = http_server.route("/", body=page)
        env = _egress_config(tmp_path)
        blocked = subprocess.run(
            [EVICAP, "capture", url, "--output", str(tmp_path / "out1"), "--no-timestamp", "--profile", "as-loaded"],
            env=env, capture_output=True, text=True, timeout=240,
        )
        assert blocked.returncode == 0, blocked.stderr
        assert internal.hits == [], f"the internal service was reached: {internal.hits}"
        manifest = manifest_of(next(p for p in (tmp_path / "out1").iterdir() if p.is_dir()))
        refused = manifest["capture"]["egress_blocked"]
        assert {r["url"] for r in refused} >= {secret_url, secret_url + "?xhr"}
        assert all(r["address"] == "127.0.0.2" and r["rule"] == "test-private" for r in refused)
        assert any(w["code"] == "egress-blocked" for w in manifest["capture"]["warnings"])

        # --allow-network lets it in, and says so.
        allowed = subprocess.run(
            [EVICAP, "capture", url, "--output", str(tmp_path / "out2"), "--no-timestamp", "--profile", "as-loaded",
             "--allow-network", "127.0.0.2/32"],
            env=env, capture_output=True, text=True, timeout=240,
        )
        assert allowed.returncode == 0, allowed.stderr
        assert "/admin/keys" in internal.hits
        manifest = manifest_of(next(p for p in (tmp_path / "out2").iterdir() if p.is_dir()))
        assert manifest["capture"]["egress_blocked"] == []
        assert manifest["environment"]["options"]["allow_networks"] == ["127.0.0.2/32"]
    finally:
        internal.server.shutdown()
        internal.server.server_close()


def test_speculative_prefetches_that_pass_the_gate_are_named_when_the_policy_refuses_them(
    http_server: LocalServer, tmp_path: Path
) -> None:
    """Chromium makes the prefetches a page lists in its speculation rules outside DevTools' Fetch interception,
    so the gate cannot hold them (docs/safety.md). A <link rel=prefetch> does pass through it and is refused."""
    internal = _Internal()
    internal.start()
    try:
        base = f"http://127.0.0.2:{internal.port}"
        rules = json.dumps({"prefetch": [{"source": "list", "urls": [f"{base}/prefetched"]}],
                            "prerender": [{"source": "list", "urls": [f"{base}/prerendered"]}]})
        page = (f"<p>page</p><script type='speculationrules'>{rules}</script>"
                f"<link rel='prefetch' href='{base}/link-prefetched'>")
        url = http_server.route("/", body=page)
        done = subprocess.run(
            [EVICAP, "capture", url, "--output", str(tmp_path / "out"), "--no-timestamp", "--profile", "as-loaded"],
            env=_egress_config(tmp_path), capture_output=True, text=True, timeout=240,
        )
        assert done.returncode == 0, done.stderr
        assert "/link-prefetched" not in internal.hits
        speculative = [path for path in internal.hits if path in ("/prefetched", "/prerendered")]
        assert speculative, "Chromium no longer prefetches on speculation rules: update docs/safety.md"
        manifest = manifest_of(next(p for p in (tmp_path / "out").iterdir() if p.is_dir()))
        warnings = manifest["capture"]["warnings"]
        bypassed = {w["url"] for w in warnings if w["code"] == "egress-bypassed"}
        assert {base + path for path in speculative} <= bypassed
        assert base + "/link-prefetched" not in bypassed
        assert base + "/link-prefetched" in {r["url"] for r in manifest["capture"]["egress_blocked"]}
        assert not any(w["code"] == "egress-rebinding" for w in warnings)
    finally:
        internal.server.shutdown()
        internal.server.server_close()


def test_a_bad_allow_network_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([EVICAP, "capture", "http://127.0.0.1:9/", "--allow-network", "10.0.0.0/33", "--output",
                           str(tmp_path / "o")], env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "x")},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not an IP network" in done.stderr and "Traceback" not in done.stderr


def test_doctor_reports_the_sandbox_it_found() -> None:
    done = subprocess.run([EVICAP, "doctor"], capture_output=True, text=True, timeout=180)
    line = next((ln for ln in done.stderr.splitlines() if " sandbox " in f" {ln} "), "")
    assert line.startswith("ok") and "renderer uid" in line and "seccomp-bpf" in line, done.stderr
    if IS_ROOT:
        assert "evicap itself is root" in line


def test_no_sandbox_only_when_asked_and_then_warned_and_recorded(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.route("/", body="<p>page</p>")
    done = subprocess.run(
        [EVICAP, "capture", url, "--no-sandbox", "--output", str(tmp_path / "out"), "--no-timestamp",
         "--profile", "as-loaded"],
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr
    manifest = manifest_of(next(p for p in (tmp_path / "out").iterdir() if p.is_dir()))
    sandbox = manifest["environment"]["browser"]["sandbox"]
    assert sandbox["mode"] == "disabled" and sandbox["disabled_by_user"] is True
    assert "--no-sandbox" in manifest["environment"]["browser"]["args"]
    assert "sandbox-off" in {w["code"] for w in manifest["capture"]["warnings"]}
    assert manifest["environment"]["options"]["no_sandbox"] is True


def test_egress_check_url_is_asked_through_the_proxy_and_kept_with_its_answer(
    http_server: LocalServer, http_server2: LocalServer, tmp_path: Path
) -> None:
    url = http_server.route("/", body="<p>page</p>")
    check = http_server2.route("/ip", body='{"ip": "198.51.100.23"}', content_type="application/json")
    config = tmp_path / "xdg" / "evicap" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(f"egress_check_url: {check}\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env["EVICAP_BROWSER_ARGS"] = (env.get("EVICAP_BROWSER_ARGS", "") + " --proxy-bypass-list=<-loopback>").strip()
    with ForwardProxy() as proxy:
        done = subprocess.run(
            [EVICAP, "capture", url, "--proxy", proxy.url, "--output", str(tmp_path / "out"), "--no-timestamp",
             "--profile", "as-loaded"], env=env, capture_output=True, text=True, timeout=240,
        )
        # Playwright's request client tunnels (CONNECT localhost:PORT) even for http://.
        asked = [target for _, target, _ in proxy.seen if target.endswith(f"localhost:{http_server2.port}")
                 or target.endswith("/ip")]
    assert done.returncode == 0, done.stderr
    assert asked, "the egress check did not go through the proxy"
    bundle = next(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    network = manifest_of(bundle)["environment"]["network"]
    assert network["egress_check"]["public_address"] == "198.51.100.23"
    assert network["egress_check"]["status"] == 200
    assert network["first_hop"]["via"] == "proxy" and network["first_hop"]["port"] == int(proxy.url.rsplit(":", 1)[1])
    records = [r for r in warc_records(bundle) if r["uri"] == network["egress_check"]["record"]]
    assert records and b"198.51.100.23" in records[0]["payload"]


def test_with_a_socks5_proxy_names_are_resolved_by_the_proxy(http_server2: LocalServer, tmp_path: Path) -> None:
    url = http_server2.route("/", body="<p>through socks</p>")  # http://localhost:PORT/
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env["EVICAP_BROWSER_ARGS"] = (env.get("EVICAP_BROWSER_ARGS", "") + " --proxy-bypass-list=<-loopback>").strip()
    with Socks5Proxy() as proxy:
        done = subprocess.run(
            [EVICAP, "capture", url, "--proxy", proxy.url, "--output", str(tmp_path / "out"), "--no-timestamp",
             "--profile", "as-loaded"], env=env, capture_output=True, text=True, timeout=240,
        )
        seen = list(proxy.seen)
    assert done.returncode == 0, done.stderr
    assert ("domain", "localhost", http_server2.port) in seen
    assert not [s for s in seen if s[0] != "domain"], f"the browser resolved names itself: {seen}"
    manifest = manifest_of(next(p for p in (tmp_path / "out").iterdir() if p.is_dir()))
    assert manifest["environment"]["proxy"] == proxy.url
    assert manifest["environment"]["network"]["first_hop"]["via"] == "proxy"
    assert manifest["capture"]["status"] == "complete"
