"""Snapshots taken during the quiet window (capture/ahead.py): kept for a still page, taken again for one that
changed after they began, never taken ahead where a frame cannot be watched. Real Chromium, local servers."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from evicap.verify import verify_bundle
from tests.integration.capture_helpers import make_sealing, manifest_of
from tests.integration.test_capture import capture

RED = (220, 20, 20)


@pytest.fixture(scope="module")
def sealing(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_sealing(tmp_path_factory.mktemp("keys"))


def _facts(bundle: str | Path) -> dict[str, Any]:
    return dict(json.loads((Path(bundle) / "artifacts" / "page-facts.json").read_text("utf-8")))


def _shot(bundle: str | Path) -> Image.Image:
    return Image.open(Path(bundle) / "artifacts" / "screenshot-full.png").convert("RGB")


def _red_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), RED).save(out, "PNG")
    return out.getvalue()


def _capture(run: Any, browser: Any, browser_info: Any, sealing: Any, url: str, out: Path) -> Any:
    result = capture(run, browser, browser_info, sealing, url, out, profile="as-loaded")
    assert result.status == "complete", result.error
    assert not (Path(result.bundle) / ".ahead").exists()
    trusted = out.parent / "signer.pub.pem"
    trusted.write_bytes(sealing.signer.public_pem)
    report = verify_bundle(Path(result.bundle), trusted_keys=[trusted])
    assert report.ok, [(c.name, c.reason) for c in report.failures]
    return result


def test_a_still_page_is_photographed_during_the_quiet_window_and_the_files_are_the_bundles(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    http_server.route("/still.png", _red_png(), content_type="image/png")
    url = http_server.route("/still", "<body style='margin:0'><img src=/still.png><p>still page</p></body>")
    result = _capture(run, browser, browser_info, sealing, url, tmp_output)
    facts = _facts(result.bundle)
    assert facts["snapshots"]["ahead"] is True
    assert "ahead_discarded" not in facts["snapshots"]
    assert _shot(result.bundle).getpixel((150, 100)) == RED
    roles = {a["role"] for a in manifest_of(result.bundle)["artifacts"]}
    assert roles >= {"screenshot", "screenshot-viewport", "dom", "mhtml", "pdf", "page-facts"}


def test_a_page_its_timer_changes_after_the_snapshots_began_is_photographed_again(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    """No request at all: only the DOM changes, 150 ms after load, while the first snapshots are being taken.
    Screenshot and DOM must both show the change, from one moment."""
    url = http_server.route(
        "/timer",
        "<body style='margin:0;background:#fff'><div id=box style='width:300px;height:200px'></div>"
        "<p id=caption>before</p><script>addEventListener('load', () => setTimeout(() => {"
        " document.getElementById('box').style.background = 'rgb(220,20,20)';"
        " document.getElementById('caption').textContent = 'after'; }, 150));</script></body>",
    )
    result = _capture(run, browser, browser_info, sealing, url, tmp_output)
    facts = _facts(result.bundle)
    assert facts["snapshots"]["ahead"] is False
    assert "DOM change" in facts["snapshots"]["ahead_discarded"]
    assert _shot(result.bundle).getpixel((150, 100)) == RED
    assert b"after" in (Path(result.bundle) / "artifacts" / "dom.html").read_bytes()


def test_a_change_inside_a_frame_makes_the_snapshots_taken_ahead_stale(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    frame = http_server.route(
        "/inner", "<body style='margin:0'><div id=box style='width:300px;height:200px'></div><script>"
        "parent.addEventListener('load', () => setTimeout(() => {"
        " document.getElementById('box').style.background = 'rgb(220,20,20)'; }, 150));</script></body>")
    url = http_server.route(
        "/outer", f"<body style='margin:0'><iframe src='{frame}' style='border:0;width:300px;height:200px'>"
        "</iframe></body>")
    result = _capture(run, browser, browser_info, sealing, url, tmp_output)
    facts = _facts(result.bundle)
    assert facts["snapshots"]["ahead"] is False
    assert "DOM change" in facts["snapshots"]["ahead_discarded"]
    assert _shot(result.bundle).getpixel((150, 100)) == RED


def test_a_page_with_a_cross_site_frame_is_not_photographed_ahead(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    """With site isolation the frame from another site renders in another process, out of the page session's
    reach: its changes could not be seen, so the page is photographed after the window, as before."""
    http_server.route("/other", "<p>another site</p>")
    frame = http_server.url("/other").replace("127.0.0.1", "localhost")
    url = http_server.route("/cross", f"<p>page</p><iframe src='{frame}'></iframe>")
    result = _capture(run, browser, browser_info, sealing, url, tmp_output)
    facts = _facts(result.bundle)
    assert facts["frame_count"] == 2
    assert facts["snapshots"] == {"began": facts["snapshots"]["began"], "ahead": False}
