"""A stock replay tool, pywb, replays evicap's WARCs: the proof that the records are self-consistent in practice.

Two real captures (the built-in demo feed, and a test-server page reached through a 301/302/307 chain with a gzip
body, a chunked script and an image) go into one pywb collection through pywb's own ``wb-manager``. The live servers
are then shut down, so everything a client gets afterwards can only come from the WARCs. pywb's ``wayback`` app serves
the collection on 127.0.0.1 and the tests ask it over plain HTTP (replayed bytes, redirects) and through Chromium
(rendered text, decoded images).

pywb runs in child processes, never in this one: its apps call gevent's ``monkey.patch_all()`` on import, which would
swap out the sockets and threads under asyncio and Playwright. The interpreter is this one when pywb is installed here
(the test extras), else the one named by EVICAP_PYWB_PYTHON (a separate virtual environment); without either the
module is skipped.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from evicap.capture.options import CaptureOptions
from evicap.demo.server import SITE_DIR, DemoServer
from tests.integration.capture_helpers import capture_sealed, make_sealing, warc_path, warcio_check
from tests.servers import LocalServer, free_port

COLLECTION = "evidence"
PNG_2PX = bytes.fromhex(  # 2x1 pixels, one red, one blue
    "89504e470d0a1a0a0000000d49484452000000020000000108020000007b40e8dd0000000d4944415478da63f8cf"
    "0004ff01070001ff3d7d8c490000000049454e44ae426082"
)
ARTICLE = "Witness statement: the market stall was moved on the night of the ninth. " * 40


def _pywb_python() -> str | None:
    if importlib.util.find_spec("pywb") is not None:
        return sys.executable
    return os.environ.get("EVICAP_PYWB_PYTHON") or None


PYWB_PYTHON = _pywb_python()
pytestmark = pytest.mark.skipif(
    PYWB_PYTHON is None, reason="pywb is not installed (pip install pywb, or set EVICAP_PYWB_PYTHON)"
)


@dataclass(frozen=True)
class Site:
    """What was captured, by its original (now dead) URLs."""

    demo_feed: str
    demo_image: str
    origin: str  # of the test page and its redirect chain
    redirect_start: str
    final_page: str
    script: str
    image: str


@dataclass(frozen=True)
class Replay:
    base: str  # http://127.0.0.1:PORT/evidence/
    site: Site
    warcs: tuple[Path, ...]

    def url(self, original: str, modifier: str = "id_") -> str:
        """pywb's replay address: ``id_`` gives the archived bytes as they are, ``mp_`` the rewritten page,
        no modifier pywb's banner page that shows the ``mp_`` page in a frame."""
        return f"{self.base}{modifier}/{original}" if modifier else f"{self.base}{original}"


def _get(url: str) -> tuple[int, str, bytes]:
    """GET following redirects; returns final status, final URL and body."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.geturl(), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.geturl(), error.read()


def _raw(url: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Status, headers and body of one GET, redirects not followed, no content decoding."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.request("GET", url[len(f"{parts.scheme}://{parts.netloc}") :])
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def _pywb(args: list[str], cwd: Path) -> None:
    assert PYWB_PYTHON is not None
    done = subprocess.run(
        [PYWB_PYTHON, "-m", "pywb.manager.manager", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _capture_all(run: Any, browser: Any, browser_info: Any, out: Path) -> tuple[Site, list[Path]]:
    """Capture the demo feed and the test page with evicap proper, then stop both servers."""
    sealing = make_sealing(out / "keys")
    options = CaptureOptions(timeout=30.0, case="REPLAY-1", item="ITEM-1")
    bundles = []
    with DemoServer() as demo, LocalServer() as server:
        server.route("/img/evidence.png", PNG_2PX, content_type="image/png")
        server.route("/app.js", "document.body.dataset.ran = 'yes';", content_type="text/javascript", chunked=True)
        final = server.route(
            "/article",
            f"<!doctype html><title>Archived article</title><h1>Market stall report</h1><p>{ARTICLE}</p>"
            "<img id=pic src=/img/evidence.png width=40 height=20><script src=/app.js></script>",
            gzip=True,
        )
        server.redirect("/c", final, status=307)
        server.redirect("/b", "/c", status=302)
        start = server.redirect("/a", server.url("/b"), status=301)
        site = Site(
            demo.url("/"),
            demo.url("/static/img/cat.jpg"),
            server.origin,
            start,
            final,
            server.url("/app.js"),
            server.url("/img/evidence.png"),
        )
        for url in (site.demo_feed, site.redirect_start):
            result = run(capture_sealed(browser, url, options, out, browser_info=browser_info, sealing=sealing))
            assert result.status == "complete", result.error
            bundles.append(Path(result.bundle))
    return site, [warc_path(bundle) for bundle in bundles]


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"pywb wayback exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers: good enough
        except OSError:
            time.sleep(0.2)
    raise AssertionError("pywb wayback did not start within 30 s")


@pytest.fixture(scope="module")
def replay(run: Any, browser: Any, browser_info: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    out = tmp_path_factory.mktemp("pywb-captures")
    site, warcs = _capture_all(run, browser, browser_info, out)
    root = tmp_path_factory.mktemp("pywb-root")
    _pywb(["init", COLLECTION], root)
    for index, warc in enumerate(warcs):
        # wb-manager names the copy after the file; both are capture.warc.gz, so give each its own name.
        named = root / f"capture-{index}.warc.gz"
        named.write_bytes(warc.read_bytes())
        _pywb(["add", COLLECTION, str(named)], root)
    port = free_port()
    assert PYWB_PYTHON is not None
    process = subprocess.Popen(
        [PYWB_PYTHON, "-m", "pywb.apps.cli", "-p", str(port), "-b", "127.0.0.1", "-t", "4"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}/{COLLECTION}/"
        _wait_until_serving(base, process, time.monotonic() + 30)
        yield Replay(base, site, tuple(warcs))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_warcs_pass_warcio_check(replay: Replay) -> None:
    for warc in replay.warcs:
        assert warcio_check(warc.parent.parent).returncode == 0


def test_demo_feed_replays_with_its_images_and_stylesheet(replay: Replay) -> None:
    status, _, html = _get(replay.url(replay.site.demo_feed))
    assert status == 200
    assert b"Larkfield Commons" in html
    status, _, image = _get(replay.url(replay.site.demo_image))
    assert status == 200
    assert hashlib.sha256(image).digest() == hashlib.sha256((SITE_DIR / "static/img/cat.jpg").read_bytes()).digest()
    status, _, css = _get(replay.url(replay.site.demo_feed + "static/style.css"))
    assert status == 200 and css == (SITE_DIR / "static/style.css").read_bytes()


def test_redirect_chain_gzip_chunked_and_image_replay(replay: Replay) -> None:
    site = replay.site
    # Each hop replays with its recorded status and Location (``id_`` gives the archived head unrewritten) ...
    hops = [("/a", 301, f"{site.origin}/b"), ("/b", 302, "/c"), ("/c", 307, site.final_page)]
    for path, status, location in hops:
        original = site.origin + path
        replayed_status, headers, _ = _raw(replay.url(original))
        assert (replayed_status, headers["Location"]) == (status, location)
    # ... and a client following the rewritten chain (``mp_``) lands on the archived final page.
    status, landed, html = _get(replay.url(site.redirect_start, "mp_"))
    assert status == 200
    assert landed == replay.url(site.final_page, "mp_")
    assert f"<p>{ARTICLE}</p>".encode() in html  # the gzip page, stored decoded, replays whole
    # A replay client gets a head that matches the bytes: no Content-Encoding over the decoded body, the length right.
    status, headers, body = _raw(replay.url(site.final_page))
    assert status == 200 and f"<p>{ARTICLE}</p>".encode() in body
    assert headers["Content-Encoding"] is None and headers["X-Orig-Content-Encoding"] == "gzip"
    assert headers["Content-Length"] == str(len(body))
    status, _, script = _get(replay.url(site.script))
    assert status == 200 and script == b"document.body.dataset.ran = 'yes';"  # chunked on the wire
    status, _, image = _get(replay.url(site.image))
    assert status == 200 and image == PNG_2PX


def test_replay_renders_in_chromium(run: Any, browser: Any, replay: Replay) -> None:
    """What a person opening pywb sees: its banner page, the archived page inside its replay frame."""

    async def content_frame(page: Any, original: str) -> Any:
        await page.goto(replay.url(original, ""), wait_until="load")
        for _ in range(100):
            for frame in page.frames:
                if "mp_/" in frame.url:
                    await frame.wait_for_load_state("load")
                    return frame
            await page.wait_for_timeout(100)
        raise AssertionError(f"no replay frame in {[f.url for f in page.frames]}")

    async def render() -> dict[str, Any]:
        context = await browser.new_context()
        try:
            page = await context.new_page()
            article = await content_frame(page, replay.site.redirect_start)
            seen = {
                "article_url": article.url,
                "heading": await article.inner_text("h1"),
                "image_width": await article.evaluate("document.getElementById('pic').naturalWidth"),
                "script_ran": await article.evaluate("document.body.dataset.ran || null"),
            }
            feed = await content_frame(page, replay.site.demo_feed)
            seen["feed_title"] = await feed.title()
            seen["posts"] = await feed.locator("article.post").count()
            seen["images_decoded"] = await feed.evaluate(
                "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length"
            )
            seen["images"] = await feed.evaluate("document.images.length")
            return seen
        finally:
            await context.close()

    seen = run(render())
    assert seen["article_url"] == replay.url(replay.site.final_page, "mp_")  # redirects followed in replay
    assert seen["heading"] == "Market stall report"
    assert seen["image_width"] == 2  # the archived PNG decoded: its real width, not the 40 of the attribute
    assert seen["script_ran"] == "yes"
    assert seen["feed_title"].startswith("Larkfield Commons")
    assert seen["posts"] >= 3
    assert seen["images"] >= 5 and seen["images_decoded"] == seen["images"]
