"""The exported WACZ replays in ReplayWeb.page, offline: its npm package's built files (index.html, ui.js, sw.js)
served from 127.0.0.1 with the WACZ beside them, opened in Chromium; the replayed frame shows the captured text.

ReplayWeb.page comes from EVICAP_REPLAYWEBPAGE (a directory holding its sw.js) or `make test`'s
`.replaywebpage/package` (`npm pack replaywebpage`); without either the test is skipped.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from evicap.cli.main import cli


def _replaywebpage() -> Path | None:
    for candidate in (os.environ.get("EVICAP_REPLAYWEBPAGE"),
                      str(Path(__file__).resolve().parents[2] / ".replaywebpage" / "package")):
        if candidate and (Path(candidate) / "sw.js").is_file():
            return Path(candidate)
    return None


RWP = _replaywebpage()
pytestmark = pytest.mark.skipif(RWP is None, reason="ReplayWeb.page not fetched (make test: npm pack replaywebpage)")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def replay_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    assert RWP is not None
    site = tmp_path / "rwp"
    shutil.copytree(RWP, site)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", site
    server.shutdown()
    server.server_close()


def test_exported_wacz_replays_in_replaywebpage(http_server: Any, tmp_path: Path, browser_info: Any, run: Any,
                                                browser: Any, replay_site: tuple[str, Path]) -> None:
    url = http_server.route("/notice", "<title>Notice</title><h1>Lost cat: ginger, answers to Biscuit</h1>")
    out = tmp_path / "evidence"
    result = CliRunner().invoke(cli, ["capture", url, "-o", str(out), "--no-timestamp", "--no-report",
                                      "--browser", browser_info.path], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    http_server.route("/notice", "<title>Notice</title><h1>page changed since</h1>")  # the live site moved on
    (bundle,) = [p for p in out.iterdir() if p.is_dir()]
    origin, site = replay_site
    exported = CliRunner().invoke(cli, ["export", str(bundle), "--format", "wacz", "-o", str(site / "x.wacz")])
    assert exported.exit_code == 0, exported.output

    async def replayed_text() -> str:
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.goto(f"{origin}/?source={quote(origin + '/x.wacz', safe='')}#view=pages&url={quote(url)}")
            for _ in range(120):
                for frame in page.frames:
                    if "/w/" not in frame.url:
                        continue
                    try:
                        text = await frame.evaluate("document.body ? document.body.innerText : ''")
                    except Exception:  # the frame navigated while we read it
                        continue
                    if "Biscuit" in text or "not found in this archive" in text:
                        return str(text)
                await asyncio.sleep(0.5)
            return ""
        finally:
            await context.close()

    text = run(replayed_text())
    assert "Lost cat: ginger, answers to Biscuit" in text, text[:300]
    assert "page changed since" not in text
