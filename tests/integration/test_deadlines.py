"""One deadline for the whole capture: hostile pages end within --timeout plus the sealing margin, keep what they
showed (screenshots included) and say what the deadline cut. The refresh-loop and never-yielding pages run while two
busy loops hold both cores of the machine. Every bundle is read back with warcio."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evicap.capture.options import CaptureOptions
from evicap.capture.session import SEAL_MARGIN
from tests.integration.capture_helpers import capture_sealed, make_sealing, manifest_of, warc_records, warcio_check

VIDEO = bytes(range(256)) * 4096  # 1 MiB of "video"


@pytest.fixture(scope="module")
def sealing(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_sealing(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def cpu_burners() -> Iterator[None]:
    """Two busy loops (sha256sum of an endless stream), one per core of a 2-core machine."""
    burners = [subprocess.Popen("exec sha256sum </dev/zero", shell=True) for _ in range(2)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def capture(run: Any, browser: Any, browser_info: Any, sealing: Any, url: str, out: Path, timeout: float) -> Any:
    options = CaptureOptions(timeout=timeout, case="CASE-D", item="D")
    started = time.monotonic()
    result = run(capture_sealed(browser, url, options, out, browser_info=browser_info, sealing=sealing))
    return result, time.monotonic() - started


def test_videos_that_answer_ranges_but_never_the_whole_file_end_at_the_deadline(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    """Three such videos kept `capture --timeout 10` busy for 185 s: each whole-file re-fetch waited 60 s."""

    def stalled_video(handler: Any) -> None:
        wanted = handler.headers.get("Range")
        if not wanted:
            time.sleep(120)  # the whole file never comes
            return
        start = int(wanted.split("=")[1].split("-")[0] or 0)
        piece = VIDEO[start : start + 65536]
        handler.send_response(206)
        handler.send_header("Content-Type", "video/mp4")
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Range", f"bytes {start}-{start + len(piece) - 1}/{len(VIDEO)}")
        handler.send_header("Content-Length", str(len(piece)))
        handler.end_headers()
        handler.wfile.write(piece)

    for n in (1, 2, 3):
        http_server.route_fn(f"/v{n}.mp4", stalled_video)
    url = http_server.route(
        "/videos", "<h1>three videos</h1>" + "".join(f"<video src=/v{n}.mp4 preload=auto></video>" for n in (1, 2, 3))
    )
    result, elapsed = capture(run, browser, browser_info, sealing, url, tmp_output, timeout=10.0)
    assert elapsed < 10.0 + SEAL_MARGIN, f"took {elapsed:.1f} s"
    assert result.status == "partial" and "deadline" in (result.error or "")
    manifest = manifest_of(result.bundle)
    cut = [w for w in manifest["capture"]["warnings"] if w["code"] == "media-incomplete"]
    assert {w["url"] for w in cut} == {http_server.url(f"/v{n}.mp4") for n in (1, 2, 3)}
    ranges = [r for r in warc_records(result.bundle) if r["type"] == "response" and r["status"] == 206]
    assert ranges and all(r["payload"] for r in ranges)  # the pieces the page got are kept
    assert (Path(result.bundle) / "artifacts" / "screenshot-full.png").stat().st_size > 0
    assert warcio_check(result.bundle).returncode == 0


def test_page_that_reloads_itself_forever_under_cpu_load_ends_within_the_deadline_with_screenshots(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path, cpu_burners: None
) -> None:
    """A zero-second meta refresh to itself, while both cores are busy: the page is stopped where it is before
    the snapshots instead of every snapshot waiting out its limit while the document keeps being replaced."""
    url = http_server.route("/again", '<meta http-equiv="refresh" content="0"><h1>reloading</h1>')
    result, elapsed = capture(run, browser, browser_info, sealing, url, tmp_output, timeout=15.0)
    assert elapsed < 15.0 + SEAL_MARGIN, f"took {elapsed:.1f} s"
    assert result.bundle is not None and result.status in ("complete", "partial"), result.error
    bundle = Path(result.bundle)
    assert b"reloading" in (bundle / "artifacts" / "dom.html").read_bytes()
    assert (bundle / "artifacts" / "screenshot-full.png").stat().st_size > 0
    assert (bundle / "artifacts" / "screenshot-viewport.png").stat().st_size > 0
    manifest = manifest_of(bundle)
    hops = manifest["target"]["redirects"]
    assert 0 < len(hops) <= 100 and manifest["target"]["final_url"] == url
    assert {(h["kind"], h["reason"]) for h in hops} == {("client", "metaTagRefresh")}
    documents = [r for r in warc_records(bundle) if r["type"] == "response" and r["uri"] == url]
    assert len(documents) >= len(hops)  # every reload is in the WARC


def test_page_whose_script_never_yields_under_cpu_load_ends_within_the_deadline_with_screenshots(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path, cpu_burners: None
) -> None:
    url = http_server.route("/busy", "<h1>busy page</h1><script>setTimeout(() => { for (;;) {} }, 300)</script>")
    result, elapsed = capture(run, browser, browser_info, sealing, url, tmp_output, timeout=15.0)
    assert elapsed < 15.0 + SEAL_MARGIN, f"took {elapsed:.1f} s"
    assert result.bundle is not None, result.error
    bundle = Path(result.bundle)
    manifest = manifest_of(bundle)
    assert any(w["code"] == "page-script-stopped" for w in manifest["capture"]["warnings"])
    assert (bundle / "artifacts" / "screenshot-full.png").stat().st_size > 0
    assert (bundle / "artifacts" / "screenshot-viewport.png").stat().st_size > 0
    assert b"busy page" in (bundle / "artifacts" / "dom.html").read_bytes()
