"""End-to-end capture: real Chromium, real local servers, bundles read back with warcio and sha256sum."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evicap.capture.options import CaptureOptions
from evicap.cli.main import cli
from evicap.sessions import save_session
from tests.integration.capture_helpers import (
    capture_sealed,
    make_sealing,
    manifest_of,
    warc_records,
    warc_text,
    warcio_check,
)
from tests.servers import free_port

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cf"
    "c0f01f0005000201d0b0a9a80000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def sealing(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_sealing(tmp_path_factory.mktemp("keys"))


def capture(run: Any, browser: Any, browser_info: Any, sealing: Any, url: str, out: Path, **opts: Any) -> Any:
    options = CaptureOptions(**{"timeout": 20.0, "case": "CASE-1", "item": "ITEM-1", **opts})
    return run(capture_sealed(browser, url, options, out, browser_info=browser_info, sealing=sealing))


def test_https_page_becomes_a_complete_verifiable_bundle(
    run: Any, browser: Any, browser_info: Any, sealing: Any, https_server: Any, tmp_output: Path
) -> None:
    https_server.route("/style.css", "body { background: #eef; }", content_type="text/css", gzip=True)
    https_server.route("/app.js", "document.title = 'Ready';", content_type="text/javascript", chunked=True)
    https_server.route("/pic.png", PNG_1PX, content_type="image/png")
    url = https_server.route(
        "/post/1",
        "<html><head><title>t</title><link rel=stylesheet href=/style.css><meta property='og:title' content='OG'>"
        "</head><body><h1>Post one</h1><img src=/pic.png><script src=/app.js></script></body></html>",
        gzip=True,
    )
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    bundle = Path(result.bundle)
    assert bundle.parent == tmp_output and bundle.name.startswith("ITEM-1_127.0.0.1_")
    manifest = manifest_of(bundle)
    assert manifest["target"]["http_status"] == 200
    assert manifest["target"]["server_ip"] == "127.0.0.1"
    assert manifest["case"]["case_id"] == "CASE-1"
    roles = {a["role"] for a in manifest["artifacts"]}
    assert {"warc", "screenshot", "screenshot-viewport", "dom", "mhtml", "pdf", "page-facts", "certificates"} <= roles
    # Stock tools agree with the manifest.
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert warcio_check(bundle).returncode == 0
    records = warc_records(bundle)
    responses = {r["uri"]: r for r in records if r["type"] == "response"}
    page = responses[url]
    assert page["headers"].get_header("WARC-IP-Address") == "127.0.0.1"
    assert b"Post one" in page["payload"]
    assert page["http"].get_header("X-Orig-Content-Encoding") == "gzip"
    assert responses[https_server.url("/pic.png")]["payload"] == PNG_1PX
    assert b"document.title" in responses[https_server.url("/app.js")]["payload"]
    # Every attachment is also inside the WARC, so the WARC alone is complete.
    uris = {r["uri"] for r in records}
    for artifact in manifest["artifacts"]:
        if artifact["role"] != "warc":
            assert artifact["warc_record"] in uris
    assert (bundle / "manifest.sig").stat().st_size == 64


def test_every_redirect_hop_is_recorded(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    final = http_server.route("/final", "<p>landed</p>")
    http_server.redirect("/hop3", final, status=307)
    http_server.redirect("/hop2", http_server.url("/hop3"), status=302)
    start = http_server.redirect("/hop1", http_server.url("/hop2"), status=301)
    result = capture(run, browser, browser_info, sealing, start, tmp_output)
    assert result.status == "complete", result.error
    target = manifest_of(result.bundle)["target"]
    assert [h["status"] for h in target["redirects"]] == [301, 302, 307]
    assert target["final_url"] == final
    statuses = {r["uri"]: r["status"] for r in warc_records(result.bundle) if r["type"] == "response"}
    assert statuses[start] == 301 and statuses[http_server.url("/hop2")] == 302 and statuses[final] == 200


def test_pages_that_move_themselves_on_are_hops_too(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    """302, then a meta refresh, then a script: the manifest names the page the screenshot shows, and how it got
    there, instead of claiming the first page answered."""
    final = http_server.route("/landed", "<h1>where it landed</h1>")
    scripted = http_server.route("/scripted", f"<p>moving</p><script>location.replace('{final}')</script>")
    refresh = http_server.route("/refresh", f'<meta http-equiv="refresh" content="0; url={scripted}"><p>wait</p>')
    start = http_server.redirect("/start", refresh, status=302)
    result = capture(run, browser, browser_info, sealing, start, tmp_output)
    assert result.status == "complete", result.error
    target = manifest_of(result.bundle)["target"]
    assert target["requested_url"] == start and target["final_url"] == final
    hops = [(h["url"], h["status"], h["location"], h["kind"], h["reason"]) for h in target["redirects"]]
    assert hops == [
        (start, 302, refresh, "http", None),
        (refresh, 200, scripted, "client", "metaTagRefresh"),
        (scripted, 200, final, "client", "scriptInitiated"),
    ]
    assert "where it landed" in (Path(result.bundle) / "artifacts" / "dom.html").read_text()
    responses = {r["uri"] for r in warc_records(result.bundle) if r["type"] == "response"}
    assert {start, refresh, scripted, final} <= responses


def test_image_too_big_for_the_browsers_buffer_is_marked_truncated_then_fetched_whole(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    """Chromium keeps at most 64 MiB of a body for DevTools and then answers getResponseBody with nothing: the
    page's exchange is recorded as truncated (never as a complete empty body), and the image is loaded again,
    whole and streamed, as a record of its own."""
    size = 70 * 1024 * 1024
    body = bytes(range(256)) * (size // 256)
    image = http_server.route("/huge.png", body, content_type="image/png")
    url = http_server.route("/gallery", f"<h1>gallery</h1><img src='{image}' width=10 height=10>")
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    warning = next(w for w in manifest_of(result.bundle)["capture"]["warnings"] if w.get("url") == image)
    assert warning["code"] == "exchange-truncated" and f"0 of the {size} bytes" in warning["message"]
    records = [r for r in warc_records(result.bundle) if r["type"] == "response" and r["uri"] == image]
    assert [r["headers"].get_header("WARC-Truncated") for r in records] == ["length", None]
    assert records[0]["payload"] == b"" and records[1]["payload"] == body


@pytest.mark.parametrize("status", [404, 500])
def test_error_pages_are_captured_with_their_status(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path, status: int
) -> None:
    url = http_server.route("/gone", f"<h1>error page {status}</h1>", status=status)
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.bundle is not None
    manifest = manifest_of(result.bundle)
    assert manifest["target"]["http_status"] == status
    assert f"error page {status}".encode() in (Path(result.bundle) / "artifacts" / "dom.html").read_bytes()


def test_connection_refused_is_a_recorded_failure(
    run: Any, browser: Any, browser_info: Any, sealing: Any, tmp_output: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "failed"
    assert "connection refused" in result.error
    manifest = manifest_of(result.bundle)
    assert manifest["capture"]["status"] == "failed"
    assert manifest["target"]["error"] == "net::ERR_CONNECTION_REFUSED"


def test_dns_failure_is_a_recorded_failure(
    run: Any, browser: Any, browser_info: Any, sealing: Any, tmp_output: Path
) -> None:
    result = capture(run, browser, browser_info, sealing, "http://no-such-host.invalid/", tmp_output, timeout=15.0)
    assert result.status == "failed"
    assert "DNS" in result.error or "NAME_NOT_RESOLVED" in result.error


def test_untrusted_certificate_is_refused_unless_told(
    run: Any, browser: Any, browser_info: Any, sealing: Any, untrusted_https_server: Any, tmp_output: Path
) -> None:
    url = untrusted_https_server.route("/", "<h1>self-made certificate</h1>")
    refused = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert refused.status == "failed"
    assert "TLS" in refused.error and "--ignore-tls-errors" in refused.error
    taken = capture(run, browser, browser_info, sealing, url, tmp_output, ignore_tls_errors=True, item="ITEM-2")
    assert taken.status == "complete", taken.error
    manifest = manifest_of(taken.bundle)
    assert manifest["target"]["tls_error"].startswith("net::ERR_CERT")
    assert any(w["code"] == "tls-error-ignored" for w in manifest["capture"]["warnings"])
    ignored = manifest["capture"]["tls_errors_ignored"]
    assert ignored[0]["url"] == url and ignored[0]["error"] == manifest["target"]["tls_error"]
    assert b"self-made certificate" in warc_text(taken.bundle)  # the page itself was recorded


def test_page_that_never_goes_quiet_ends_within_the_timeout(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    def long_poll(handler: Any) -> None:
        time.sleep(30)  # never answers within the capture

    http_server.route_fn("/poll", long_poll)
    url = http_server.route(
        "/live",
        "<h1>live feed</h1><script>setInterval(() => fetch('/poll?' + Math.random()).catch(() => {}), 300)</script>",
    )
    started = time.monotonic()
    result = capture(run, browser, browser_info, sealing, url, tmp_output, timeout=10.0)
    elapsed = time.monotonic() - started
    assert elapsed < 10.0 + 20, f"took {elapsed:.1f} s"  # the limit, plus attachments and sealing
    assert result.status == "complete", result.error
    manifest = manifest_of(result.bundle)
    assert any(w["code"] == "network-busy" for w in manifest["capture"]["warnings"])
    assert b"live feed" in (Path(result.bundle) / "artifacts" / "dom.html").read_bytes()


def test_request_started_just_after_load_is_in_the_warc_and_the_screenshot(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    """The quiet wait after load ends once nothing is in flight and nothing started for a short while: a page that,
    from its load handler, waits a moment, fetches data (slow to answer) and then shows a (slow) image it names
    has both in the WARC, the text in the DOM and the image in the screenshot."""
    import io

    from PIL import Image

    red = io.BytesIO()
    Image.new("RGB", (300, 200), (220, 20, 20)).save(red, "PNG")
    http_server.route("/late.png", red.getvalue(), content_type="image/png", delay=0.3)
    http_server.route("/late-data", json.dumps({"caption": "arrived late", "image": "/late.png"}),
                      content_type="application/json", delay=0.3)
    url = http_server.route(
        "/late",
        "<body style='margin:0;background:#fff'><div id=box style='height:200px'></div><p id=caption>waiting</p>"
        "<script>addEventListener('load', () => setTimeout(() => fetch('/late-data').then(r => r.json()).then(d => {"
        "  const img = new Image(); img.src = d.image; document.getElementById('box').append(img);"
        "  document.getElementById('caption').textContent = d.caption; }), 100));</script></body>",
    )
    result = capture(run, browser, browser_info, sealing, url, tmp_output, profile="as-loaded")
    assert result.status == "complete", result.error
    responses = {r["uri"]: r for r in warc_records(result.bundle) if r["type"] == "response"}
    assert responses[http_server.url("/late-data")]["payload"].startswith(b'{"caption": "arrived late"')
    assert responses[http_server.url("/late.png")]["payload"] == red.getvalue()
    bundle = Path(result.bundle)
    assert b"arrived late" in (bundle / "artifacts" / "dom.html").read_bytes()
    shot = Image.open(bundle / "artifacts" / "screenshot-full.png").convert("RGB")
    assert shot.getpixel((150, 100)) == (220, 20, 20)
    manifest = manifest_of(bundle)
    assert not any(w["code"] == "network-busy" for w in manifest["capture"]["warnings"])


def test_page_whose_script_never_yields_is_stopped_and_photographed(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    """An endless loop holds the renderer: every snapshot would wait out its limit (8 minutes in all, before)."""
    url = http_server.route("/busy", "<h1>busy page</h1><script>setTimeout(() => { for (;;) {} }, 300)</script>")
    started = time.monotonic()
    result = capture(run, browser, browser_info, sealing, url, tmp_output, timeout=8.0)
    elapsed = time.monotonic() - started
    assert elapsed < 8.0 + 30, f"took {elapsed:.1f} s"
    assert result.status == "complete", result.error
    manifest = manifest_of(result.bundle)
    assert any(w["code"] == "page-script-stopped" for w in manifest["capture"]["warnings"])
    assert b"busy page" in (Path(result.bundle) / "artifacts" / "dom.html").read_bytes()
    assert {a["role"] for a in manifest["artifacts"]} >= {"screenshot", "screenshot-viewport", "mhtml", "pdf"}


def test_dialogs_are_dismissed_and_popups_closed_and_both_recorded(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    popup = http_server.route("/popup", "<p>advert</p>")
    url = http_server.route(
        "/hostile",
        "<h1>hostile</h1><script>alert('first alert'); confirm('are you sure?'); prompt('name?', 'x');"
        f"window.open('{popup}');</script>",
    )
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    capture_facts = manifest_of(result.bundle)["capture"]
    kinds = [(d["type"], d["message"]) for d in capture_facts["dialogs"]]
    assert ("alert", "first alert") in kinds and ("confirm", "are you sure?") in kinds and ("prompt", "name?") in kinds
    assert [p["url"] for p in capture_facts["popups"]] == [popup]


def test_download_is_kept_inside_the_bundle(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    payload = b"%PDF-1.4 report body " * 100
    url = http_server.route(
        "/report", payload, content_type="application/octet-stream",
        headers={"Content-Disposition": 'attachment; filename="../../escape.pdf"'},
    )
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.bundle is not None
    bodies = [r["payload"] for r in warc_records(result.bundle) if r["type"] == "response" and r["uri"] == url]
    assert bodies == [payload]
    assert not list(tmp_path.rglob("escape.pdf"))
    assert sorted(p.name for p in tmp_output.iterdir()) == [Path(result.bundle).name]


def test_unicode_url_is_captured(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    url = http_server.route("/новости/çağrı", "<h1>юникод</h1>")
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    assert "юникод".encode() in (Path(result.bundle) / "artifacts" / "dom.html").read_bytes()
    assert warcio_check(result.bundle).returncode == 0


def test_secret_cookie_never_reaches_the_bundle(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    secret = "s3cr3t-session-value-8d1f"
    save_session("investigator", {"cookies": [{
        "name": "sid", "value": secret, "domain": "127.0.0.1", "path": "/", "expires": -1,
        "httpOnly": True, "secure": False, "sameSite": "Lax"}], "origins": []})
    url = http_server.route("/feed", "<h1>members feed</h1>")
    result = capture(run, browser, browser_info, sealing, url, tmp_output, session="investigator")
    assert result.status == "complete", result.error
    seen = [r for r in http_server.requests_for("/feed")]
    assert secret in seen[-1].headers.get("Cookie", "")  # the browser really sent it
    assert secret.encode() not in warc_text(result.bundle)
    for path in Path(result.bundle).rglob("*"):
        if path.is_file() and path.suffix != ".gz":
            assert secret.encode() not in path.read_bytes(), path
    assert manifest_of(result.bundle)["network"]["redactions"]


# --- the CLI: bad input gets one line and exit 2, results as JSON lines --------------------------------------


@pytest.mark.parametrize(
    "url, words",
    [
        ("file:///etc/passwd", "refused URL scheme file"),
        ("javascript:alert(1)", "refused URL scheme javascript"),
        ("data:text/html,<h1>x</h1>", "refused URL scheme data"),
        ("ftp://example.org/", "refused URL scheme ftp"),
        ("http://", "no host"),
        ("http://exa mple.org/", "malformed URL"),
        ("https://[::1/", "malformed URL"),
        ("example.org/page", "no scheme"),
    ],
)
def test_bad_urls_get_one_line_and_exit_2(tmp_output: Path, url: str, words: str) -> None:
    result = CliRunner().invoke(cli, ["capture", url, "--output", str(tmp_output)])
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert list(tmp_output.iterdir()) == []


def test_cli_json_lines_and_exit_codes(http_server: Any, tmp_output: Path) -> None:
    good = http_server.route("/ok", "<h1>fine</h1>")
    bad = f"http://127.0.0.1:{free_port()}/"
    result = CliRunner().invoke(
        cli, ["capture", good, bad, "--output", str(tmp_output), "--json", "--item", "EX", "--no-timestamp",
              "--timeout", "15"],
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [line["status"] for line in lines] == ["complete", "failed"]
    assert lines[0]["error"] is None and Path(lines[0]["bundle"]).is_dir()
    assert "connection refused" in lines[1]["error"]
    assert {line["item"] for line in lines} == {"EX-1", "EX-2"}
    assert result.exit_code == 1


def test_each_capture_starts_with_no_cookies_or_cache_from_earlier_ones(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    url = http_server.route(
        "/tracker", "<h1>tracked</h1><img src=/cached.png>",
        headers={"Set-Cookie": "visitor=returning; Path=/; Max-Age=3600"},
    )
    http_server.route("/cached.png", PNG_1PX, content_type="image/png", headers={"Cache-Control": "max-age=3600"})
    first = capture(run, browser, browser_info, sealing, url, tmp_output, item="A")
    second = capture(run, browser, browser_info, sealing, url, tmp_output, item="B")
    assert first.status == second.status == "complete"
    page_requests = http_server.requests_for("/tracker")
    assert len(page_requests) == 2
    assert "visitor=" not in (page_requests[1].headers.get("Cookie") or "")
    assert len(http_server.requests_for("/cached.png")) == 2  # fetched again: no cache shared between captures
    image = [r for r in warc_records(second.bundle) if r["type"] == "response" and r["uri"].endswith("/cached.png")]
    assert image and image[0]["payload"] == PNG_1PX


def test_viewport_and_user_agent_are_used_and_recorded(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    url = http_server.route("/ua", "<h1>who</h1>")
    agent = "Mozilla/5.0 (evicap test agent)"
    result = capture(run, browser, browser_info, sealing, url, tmp_output, viewport=(800, 600), user_agent=agent)
    assert result.status == "complete", result.error
    assert http_server.requests_for("/ua")[0].headers.get("User-Agent") == agent
    environment = manifest_of(result.bundle)["environment"]
    assert environment["user_agent"] == agent
    assert environment["viewport"] == {"width": 800, "height": 600}
    assert environment["browser"]["version"] and environment["evicap_version"]
    from PIL import Image

    with Image.open(Path(result.bundle) / "artifacts" / "screenshot-viewport.png") as shot:
        assert shot.size == (800, 600)


def test_a_bundle_that_cannot_be_published_keeps_its_work_and_says_where(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from evicap.capture import staged as staged_module  # the acquire step publishes
    from evicap.errors import BundleError, CaptureError

    def refuse(staging: Path, output: Path, name: str) -> Path:
        raise BundleError(f"cannot publish bundle {output / name}: No space left on device")

    monkeypatch.setattr(staged_module, "publish", refuse)
    url = http_server.route("/kept", "<h1>keep me</h1>")
    with pytest.raises(CaptureError) as caught:
        capture(run, browser, browser_info, sealing, url, tmp_output)
    assert "No space left on device" in str(caught.value) and "partial work kept in" in str(caught.value)
    [staging] = list(tmp_output.iterdir())
    assert staging.name.startswith(".staging-")  # never mistaken for a finished bundle
    assert (staging / "manifest.json").is_file() and (staging / "manifest.sig").is_file()
    assert b"keep me" in warc_text(staging)


def test_proxy_carries_the_capture_and_is_recorded(
    run: Any, browser: Any, browser_info: Any, sealing: Any, tmp_output: Path
) -> None:
    """A forward proxy that answers for a name no DNS knows: the page can only have come through the proxy."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from evicap.demo.server import ServerThread

    seen: list[str] = []

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)  # a proxy receives the absolute URL
            body = b"<h1>served through the proxy</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class ProxyServer(ServerThread):
        def start(self) -> ProxyServer:
            self._serve(ThreadingHTTPServer(("127.0.0.1", 0), Proxy), name="test-proxy", poll_interval=0.05)
            return self

    with ProxyServer() as proxy:
        address = f"http://127.0.0.1:{proxy.port}"
        url = "http://evidence-target.invalid/post/7"
        result = capture(run, browser, browser_info, sealing, url, tmp_output, proxy=address)
    assert result.status == "complete", result.error
    assert url in seen
    manifest = manifest_of(result.bundle)
    assert manifest["environment"]["proxy"] == address
    assert b"served through the proxy" in (Path(result.bundle) / "artifacts" / "dom.html").read_bytes()
