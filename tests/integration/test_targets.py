"""Every target the page creates is recorded, with site isolation on: cross-site frames (127.0.0.1 page, localhost
frame: two sites), dedicated and shared workers, pop-ups, WebSockets, a POST form, a download link, the egress gate.
Real Chromium, real local servers; every assertion reads the WARC back with warcio."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from evicap.capture.options import CaptureOptions
from evicap.capture.websockets import MEDIA_TYPE
from tests.integration.capture_helpers import capture_sealed, make_sealing, manifest_of, warc_records, warcio_check
from tests.wsecho import EchoServer


@pytest.fixture(scope="module")
def sealing(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_sealing(tmp_path_factory.mktemp("keys"))


def capture(run: Any, browser: Any, browser_info: Any, sealing: Any, url: str, out: Path, **opts: Any) -> Any:
    options = CaptureOptions(**{"timeout": 20.0, "case": "CASE-T", "item": "T", **opts})
    return run(capture_sealed(browser, url, options, out, browser_info=browser_info, sealing=sealing))


def bodies(bundle: str, kind: str = "response") -> dict[str, bytes]:
    return {r["uri"]: r["payload"] for r in warc_records(bundle) if r["type"] == kind}


def other_site(url: str) -> str:
    return url.replace("127.0.0.1", "localhost")


def test_cross_site_frame_and_its_requests_are_recorded_from_its_own_process(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    http_server.route("/frame-data", "frame's own fetch", content_type="text/plain")
    http_server.route("/frame-worker.js", "fetch('/frame-worker-data')", content_type="text/javascript")
    http_server.route("/frame-worker-data", "from a worker of the frame", content_type="text/plain")
    frame = other_site(http_server.route(
        "/frame", "<p>cross-site frame</p><script>fetch('/frame-data'); new Worker('/frame-worker.js')</script>"))
    url = http_server.route("/outer", f"<h1>outer</h1><iframe src='{frame}'></iframe>")
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    got = bodies(result.bundle)
    assert b"cross-site frame" in got[frame]
    assert got[other_site(http_server.url("/frame-data"))] == b"frame's own fetch"
    assert got[other_site(http_server.url("/frame-worker-data"))] == b"from a worker of the frame"
    requests = {r["uri"]: r["http"] for r in warc_records(result.bundle) if r["type"] == "request"}
    page_agent = requests[url].get_header("User-Agent")
    assert "Headless" not in page_agent  # the face the page was shown...
    frame_request = requests[other_site(http_server.url("/frame-data"))]
    assert frame_request.get_header("User-Agent") == page_agent  # ...in every process
    targets = manifest_of(result.bundle)["network"]["targets"]
    frames = [t for t in targets if t["type"] == "iframe"]
    assert frames and all(t["attached"] for t in frames)
    workers = [t for t in targets if t["type"] == "worker"]
    assert workers and workers[0]["parent"] == frames[0]["target_id"]  # attached recursively, below the frame
    (linking,) = [r for r in warc_records(result.bundle) if (r["uri"] or "").endswith(":targets.json")]
    links = json.loads(linking["payload"])
    from_frame = [x for x in links["exchanges"] if x["url"] == other_site(http_server.url("/frame-data"))]
    assert from_frame[0]["target"] == frames[0]["target_id"]
    from_worker = [x for x in links["exchanges"] if x["url"] == other_site(http_server.url("/frame-worker-data"))]
    assert from_worker[0]["target"] in {frames[0]["target_id"], workers[0]["target_id"]}
    assert [x["target"] for x in links["exchanges"] if x["url"] == url] == [None]  # the page's own session
    assert warcio_check(result.bundle).returncode == 0


def test_dedicated_and_shared_worker_fetches_are_recorded_with_their_scripts(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    http_server.route("/dw.js", "fetch('/from-dedicated').then(() => postMessage('done'))",
                      content_type="text/javascript")
    http_server.route("/sw.js", "fetch('/shared-first');"  # at once, before any page talks to it
                      "onconnect = (e) => fetch('/from-shared').then(() => e.ports[0].postMessage('ok'))",
                      content_type="text/javascript")
    http_server.route("/shared-first", "shared worker's first fetch", content_type="text/plain")
    http_server.route("/from-dedicated", "dedicated body", content_type="text/plain")
    http_server.route("/from-shared", "shared body", content_type="text/plain")
    url = http_server.route(
        "/workers",
        "<h1>workers</h1><script>new Worker('/dw.js').onmessage = () => document.title += 'D';"
        "const s = new SharedWorker('/sw.js'); s.port.onmessage = () => document.title += 'S'; s.port.start();"
        "</script>",
    )
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    got = bodies(result.bundle)
    assert got[http_server.url("/from-dedicated")] == b"dedicated body"
    assert got[http_server.url("/from-shared")] == b"shared body"
    assert got[http_server.url("/shared-first")] == b"shared worker's first fetch"
    assert b"postMessage" in got[http_server.url("/dw.js")]  # the scripts are whole, not "aborted: still loading"
    assert b"onconnect" in got[http_server.url("/sw.js")]
    manifest = manifest_of(result.bundle)
    kinds = {t["type"] for t in manifest["network"]["targets"] if t["attached"]}
    assert {"worker", "shared_worker"} <= kinds
    # Its script was held in the page's Fetch until the worker's session had its commands: attached before it ran.
    # (Checked by delaying our attach by 1 s: without the hold both of its fetches are missing, with it neither.)
    (shared,) = [t for t in manifest["network"]["targets"] if t["type"] == "shared_worker"]
    assert not shared["attached_late"]
    assert not [w for w in manifest["capture"]["warnings"] if "still" in w["message"] and "/dw.js" in w["message"]]


def test_websocket_handshake_and_every_message_both_ways_are_one_documented_record(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    with EchoServer() as echo:
        url = http_server.route(
            "/chat",
            "<h1>chat</h1><script>const ws = new WebSocket('" + echo.url + "');"
            "ws.binaryType = 'arraybuffer'; let n = 0;"
            "ws.onopen = () => { ws.send('hello évidence'); ws.send(new Uint8Array([0, 1, 2, 255])); };"
            "ws.onmessage = () => { if (++n === 2) document.title = 'echoed'; };</script>",
        )
        result = capture(run, browser, browser_info, sealing, url, tmp_output)
        server_saw = echo.received
    assert result.status == "complete", result.error
    assert (1, "hello évidence".encode()) in server_saw and (2, bytes([0, 1, 2, 255])) in server_saw
    records = warc_records(result.bundle)
    handshake = [r for r in records if r["uri"] == echo.url and r["type"] in ("request", "response")]
    assert [r["type"] for r in handshake] == ["request", "response"]
    # warcio parses HTTP heads of http(s) records only: a ws:// record's block is read as it stands.
    assert handshake[0]["payload"].startswith(b"GET /echo HTTP/1.1\r\n")
    assert b"\r\nUpgrade: websocket\r\n" in handshake[0]["payload"]
    assert handshake[1]["payload"].startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    (messages,) = [r for r in records if r["uri"] == echo.url and r["type"] == "resource"]
    assert messages["headers"].get_header("Content-Type") == MEDIA_TYPE
    assert messages["headers"].get_header("WARC-Concurrent-To") == handshake[1]["headers"].get_header("WARC-Record-ID")
    lines = [json.loads(line) for line in messages["payload"].decode("utf-8").splitlines()]
    said = [(m["direction"], m["opcode"], m.get("text") or base64.b64decode(m.get("data_base64", "")))
            for m in lines if m["event"] == "message"]
    assert ("sent", 1, "hello évidence") in said and ("received", 1, "hello évidence") in said
    assert ("sent", 2, bytes([0, 1, 2, 255])) in said and ("received", 2, bytes([0, 1, 2, 255])) in said
    assert all(m["time"] and m["time"].endswith("Z") for m in lines if m["event"] == "message")
    (listed,) = manifest_of(result.bundle)["network"]["websockets"]
    assert listed["url"] == echo.url and listed["messages"] == 4 and listed["sent"] == 2


def test_popup_document_and_exchanges_are_recorded_before_it_is_closed(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    http_server.route("/popup-data", "the pop-up's own request", content_type="text/plain")
    http_server.route("/popup-later", "a request made later", content_type="text/plain")
    # A pop-up cannot be held for our sessions (capture/attach.py): its document and the fetch it makes at once may
    # leave before they are attached. They are in the WARC all the same, from Playwright's session of the pop-up.
    popup = http_server.route(
        "/popup", "<p>pop-up text</p><script>fetch('/popup-data'); setTimeout(() => fetch('/popup-later'), 300)"
        "</script>"
    )
    url = http_server.route("/opener", f"<h1>opener</h1><script>window.open('{popup}')</script>")
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    got = bodies(result.bundle)
    assert b"pop-up text" in got[popup]  # its document, as the server sent it
    assert got[http_server.url("/popup-data")] == b"the pop-up's own request"
    assert got[http_server.url("/popup-later")] == b"a request made later"
    requests = [r["uri"] for r in warc_records(result.bundle) if r["type"] == "request"]
    for each in (popup, http_server.url("/popup-data"), http_server.url("/popup-later")):
        assert requests.count(each) == 1, each  # recorded once, whichever session saw it
    (document_record,) = [r for r in warc_records(result.bundle) if r["type"] == "response" and r["uri"] == popup]
    when = datetime.fromisoformat(document_record["headers"].get_header("WARC-Date").replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - when).total_seconds()) < 600  # when it was sent, not a made-up date
    manifest = manifest_of(result.bundle)
    (target,) = [t for t in manifest["network"]["targets"] if t["type"] == "page"]
    assert target["attached"] and target["attached_late"]  # said plainly: attached after it started
    (linking,) = [r for r in warc_records(result.bundle) if (r["uri"] or "").endswith(":targets.json")]
    links = {x["url"]: x for x in json.loads(linking["payload"])["exchanges"]}
    assert links[popup]["target"] == links[http_server.url("/popup-data")]["target"] == target["target_id"]
    if "detail" in links[popup]:  # recorded from Playwright's session of the pop-up: said so
        assert "Playwright" in links[popup]["detail"]
    (entry,) = manifest["capture"]["popups"]
    assert entry["url"] == popup and entry["action"] == "recorded and closed"
    document = Path(result.bundle) / entry["document"]
    assert b"pop-up text" in document.read_bytes()
    assert any(a["role"] == "popup-dom" and a["path"] == entry["document"] for a in manifest["artifacts"])
    resources = bodies(result.bundle, "resource")
    assert any(b"pop-up text" in body for uri, body in resources.items() if uri.endswith("popup-1.html"))
    assert warcio_check(result.bundle).returncode == 0


def test_popup_post_form_body_is_recorded_from_its_first_moment(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    def echo_post(handler: Any) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    http_server.route_fn("/popup-post", echo_post)
    url = http_server.route(
        "/opener-post",
        "<h1>opener</h1><form method=post action=/popup-post target=_blank><input name=q value='in a pop-up'>"
        "</form><script>document.forms[0].submit()</script>",
    )
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    assert bodies(result.bundle, "request")[http_server.url("/popup-post")].endswith(b"q=in+a+pop-up")
    assert bodies(result.bundle)[http_server.url("/popup-post")] == b"q=in+a+pop-up"


def test_post_form_body_and_download_link_request_are_recorded(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    def echo_post(handler: Any) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    http_server.route_fn("/submit", echo_post)
    http_server.route("/file.bin", b"\x00download\xff" * 10, content_type="application/octet-stream")
    url = http_server.route(
        "/form",
        "<h1>form</h1><iframe name=sink></iframe><form method=post action=/submit target=sink>"
        "<input name=q value='needle value'></form><a id=dl download href=/file.bin>get</a>"
        "<script>document.forms[0].submit(); document.getElementById('dl').click();</script>",
    )
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    requests = bodies(result.bundle, "request")
    assert requests[http_server.url("/submit")].endswith(b"q=needle+value")
    assert http_server.url("/file.bin") in requests  # the download link's request went out and is recorded


@dataclass(frozen=True)
class Decision:
    allowed: bool
    address: str | None
    rule: str | None


class RefuseForbidden:
    """A gate that refuses every URL whose path starts with /forbidden."""

    async def check(self, url: str) -> Decision:
        if "/forbidden" in url:
            return Decision(False, "127.0.0.1", "test-rule")
        return Decision(True, "127.0.0.1", None)


def test_egress_gate_refuses_requests_of_every_target_before_they_leave(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    http_server.route("/forbidden-worker", "never", content_type="text/plain")
    http_server.route("/forbidden-frame", "never", content_type="text/plain")
    http_server.route("/gw.js", "fetch('/forbidden-worker').catch(() => {})", content_type="text/javascript")
    frame = other_site(http_server.route("/gframe", "<script>fetch('/forbidden-frame').catch(() => {})</script>"))
    url = http_server.route("/gated", f"<h1>gated</h1><iframe src='{frame}'></iframe>"
                            "<script>new Worker('/gw.js')</script>")
    result = capture(run, browser, browser_info, sealing, url, tmp_output, egress=RefuseForbidden())
    assert result.status == "complete", result.error
    assert not [r for r in http_server.requests if r.path.startswith("/forbidden")]  # never reached the server
    manifest = manifest_of(result.bundle)
    blocked = {b["url"]: b for b in manifest["capture"]["egress_blocked"]}
    for refused in (http_server.url("/forbidden-worker"), other_site(http_server.url("/forbidden-frame"))):
        assert blocked[refused]["rule"] == "test-rule"
        assert any(w["code"] == "egress-blocked" and w["url"] == refused for w in manifest["capture"]["warnings"])
    assert "egress" not in manifest["environment"]["options"]


def test_a_shared_workers_refused_request_is_named_because_the_gate_cannot_stop_it(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    """Chromium pauses no request of a shared worker for DevTools: the policy cannot hold it, so the capture says
    so for the worker and names each refused request it made, recorded as it happened (never silent)."""
    http_server.route("/forbidden-shared", "reached", content_type="text/plain")
    http_server.route("/gsw.js", "fetch('/forbidden-shared');", content_type="text/javascript")
    url = http_server.route("/gated-shared", "<h1>gated</h1><script>new SharedWorker('/gsw.js')</script>")
    result = capture(run, browser, browser_info, sealing, url, tmp_output, egress=RefuseForbidden())
    assert result.status == "complete", result.error
    warnings = manifest_of(result.bundle)["capture"]["warnings"]
    assert any(w["code"] == "egress-unenforced" and w["url"] == http_server.url("/gsw.js") for w in warnings)
    refused = http_server.url("/forbidden-shared")
    assert [w for w in warnings if w["code"] == "egress-bypassed" and w["url"] == refused], warnings
    assert bodies(result.bundle)[refused] == b"reached"


def test_a_popups_refused_first_request_is_stopped_or_named(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    """A pop-up runs before our sessions can hold it (capture/attach.py): its document request is refused by the
    gate when ours saw it in time, and otherwise named as having left although the policy refuses it."""
    popup = http_server.route("/forbidden-popup", "<p>pop-up</p>")
    url = http_server.route("/opens-forbidden", f"<h1>opener</h1><script>window.open('{popup}')</script>")
    result = capture(run, browser, browser_info, sealing, url, tmp_output, egress=RefuseForbidden())
    warnings = manifest_of(result.bundle)["capture"]["warnings"]
    named = {w["code"] for w in warnings if w["url"] == popup}
    reached = [r for r in http_server.requests if r.path == "/forbidden-popup"]
    assert named & {"egress-blocked", "egress-bypassed"}, warnings
    if reached:
        assert "egress-bypassed" in named


def test_cross_site_https_frame_certificate_comes_from_the_frames_own_session(
    run: Any, browser: Any, browser_info: Any, sealing: Any, https_server: Any, tmp_output: Path
) -> None:
    frame = other_site(https_server.route("/tls-frame", "<p>frame over TLS</p>"))
    url = https_server.route("/tls-outer", f"<h1>outer</h1><iframe src='{frame}'></iframe>")
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    assert b"frame over TLS" in bodies(result.bundle)[frame]
    chains = json.loads((Path(result.bundle) / "artifacts" / "certificates.json").read_text("utf-8"))
    origins = {o["origin"] for o in chains["origins"]}
    assert origins == {https_server.origin, other_site(https_server.origin)}
    assert not [w for w in manifest_of(result.bundle)["capture"]["warnings"] if w["code"] == "certificate-missing"]


def test_service_worker_registration_is_blocked_and_recorded(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    http_server.route("/offline-sw.js", "self.addEventListener('fetch', () => {})", content_type="text/javascript")
    url = http_server.route(
        "/app", "<h1>app</h1><script>navigator.serviceWorker.register('/offline-sw.js', {scope: '/'})</script>"
    )
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    assert not [r for r in http_server.requests if r.path == "/offline-sw.js"]  # never fetched: blocked
    manifest = manifest_of(result.bundle)
    (attempt,) = manifest["capture"]["service_workers"]
    assert attempt["script_url"] == http_server.url("/offline-sw.js") and attempt["scope"] == "/"
    assert attempt["page_url"] == url
    assert any(w["code"] == "service-worker-blocked" for w in manifest["capture"]["warnings"])
    assert not [t for t in manifest["network"]["targets"] if t["type"] == "service_worker"]


def test_event_stream_still_open_at_the_end_keeps_what_arrived_and_says_so(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    def stream(handler: Any) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for n in range(3):
            event = f"data: tick {n}\n\n".encode()
            handler.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            handler.wfile.flush()
            time.sleep(0.2)
        time.sleep(60)  # never ends within the capture

    http_server.route_fn("/events", stream)
    url = http_server.route(
        "/live-events",
        "<h1>live</h1><script>new EventSource('/events').onmessage = (e) => document.title = e.data</script>",
    )
    result = capture(run, browser, browser_info, sealing, url, tmp_output, timeout=10.0)
    assert result.bundle is not None, result.error
    events = http_server.url("/events")
    (record,) = [r for r in warc_records(result.bundle) if r["type"] == "response" and r["uri"] == events]
    assert record["headers"].get_header("WARC-Truncated") == "time"
    assert b"data: tick 0" in record["payload"] and b"data: tick 2" in record["payload"]
    warnings = manifest_of(result.bundle)["capture"]["warnings"]
    assert any(w["url"] == events and "still open when the capture ended" in w["message"] for w in warnings)


def count_body(handler: Any) -> None:
    """Reads the request body and answers with its length."""
    body = str(len(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)))).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def test_blob_and_file_post_bodies_read_after_the_request_are_in_its_record(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    # Blob and File bodies are not in requestWillBeSent: the recorder asks for them (Network.getRequestPostData),
    # and the request's records wait for the answer (bounded), so a quick response cannot overtake it.
    http_server.route_fn("/blob", count_body)
    http_server.route_fn("/file", count_body)
    url = http_server.route(
        "/posts",
        "<h1>posts</h1><script>fetch('/blob', {method: 'POST', body: new Blob(['blob body'])});"
        "const form = new FormData(); form.append('f', new File(['file content'], 'a.txt'));"
        "fetch('/file', {method: 'POST', body: form});</script>",
    )
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    requests = bodies(result.bundle, "request")
    assert requests[http_server.url("/blob")] == b"blob body"
    assert b"file content" in requests[http_server.url("/file")]
    assert not [w for w in manifest_of(result.bundle)["capture"]["warnings"] if w["code"] == "post-body-missing"]


def test_targets_that_end_at_once_are_named_and_the_popup_action_is_what_happened(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path
) -> None:
    http_server.route("/gone", "<p>closed at once</p>")
    url = http_server.route(
        "/closer",
        "<h1>closer</h1><script>window.open('/gone').close();"
        "new Worker(URL.createObjectURL(new Blob(['close()'])));</script>",
    )
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    manifest = manifest_of(result.bundle)
    targets = manifest["network"]["targets"]
    unattached = [t for t in targets if not t["attached"]]
    named = [w for w in manifest["capture"]["warnings"] if w["code"] == "target-unattached"]
    assert len(named) >= len(unattached) >= 1  # every target we could not record is a warning
    for target in unattached:
        assert target["error"] and any(target["type"] in w["message"] for w in named)
    (entry,) = manifest["capture"]["popups"]
    assert "closed by the page" in entry["action"] or entry["action"] == "recorded and closed"
    assert entry["action"] != "recorded and closed" or "record_error" not in entry  # never "recorded" when it was not


def test_popup_bodies_over_the_memory_budget_are_asked_for_again_when_written(
    run: Any, browser: Any, browser_info: Any, sealing: Any, http_server: Any, tmp_output: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from evicap.capture import popups

    monkeypatch.setattr(popups, "EARLY_BODY_BUDGET", 0)  # no body held in memory until its pop-up is recorded
    popup = http_server.route("/budget-popup", "<p>read when written</p>")
    url = http_server.route("/budget-opener", f"<h1>opener</h1><script>window.open('{popup}')</script>")
    result = capture(run, browser, browser_info, sealing, url, tmp_output)
    assert result.status == "complete", result.error
    assert b"read when written" in bodies(result.bundle)[popup]
