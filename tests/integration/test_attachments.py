"""Attachments of a real page in real Chromium, written through the real WarcWriter and read back independently.

The certificate chains handed to ``collect_attachments`` are taken here the way the recorder takes them (CDP
``securityDetails`` and ``Network.getCertificate`` in the same session), so this test does not depend on the
recorder, only on Chromium and the local servers.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from PIL import Image
from playwright.async_api import Browser, CDPSession, Page
from warcio.archiveiterator import ArchiveIterator

from evicap.bundle import layout
from evicap.bundle.hashing import digest_file
from evicap.capture.attachments import (
    MAX_CONSOLE_MESSAGES,
    MAX_CONSOLE_TEXT,
    AttachmentInputs,
    AttachmentResult,
    ConsoleLog,
    collect_attachments,
)
from evicap.capture.options import CaptureOptions
from evicap.capture.recorder import NetworkRecorder
from evicap.capture.screenshot import full_page_png, scroll_to_top
from evicap.capture.types import CertificateChain, Navigation
from evicap.capture.warc import WarcWriter
from tests.servers import LocalServer

WARCIO = str(Path(sys.executable).with_name("warcio"))
BANDS = [(255, 0, 0), (0, 160, 0), (0, 0, 255), (255, 200, 0), (0, 200, 200), (160, 0, 160), (90, 60, 30), (0, 0, 0)]


async def _in_page(
    browser: Browser, url: str, work: Callable[[Page, CDPSession], Awaitable[Any]], **context: Any
) -> Any:
    ctx = await browser.new_context(viewport={"width": 800, "height": 600}, **context)
    try:
        page = await ctx.new_page()
        cdp = await ctx.new_cdp_session(page)
        return await work(page, cdp)
    finally:
        await ctx.close()


async def _load_with_certificates(page: Page, cdp: CDPSession, url: str) -> dict[str, CertificateChain]:
    """Navigate and keep each HTTPS origin's chain as the recorder does (with site isolation on, a cross-site
    frame's chain is known to that frame's own session: the recorder attaches to it)."""
    with tempfile.TemporaryDirectory() as scratch:
        warc = WarcWriter(Path(scratch) / "load.warc.gz", {"software": "evicap tests"})
        recorder = NetworkRecorder(cdp, warc, Path(scratch) / ".spool", CaptureOptions())
        await recorder.start()
        await page.goto(url, wait_until="load")
        await recorder.settle(5.0)
        await warc.close()
        return dict(recorder.certificates)


async def _collect(
    page: Page, cdp: CDPSession, staging: Path, url: str, **inputs: Any
) -> tuple[AttachmentResult, Path]:
    (staging / layout.ARTIFACTS_DIR).mkdir(parents=True)
    warc = WarcWriter(staging / layout.WARC, {"software": "evicap tests"})
    navigation = Navigation(requested_url=url, final_url=url, status=200, status_text="OK")
    result = await collect_attachments(
        page, cdp, staging, warc, AttachmentInputs(capture_id="cap-1", page_url=url, navigation=navigation, **inputs)
    )
    await warc.close()
    return result, staging / layout.WARC


def _warc_records(path: Path) -> dict[str, tuple[str, dict[str, str], bytes]]:
    """urn -> (record type, WARC headers, payload), read by warcio."""
    found = {}
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream):
            uri = record.rec_headers.get_header("WARC-Target-URI")
            found[uri] = (record.rec_type, dict(record.rec_headers.headers), record.content_stream().read())
    return found


def test_https_page_yields_every_attachment_hashed_and_stored_in_the_warc(
    run: Any, browser: Browser, https_server: LocalServer, tmp_path: Path
) -> None:
    frame_url = f"https://localhost:{https_server.port}/frame"  # another origin: host differs
    https_server.route("/frame", "<p>text only inside the cross-origin frame</p>")
    url = https_server.route(
        "/post",
        f"""<!doctype html><html lang="en"><head><title>Post · évidence</title>
        <link rel="canonical" href="/canonical-post">
        <meta property="og:title" content="OG title"><meta name="twitter:card" content="summary">
        </head><body style="margin:0"><div style="height:2345px">main page body</div>
        <iframe name="side" src="{frame_url}"></iframe>
        <script>console.log("hello from the page"); document.body.dataset.ran = "yes";</script></body></html>""",
    )

    async def work(page: Page, cdp: CDPSession) -> tuple[AttachmentResult, Path]:
        console = ConsoleLog.attach(page)
        chains = await _load_with_certificates(page, cdp, url)
        await page.frame_locator("iframe").locator("p").wait_for()
        return await _collect(page, cdp, tmp_path, url, certificates=chains, console=console.messages)

    result, warc_path = run(_in_page(browser, url, work))

    assert result.warnings == [] and result.essential_missing == []
    roles = {a.role: a for a in result.artifacts}
    assert set(roles) == {
        "screenshot",
        "screenshot-viewport",
        "dom",
        "mhtml",
        "pdf",
        "page-facts",
        "certificates",
        "certificates-json",
    }
    records = _warc_records(warc_path)
    for artifact in result.artifacts:
        assert digest_file(tmp_path / artifact.path) == artifact.digest
        kind, headers, payload = records[artifact.warc_record_uri or ""]
        assert artifact.warc_record_uri == f"urn:evicap:cap-1:{Path(artifact.path).name}"
        assert kind == ("metadata" if artifact.media_type == "application/json" else "resource")
        assert "WARC-Refers-To-Target-URI" not in headers  # WARC 1.1 defines it for revisit records only
        assert hashlib.sha256(payload).hexdigest() == artifact.digest.sha256
    check = subprocess.run([WARCIO, "check", "-v", str(warc_path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    shot = Image.open(tmp_path / layout.SCREENSHOT_FULL)
    assert shot.size == (800, result.facts["document_size"]["height"])  # the page's own scrollHeight
    assert shot.size[1] >= 2345 + 150  # the div and the iframe below it
    assert Image.open(tmp_path / layout.SCREENSHOT_VIEWPORT).size == (800, 600)
    dom = (tmp_path / layout.DOM).read_text("utf-8")
    assert 'data-ran="yes"' in dom and "Post · évidence" in dom  # serialized after scripts ran
    mhtml = (tmp_path / layout.MHTML).read_bytes()
    assert b"text only inside the cross-origin frame" in mhtml and frame_url.encode() in mhtml
    assert (tmp_path / layout.PDF).read_bytes().startswith(b"%PDF-")

    facts = result.facts
    assert facts["title"] == "Post · évidence"
    assert facts["canonical"] == https_server.url("/canonical-post")
    assert facts["opengraph"] == [{"name": "og:title", "content": "OG title"}]
    assert facts["twitter"] == [{"name": "twitter:card", "content": "summary"}]
    assert facts["http_status"] == 200 and facts["final_url"] == url
    assert {"url": frame_url, "name": "side", "parent_url": url} in facts["frames"]
    assert any(m["text"] == "hello from the page" for m in facts["console"])

    # The PEM is for openssl: each block parses, and the fingerprints in comments and JSON are openssl's.
    pem_text = (tmp_path / layout.CERTIFICATES_PEM).read_text("ascii")
    blocks = re.findall(r"((?:# [^\n]*\n)+)(-----BEGIN CERTIFICATE-----\n[^#]*?-----END CERTIFICATE-----\n)", pem_text)
    chains_json = {o["origin"]: o for o in json_load(tmp_path / layout.CERTIFICATES_JSON)["origins"]}
    assert len(blocks) == sum(len(o["chain"]) for o in chains_json.values()) >= 2  # the server sends its leaf
    assert set(chains_json) == {https_server.origin, f"https://localhost:{https_server.port}"}
    for comments, block in blocks:
        out = subprocess.run(
            ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-subject"],
            input=block,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        fingerprint = re.search(r"Fingerprint=([0-9A-F:]+)", out, re.I).group(1)  # type: ignore[union-attr]
        assert f"# SHA-256 fingerprint: {fingerprint}\n" in comments
        origin = re.search(r"# origin: (\S+)", comments).group(1)  # type: ignore[union-attr]
        assert fingerprint.replace(":", "").lower() in [c["sha256"] for c in chains_json[origin]["chain"]]
    leaf = chains_json[https_server.origin]["chain"][0]
    assert leaf["san"] == ["127.0.0.1", "localhost"] or set(leaf["san"]) == {"127.0.0.1", "localhost"}
    assert x509.load_pem_x509_certificate(blocks[0][1].encode()).subject.rfc4514_string() == leaf["subject"]
    assert chains_json[https_server.origin]["connection"]["protocol"].startswith("TLS")


def json_load(path: Path) -> Any:
    import json

    return json.loads(path.read_text("utf-8"))


def _banded_page(height: int) -> str:
    band = height // len(BANDS)
    divs = "".join(f'<div style="height:{band}px;background:rgb{c}"></div>' for c in BANDS)
    header = '<div style="position:fixed;top:0;left:0;right:0;height:30px;background:rgb(255,255,255)"></div>'
    return f"<!doctype html><body style='margin:0'>{header}{divs}</body>"


def test_page_of_40000_px_is_stitched_whole_with_bands_at_their_offsets(
    run: Any, browser: Browser, http_server: LocalServer, tmp_path: Path
) -> None:
    url = http_server.route("/tall", _banded_page(40_000))

    async def work(page: Page, cdp: CDPSession) -> Any:
        await page.goto(url)
        await page.evaluate("scrollTo(0, 20000)")  # where behaviors may leave it
        assert await scroll_to_top(cdp) == (0, 20000)  # what collect_attachments does first
        return await full_page_png(cdp, tmp_path / "full.png", max_height=200_000)

    full = run(_in_page(browser, url, work))
    assert (full.height, full.tiles > 4, full.truncated) == (40_000, True, False)
    image = Image.open(tmp_path / "full.png")
    assert image.size == (800, 40_000)
    for index, colour in enumerate(BANDS):
        for offset in (index * 5000 + 100, index * 5000 + 4999):
            assert image.getpixel((400, offset)) == colour, (index, offset)
    assert image.getpixel((400, 10)) == (255, 255, 255)  # fixed header, at the top only...
    assert image.getpixel((400, 20_010)) == BANDS[4]  # ...not where the page happened to be scrolled


def test_hostile_page_cannot_flood_console_forge_facts_or_hide_a_cut_screenshot(
    run: Any, browser: Browser, http_server: LocalServer, tmp_path: Path
) -> None:
    url = http_server.route(
        "/flood",
        f"""<body style="margin:0"><div style="height:3000px"></div>
        <title>real title</title>
        <script>for (let i = 0; i < {MAX_CONSOLE_MESSAGES + 50}; i++) console.log("x".repeat(4100));
        Object.defineProperty(document, "title", {{get: () => "forged title"}}); window.scrollTo = () => {{}};
        </script>""",
    )

    async def work(page: Page, cdp: CDPSession) -> Any:
        console = ConsoleLog.attach(page)
        await page.goto(url)
        await page.wait_for_timeout(100)
        await page.mouse.wheel(0, 800)
        await page.wait_for_function("scrollY > 0")
        return console, await _collect(
            page, cdp, tmp_path, url, console=console.messages, options=CaptureOptions(full_page_max_height=1000)
        )

    console, (result, _warc) = run(_in_page(browser, url, work))
    assert len(console.messages) == MAX_CONSOLE_MESSAGES and console.dropped >= 50  # and perhaps the favicon 404 error
    assert max(len(m.text) for m in console.messages) == MAX_CONSOLE_TEXT
    assert [w.code for w in result.warnings] == ["screenshot-truncated"]
    # The page's own scripts cannot forge what we read nor stop us scrolling back to the top.
    assert result.facts["title"] == "real title" and result.facts["scrolled_to_top_from"]["y"] > 0
    assert Image.open(tmp_path / layout.SCREENSHOT_FULL).size == (800, 1000)
    assert not (tmp_path / layout.CERTIFICATES_PEM).exists()  # plain HTTP: no certificate files
    assert "certificates" not in {a.role for a in result.artifacts}


def test_crashed_renderer_still_yields_page_facts_and_warnings(
    run: Any, browser: Browser, http_server: LocalServer, tmp_path: Path
) -> None:
    url = http_server.route("/crash", "<title>about to crash</title><p>bye</p>")

    async def work(page: Page, cdp: CDPSession) -> Any:
        await page.goto(url)
        crashed = asyncio.get_running_loop().create_future()
        page.once("crash", lambda _page: crashed.done() or crashed.set_result(True))
        sender = asyncio.ensure_future(cdp.send("Page.crash"))  # never answers: the target dies
        await asyncio.wait_for(crashed, 10)
        sender.cancel()
        return await _collect(page, cdp, tmp_path, url, step_timeout=10)

    result, warc_path = run(_in_page(browser, url, work))
    assert set(result.essential_missing) == {"screenshot", "dom"}
    assert {a.role for a in result.artifacts} == {"page-facts"}
    assert all(w.code == "attachment-failed" for w in result.warnings) and len(result.warnings) >= 5
    assert result.facts["http_status"] == 200 and result.facts["rendered"] is True
    assert not (tmp_path / layout.SCREENSHOT_FULL).exists() and not (tmp_path / layout.PDF).exists()
    assert "urn:evicap:cap-1:page-facts.json" in _warc_records(warc_path)


def test_a_page_that_fits_the_window_is_photographed_once_and_a_taller_one_painted_whole(
    run: Any, browser: Browser, http_server: LocalServer, tmp_path: Path
) -> None:
    """Fitting the 800x600 window, the full-page screenshot is the viewport one (the same moment, one paint; a
    spinning square would otherwise differ between two shots); 50 px taller, the whole page is painted."""
    spinner = ("<style>body{margin:0}i{display:block;width:60px;height:60px;background:#c33;"
               "animation:s .3s linear infinite}@keyframes s{to{transform:rotate(360deg)}}</style><i></i>")
    short = http_server.route("/fits", f"<title>fits</title>{spinner}<p>short post</p>")
    tall = http_server.route("/taller", f"<title>taller</title>{spinner}<div style='height:650px'></div>")

    def collect(url: str, staging: Path) -> AttachmentResult:
        async def work(page: Page, cdp: CDPSession) -> AttachmentResult:
            await page.goto(url)
            result, _ = await _collect(page, cdp, staging, url)
            return result

        result: AttachmentResult = run(_in_page(browser, url, work))
        return result

    fits = collect(short, tmp_path / "fits")
    full, viewport = (tmp_path / "fits" / layout.SCREENSHOT_FULL), (tmp_path / "fits" / layout.SCREENSHOT_VIEWPORT)
    assert full.read_bytes() == viewport.read_bytes() and Image.open(full).size == (800, 600)
    assert fits.facts["screenshot"]["tiles"] == 0 and not fits.facts["screenshot"]["truncated"]
    digests = {a.path: a.digest.sha256 for a in fits.artifacts}
    assert digests[layout.SCREENSHOT_FULL] == digests[layout.SCREENSHOT_VIEWPORT] == digest_file(full).sha256

    taller = collect(tall, tmp_path / "taller")
    assert taller.facts["screenshot"]["tiles"] == 1
    assert Image.open(tmp_path / "taller" / layout.SCREENSHOT_FULL).size == (800, 650 + 60)
    assert Image.open(tmp_path / "taller" / layout.SCREENSHOT_VIEWPORT).size == (800, 600)
