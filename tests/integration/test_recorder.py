"""NetworkRecorder + WarcWriter against a real Chromium and real local servers; WARCs read back with warcio."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page
from warcio.archiveiterator import ArchiveIterator

from evicap.capture.options import CaptureOptions
from evicap.capture.recorder import NetworkRecorder
from evicap.capture.warc import WarcWriter
from tests.servers import LocalServer

WARCIO = str(Path(sys.executable).with_name("warcio"))


@dataclass
class Record:
    type: str
    uri: str
    headers: dict[str, str]
    http_status: str | None
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
                    http.statusline if http is not None else None,
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
        await recorder.complete_media(page)
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
        assert resp.headers["WARC-Protocol"] == "http/1.1"
        req = [r for r in cap.records if r.headers["WARC-Record-ID"] == resp.headers["WARC-Concurrent-To"]]
        assert req and req[0].type == "request"
    nav = cap.recorder.navigation
    assert nav.requested_url == url and nav.final_url == url and nav.status == 200 and nav.remote_ip == "127.0.0.1"
