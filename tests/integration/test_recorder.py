"""NetworkRecorder + WarcWriter against a real Chromium and real local servers; WARCs read back with warcio."""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page
from warcio.archiveiterator import ArchiveIterator

from evicap.capture import streaming
from evicap.capture.options import CaptureOptions
from evicap.capture.recorder import NetworkRecorder
from evicap.capture.warc import WarcWriter
from tests.servers import LocalServer, free_port

WARCIO = str(Path(sys.executable).with_name("warcio"))


@dataclass
class Record:
    type: str
    uri: str
    headers: dict[str, str]  # WARC headers; repeated ones (WARC-Protocol) in ``protocols``
    protocols: list[str]
    start_line: str
    http_headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Captured:
    recorder: NetworkRecorder
    warc_path: Path
    records: list[Record]

    def of(self, kind: str, uri_part: str) -> list[Record]:
        return [r for r in self.records if r.type == kind and uri_part in r.uri]

    def one(self, kind: str, uri: str) -> Record:
        found = [r for r in self.records if r.type == kind and r.uri == uri]
        assert len(found) == 1, f"{kind} records for {uri}: {[r.uri for r in self.records]}"
        return found[0]


def read_warc(path: Path) -> list[Record]:
    """Independent read-back: `warcio check` must pass and ArchiveIterator must read every record."""
    check = subprocess.run([WARCIO, "check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    records = []
    with open(path, "rb") as stream:
        for rec in ArchiveIterator(stream):
            http = rec.http_headers
            records.append(
                Record(
                    rec.rec_type,
                    rec.rec_headers.get_header("WARC-Target-URI") or "",
                    dict(rec.rec_headers.headers),
                    [v for k, v in rec.rec_headers.headers if k == "WARC-Protocol"],
                    f"{http.protocol} {http.statusline}" if http is not None else "",
                    list(http.headers) if http is not None else [],
                    rec.content_stream().read(),
                )
            )
    return records


async def record_page(
    browser: Browser,
    tmp: Path,
    url: str,
    options: CaptureOptions | None = None,
    then: Callable[[Page], Any] | None = None,
    wait: str = "load",
) -> Captured:
    warc_path = tmp / "capture.warc.gz"
    warc = WarcWriter(warc_path, {"software": "evicap-test"})
    context = await browser.new_context(ignore_https_errors=False, service_workers="block", accept_downloads=False)
    try:
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        recorder = NetworkRecorder(cdp, warc, spool_dir=tmp / ".spool", options=options or CaptureOptions())
        await recorder.start()
        try:
            await page.goto(url, wait_until=wait)  # type: ignore[arg-type]
        except Exception as exc:  # downloads and refused navigations raise; the recorder has the facts
            recorder.warn("goto", str(exc).splitlines()[0])
        if then is not None:
            await then(page)
        await recorder.complete_media(time.monotonic() + 60)
        await recorder.drain(timeout=10)
    finally:
        await context.close()
    await warc.close()
    return Captured(recorder, warc_path, read_warc(warc_path))


def test_page_with_subresources_gzip_chunked(run, browser, http_server: LocalServer, tmp_path: Path) -> None:
    http_server.route("/style.css", "body{color:red}" * 200, content_type="text/css", gzip=True)
    http_server.route("/app.js", "console.log('chunked');" * 50, content_type="text/javascript", chunked=True)
    url = http_server.route("/", '<link rel=stylesheet href="/style.css"><script src="/app.js"></script><p>hello</p>')
    cap = run(record_page(browser, tmp_path, url))
    types = [r.type for r in cap.records]
    assert types[0] == "warcinfo"
    page = cap.one("response", url)
    assert b"<p>hello</p>" in page.body
    css = cap.one("response", http_server.url("/style.css"))
    assert css.body == b"body{color:red}" * 200
    assert ("X-Orig-Content-Encoding", "gzip") in css.http_headers
    js = cap.one("response", http_server.url("/app.js"))
    assert js.body == b"console.log('chunked');" * 50
    assert ("X-Orig-Transfer-Encoding", "chunked") in js.http_headers
    for resp in cap.of("response", "127.0.0.1"):
        assert resp.headers["WARC-IP-Address"] == "127.0.0.1"
        assert resp.protocols == ["http/1.1"]
        req = [r for r in cap.records if r.headers["WARC-Record-ID"] == resp.headers["WARC-Concurrent-To"]]
        assert req and req[0].type == "request"
    nav = cap.recorder.navigation
    assert nav.requested_url == url and nav.final_url == url and nav.status == 200 and nav.remote_ip == "127.0.0.1"


def test_redirect_chain_every_hop_recorded(run, browser, http_server: LocalServer, tmp_path: Path) -> None:
    final = http_server.route("/final", "<p>landed</p>")
    http_server.redirect("/c", "/final", status=307)
    http_server.redirect("/b", "/c", status=302)
    start = http_server.redirect("/a", "/b", status=301)
    cap = run(record_page(browser, tmp_path, start))
    for path, status, location in (("/a", 301, "/b"), ("/b", 302, "/c"), ("/c", 307, "/final")):
        resp = cap.one("response", http_server.url(path))
        assert resp.start_line.startswith(f"HTTP/1.1 {status} ")
        assert ("Location", location) in resp.http_headers
        assert cap.one("request", http_server.url(path)).start_line == f"GET {path} HTTP/1.1"
    assert b"landed" in cap.one("response", final).body
    nav = cap.recorder.navigation
    assert [(h.url, h.status, h.location) for h in nav.redirects] == [
        (start, 301, "/b"),
        (http_server.url("/b"), 302, "/c"),
        (http_server.url("/c"), 307, "/final"),
    ]
    assert nav.final_url == final and nav.status == 200


def test_iframe_xhr_unicode_and_error_statuses(
    run, browser, http_server: LocalServer, http_server2: LocalServer, tmp_path: Path
) -> None:
    frame = http_server2.route("/frame", "<p>other origin</p><img src='/pixel.svg'>")
    http_server2.route("/pixel.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>", content_type="image/svg+xml")
    http_server.route("/api/data", '{"ok": true}', content_type="application/json")
    http_server.route("/missing", "<h1>gone</h1>", status=404)
    http_server.route("/broken", "<h1>server error</h1>", status=500)
    unicode_url = http_server.route("/страница/ü.html", "<p>unicode</p>")
    dead = f"http://127.0.0.1:{free_port()}/nothing.js"
    url = http_server.route(
        "/",
        f"""<iframe src="{frame}"></iframe><script src="{dead}"></script>
        <iframe src="{unicode_url}"></iframe><iframe src="/missing"></iframe><iframe src="/broken"></iframe>
        <script>fetch('/api/data').then(r => r.json()).then(d => document.title = 'xhr ' + d.ok)</script>""",
    )

    async def wait_xhr(page: Page) -> None:
        await page.wait_for_function("document.title === 'xhr true'")

    cap = run(record_page(browser, tmp_path, url, then=wait_xhr))
    assert b"other origin" in cap.one("response", frame).body
    assert cap.one("response", http_server2.url("/pixel.svg")).body.startswith(b"<svg")
    assert cap.one("response", http_server.url("/api/data")).body == b'{"ok": true}'
    assert b"unicode" in cap.one("response", unicode_url).body
    assert cap.one("response", http_server.url("/missing")).start_line.startswith("HTTP/1.1 404")
    assert b"gone" in cap.one("response", http_server.url("/missing")).body
    assert b"server error" in cap.one("response", http_server.url("/broken")).body
    failed = [x for x in cap.recorder.exchanges if x.url == dead]
    assert len(failed) == 1 and failed[0].outcome == "failed" and "ERR_CONNECTION_REFUSED" in (failed[0].detail or "")
    assert any(w.url == dead for w in cap.recorder.warnings)
    assert not cap.of("response", dead)


def test_secrets_redacted_unless_kept(run, browser, http_server: LocalServer, tmp_path: Path) -> None:
    secret = "s3cr3t-session-value-42"
    http_server.route("/next", "<p>next</p>")
    url = http_server.route(
        "/",
        # The secret reaches the page only as a cookie; the script sends it back as a bearer token too.
        "<p>first</p><script>fetch('/next', {headers: {Authorization: 'Bearer ' + document.cookie}})</script>",
        headers={"Set-Cookie": f"sid={secret}; Path=/"},
    )

    async def wait_next(page: Page) -> None:
        await page.wait_for_timeout(300)

    (tmp_path / "a").mkdir()
    redacted = run(record_page(browser, tmp_path / "a", url, then=wait_next))
    raw = gzip.decompress(redacted.warc_path.read_bytes())
    assert secret.encode() not in raw
    assert b"[redacted by evicap]" in raw
    assert any("Set-Cookie" in r for r in redacted.recorder.redactions)
    assert any("Cookie" in r and "request" in r for r in redacted.recorder.redactions)
    assert any("Authorization" in r for r in redacted.recorder.redactions)

    (tmp_path / "b").mkdir()
    kept = run(record_page(browser, tmp_path / "b", url, CaptureOptions(keep_secrets=True), then=wait_next))
    assert secret.encode() in gzip.decompress(kept.warc_path.read_bytes())
    assert kept.recorder.redactions == []


def test_https_tls_details_and_certificate_chain(run, browser, https_server: LocalServer, tmp_path: Path) -> None:
    url = https_server.route("/", "<p>secure</p>")
    cap = run(record_page(browser, tmp_path, url))
    resp = cap.one("response", url)
    assert resp.headers["WARC-IP-Address"] == "127.0.0.1"
    assert resp.protocols == ["http/1.1", "tls/1.3"]
    chain = cap.recorder.certificates[https_server.origin]
    assert chain.der_chain and chain.der_chain[0][:1] == b"\x30"  # DER SEQUENCE
    assert chain.security_details["protocol"].startswith("TLS")
    assert chain.remote_ip == "127.0.0.1"


def test_download_navigation_recorded_whole_in_warc(
    run, browser, http_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Limits scaled down so a 3 MiB body takes the path of a huge one: streamed to disk, not handed back.
    monkeypatch.setattr(streaming, "STREAM_THRESHOLD", 1024 * 1024)
    monkeypatch.setattr(streaming, "FULFIL_LIMIT", 2 * 1024 * 1024)
    payload = bytes(range(256)) * (3 * 4096)
    url = http_server.route(
        "/report.bin",
        payload,
        content_type="application/octet-stream",
        headers={"Content-Disposition": 'attachment; filename="../../report.bin"'},
    )
    cap = run(record_page(browser, tmp_path, url))
    resp = cap.one("response", url)
    assert resp.body == payload
    assert ("Content-Length", str(len(payload))) in resp.http_headers
    summary = [x for x in cap.recorder.exchanges if x.url == url]
    assert summary[0].outcome == "recorded" and summary[0].body_size == len(payload)
    assert any(w.code == "body-withheld" for w in cap.recorder.warnings)
    assert not (tmp_path / ".spool").exists()  # spool files never stay behind in the bundle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capture.warc.gz"]


def test_ranged_video_comes_out_whole_and_capped(run, browser, http_server: LocalServer, tmp_path: Path) -> None:
    video = bytes(range(251)) * 8000  # ~2 MB, served with Accept-Ranges; the player asks for ranges (206)
    url = http_server.route("/clip.mp4", video, content_type="video/mp4", ranges=True)
    page = http_server.route("/", f'<video src="{url}" preload="auto" muted></video>')

    async def let_media_load(p: Page) -> None:
        await p.wait_for_timeout(500)

    (tmp_path / "whole").mkdir()
    cap = run(record_page(browser, tmp_path / "whole", page, then=let_media_load))
    assert any(r.start_line.startswith("HTTP/1.1 206") for r in cap.of("response", url))
    whole = [r for r in cap.of("response", url) if r.start_line.startswith("HTTP/1.1 200")]
    assert len(whole) == 1 and whole[0].body == video
    assert "WARC-Truncated" not in whole[0].headers

    (tmp_path / "capped").mkdir()
    capped = run(
        record_page(browser, tmp_path / "capped", page, CaptureOptions(max_media_size=100_000), let_media_load)
    )
    cut = [r for r in capped.of("response", url) if r.start_line.startswith("HTTP/1.1 200")]
    assert len(cut) == 1 and cut[0].body == video[:100_000]
    assert cut[0].headers["WARC-Truncated"] == "length"
    assert any(w.code == "media-truncated" for w in capped.recorder.warnings)
