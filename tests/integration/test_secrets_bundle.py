"""No secret of the investigator in any bundle (issue 12), through the real CLI.

A page behind HTTP authentication, captured with a saved session and through an authenticating proxy, echoes the
session's cookie and storage token, the URL's password and CSRF tokens into URLs, headers, request and response
bodies, the DOM and the console. Every file of the bundle is then searched, each WARC record decompressed and each
MHTML part decoded: not one occurrence. The same capture with --keep-secrets finds them (so the search can fail).
"""

from __future__ import annotations

import base64
import email
import email.policy
import gzip
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import quote

import pytest
from warcio.archiveiterator import ArchiveIterator

from tests.integration.capture_helpers import manifest_of, warcio_check
from tests.proxy import ForwardProxy
from tests.servers import LocalServer

EVICAP = str(Path(sys.executable).with_name("evicap"))
COOKIE = "sessCookie-7Hq2Lm9Xz4Rt"
STORAGE = "lsToken-Vb81Nc30Qw5E"
URL_PASSWORD = "urlPass-9KdfW2"
PROXY_PASSWORD = "proxyPass-4TtRw8"
DTSG = "AQHdtsg-52mMpLx0"
CSRF_META = "metaCsrf-Kq7Zs1Yd"
SECRETS = (COOKIE, STORAGE, URL_PASSWORD, PROXY_PASSWORD, DTSG, CSRF_META)

PAGE = """<!doctype html><html><head><title>account</title>
<meta name="csrf-token" content="%(csrf)s"></head><body>
<p id="who">signed in</p><p id="shown"></p><div id="hidden"></div>
<form><input type="hidden" name="fb_dtsg" value="%(dtsg)s"></form>
<!-- the server saw: %(echo)s -->
<script>
const token = localStorage.getItem('token') || 'none';
const cookie = document.cookie;
console.log('session cookie=' + cookie + ' token=' + token);
document.getElementById('shown').textContent = 'your token ' + token;
document.getElementById('hidden').setAttribute('data-t', cookie);
const csrf = document.querySelector('meta[name=csrf-token]').content;
fetch('/api?access_token=' + encodeURIComponent(token) + '&c=' + encodeURIComponent(cookie), {
  method: 'POST',
  headers: {'X-Api-Key': token, 'X-CSRF-Token': csrf, 'X-Echo': token,
            'Content-Type': 'application/x-www-form-urlencoded'},
  body: 'fb_dtsg=%(dtsg)s&note=' + encodeURIComponent(token)
}).then(r => r.text()).then(t => {
  document.getElementById('who').setAttribute('data-api', t); console.log('api said ' + t);
});
const img = new Image(); img.src = '/pixel.gif?t=' + token; document.body.appendChild(img);
</script></body></html>"""


def page_handler(handler: BaseHTTPRequestHandler) -> None:
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("Basic "):
        body = b"<h1>401</h1>"
        handler.send_response(401)
        handler.send_header("WWW-Authenticate", 'Basic realm="investigation"')
    else:
        password = base64.b64decode(auth[6:]).decode().partition(":")[2]
        body = (PAGE % {"csrf": CSRF_META, "dtsg": DTSG, "echo": f"password {password}"}).encode()
        handler.send_response(200)
        handler.send_header("Set-Cookie", f"echo={COOKIE}; Path=/")
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def api_handler(handler: BaseHTTPRequestHandler) -> None:
    length = int(handler.headers.get("Content-Length") or 0)
    posted = handler.rfile.read(length).decode() if length else ""
    echo = {"path": handler.path, "posted": posted, "api_key": handler.headers.get("X-Api-Key"),
            "cookie": handler.headers.get("Cookie")}
    body = json.dumps(echo).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("X-Auth-Token", STORAGE)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def forms(value: str) -> list[bytes]:
    return [value.encode(), quote(value, safe="").encode(), base64.b64encode(value.encode())]


def occurrences(bundle: Path) -> dict[str, list[str]]:
    """Secret -> the places it was found: every file raw, each WARC record decompressed, each MHTML part decoded."""
    found: dict[str, list[str]] = {}

    def search(where: str, data: bytes) -> None:
        for secret in SECRETS:
            if any(form in data for form in forms(secret)):
                found.setdefault(secret, []).append(where)

    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        rel = str(path.relative_to(bundle))
        raw = path.read_bytes()
        search(rel, raw)
        if path.name.endswith(".gz"):
            search(rel + " (gunzipped)", gzip.decompress(raw))
            with open(path, "rb") as stream:
                for record in ArchiveIterator(stream):
                    head = str(record.rec_headers).encode() + (str(record.http_headers).encode()
                                                               if record.http_headers else b"")
                    search(f"{rel} {record.rec_type} {record.rec_headers.get_header('WARC-Target-URI')}",
                           head + record.content_stream().read())
        if path.suffix == ".mhtml":
            message = email.message_from_bytes(raw, policy=email.policy.default)
            for part in message.walk():
                if not part.is_multipart():
                    search(f"{rel} part {part.get('Content-Location')}", part.get_payload(decode=True) or b"")
    return found


def capture(tmp_path: Path, server: LocalServer, proxy: ForwardProxy, *extra: str) -> tuple[Path, dict]:
    sessions = tmp_path / "sessions"
    state = {
        "cookies": [{"name": "sid", "value": COOKIE, "domain": "127.0.0.1", "path": "/", "expires": -1,
                     "httpOnly": False, "secure": False, "sameSite": "Lax"}],
        "origins": [{"origin": server.url("/").rstrip("/"), "localStorage": [{"name": "token", "value": STORAGE}]}],
    }
    source = tmp_path / "state.json"
    source.write_text(json.dumps(state))
    source.chmod(0o600)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "EVICAP_SESSIONS_DIR": str(sessions)}
    # Chromium sends loopback traffic around any proxy unless told not to: this makes the test's proxy see it.
    env["EVICAP_BROWSER_ARGS"] = (env.get("EVICAP_BROWSER_ARGS", "") + " --proxy-bypass-list=<-loopback>").strip()
    imported = subprocess.run([EVICAP, "session", "import", "acct", str(source)], env=env, capture_output=True,
                              text=True, timeout=60)
    assert imported.returncode == 0, imported.stderr
    host = server.url("/").split("://", 1)[1]
    proxy_url = proxy.url.replace("://", f"://bob:{PROXY_PASSWORD}@")
    out = tmp_path / "out"
    done = subprocess.run(
        [EVICAP, "capture", f"http://inv:{URL_PASSWORD}@{host}", "--session", "acct", "--proxy", proxy_url,
         "--output", str(out), "--no-timestamp", "--profile", "as-loaded", "--json", *extra],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert URL_PASSWORD not in done.stdout + done.stderr and PROXY_PASSWORD not in done.stdout + done.stderr
    bundle = next(p for p in out.iterdir() if p.is_dir())
    return bundle, manifest_of(bundle)


@pytest.fixture
def site(http_server: LocalServer) -> LocalServer:
    http_server.route_fn("/", page_handler)
    http_server.route_fn("/api", api_handler)
    http_server.route("/pixel.gif", body=b"GIF89a", content_type="image/gif")
    return http_server


def test_no_secret_of_the_investigator_in_any_file_of_the_bundle(site: LocalServer, tmp_path: Path) -> None:
    with ForwardProxy(username="bob", password=PROXY_PASSWORD) as proxy:
        bundle, manifest = capture(tmp_path, site, proxy)
        assert any(ok for _, _, ok in proxy.seen), "the authenticating proxy never got its credentials"
    # The page really ran with the session: the API call reached the server with the token.
    assert any("/api?access_token=" in r.path for r in site.requests)
    assert occurrences(bundle) == {}

    secrets = manifest["network"]["secrets"]
    assert secrets["kept"] is False and secrets["url_had_credentials"] is True and secrets["token_fields"] is True
    named = {r["secret"] for r in secrets["redactions"]}
    assert "cookie sid (127.0.0.1)" in named
    assert any(n.startswith("localStorage token") for n in named)
    assert "URL password" in named and "body token field fb_dtsg" in named
    places = {r["artifact"] for r in secrets["redactions"]}
    assert {"artifacts/capture.warc.gz", "artifacts/dom.html", "artifacts/page-facts.json"} <= places
    codes = {w["code"] for w in manifest["capture"]["warnings"]}
    assert {"url-credentials", "secret-visible"} <= codes
    assert manifest["environment"]["proxy"] == proxy.url  # scheme://host:port only
    assert manifest["target"]["requested_url"].startswith("http://127.0.0.1:")
    assert manifest["capture"]["status"] == "complete"
    # Scrubbed at write time: lengths and digests agree, so the bundle verifies and warcio reads it cleanly.
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    verified = subprocess.run([EVICAP, "verify", "--deep", str(bundle)], env=env, capture_output=True, text=True,
                              timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert warcio_check(bundle).returncode == 0


def test_keep_secrets_keeps_them_and_says_so(site: LocalServer, tmp_path: Path) -> None:
    with ForwardProxy(username="bob", password=PROXY_PASSWORD) as proxy:
        bundle, manifest = capture(tmp_path, site, proxy, "--keep-secrets")
    found = occurrences(bundle)
    assert COOKIE in found and STORAGE in found and DTSG in found  # the search finds what is there
    assert manifest["network"]["secrets"]["kept"] is True
    assert "secrets-kept" in {w["code"] for w in manifest["capture"]["warnings"]}
    assert PROXY_PASSWORD not in found  # the proxy's credentials are never the page's to keep


def test_a_capture_that_reached_only_the_proxys_407_page_is_failed(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.route("/", body="<p>target</p>")
    with ForwardProxy(username="bob", password="right") as proxy:
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        env["EVICAP_BROWSER_ARGS"] = (env.get("EVICAP_BROWSER_ARGS", "") + " --proxy-bypass-list=<-loopback>").strip()
        done = subprocess.run(
            [EVICAP, "capture", url, "--proxy", proxy.url.replace("://", "://bob:wrong@"), "--output",
             str(tmp_path / "out"), "--no-timestamp", "--profile", "as-loaded"],
            env=env, capture_output=True, text=True, timeout=300,
        )
    assert done.returncode == 1, done.stderr
    bundle = next(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    manifest = manifest_of(bundle)
    assert manifest["capture"]["status"] == "failed"
    assert "407" in manifest["capture"]["reason"] and "proxy" in manifest["capture"]["reason"]
    assert b"wrong" not in b"".join(p.read_bytes() for p in bundle.rglob("*") if p.is_file())
