"""Pop-ups: their document and every exchange, recorded before PageWatch closes them.

A pop-up cannot be held before it runs by a session of ours (see attach.py): the recorder attaches to it as soon
as the browser reports it, but its first requests (its own document, a fetch made at once) may have left before
that. Playwright's own session of the pop-up, though, is ready before the pop-up runs (Playwright holds every new
page for its set-up, and the browser lets a ``window.open`` page run when the first session releases it). So
``EarlyRequests`` listens to the context's finished and failed requests as Playwright reports them, and before
a pop-up is closed every exchange of it that no session of ours recorded is written from Playwright's account:
request and response heads as Playwright received them from the browser, the body as the browser kept it. Each
such exchange says so in its summary (``detail``), so nothing in the WARC claims more than was seen.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import BrowserContext, Page, Request, Response
from playwright.async_api import Error as PlaywrightError

from evicap.bundle import layout
from evicap.bundle.hashing import write_bytes
from evicap.bundle.model import Artifact
from evicap.capture.flows import Flow, Hop
from evicap.capture.pagewatch import POPUP_LOAD, RecordPopup
from evicap.capture.recorder import NetworkRecorder
from evicap.capture.uris import evicap_uri
from evicap.capture.warc import WarcWriter
from evicap.errors import first_line

FROM_PLAYWRIGHT = "from Playwright's session of the pop-up (it ran before a session of ours was attached)"
UNNAMED = "the pop-up closed before its target id could be read"
# Bodies of pop-up requests held in memory until their pop-up is recorded, at most; past it they are asked for
# again when written (Chromium still has them unless the pop-up closed).
EARLY_BODY_BUDGET = 64 * 1024 * 1024
# Playwright names resource types in lower case; CDP (and the rest of the manifest) as below.
RESOURCE_TYPES = {
    "document": "Document", "stylesheet": "Stylesheet", "image": "Image", "media": "Media", "font": "Font",
    "script": "Script", "texttrack": "TextTrack", "xhr": "XHR", "fetch": "Fetch", "eventsource": "EventSource",
    "websocket": "WebSocket", "manifest": "Manifest", "ping": "Ping", "cspviolationreport": "CSPViolationReport",
    "preflight": "Preflight", "prefetch": "Prefetch", "signedexchange": "SignedExchange", "other": "Other",
}


@dataclass
class Observed:
    """One exchange of a pop-up as Playwright reported it, ready to be written."""

    hop: Hop
    resource_type: str | None
    in_main_frame: bool
    post_data: bytes | None
    body: bytes | None
    truncated: str | None = None
    outcome: str = "recorded"
    detail: str = FROM_PLAYWRIGHT
    later: Request | None = None  # body not held (over EARLY_BODY_BUDGET): read when written, if still there


@dataclass
class EarlyRequests:
    """Every finished or failed request of the context's pop-ups, as Playwright's sessions saw them."""

    main: Page  # the captured page: its own requests are the recorder's alone
    max_body_size: int | None
    _pending: dict[Page, list[asyncio.Task[Observed | None]]] = field(default_factory=dict)
    _held: int = 0  # body bytes held in memory until their pop-up is recorded

    def attach(self, context: BrowserContext) -> None:
        context.on("requestfinished", lambda request: self._observe(request, None))
        context.on("requestfailed", lambda request: self._observe(request, request.failure or "failed"))

    def _observe(self, request: Request, failure: str | None) -> None:
        try:
            page = request.frame.page
        except PlaywrightError:  # a worker's request: no frame, not a pop-up's document or fetch
            return
        if page is self.main or request.url.split(":", 1)[0] not in ("http", "https"):
            return
        task = asyncio.ensure_future(self._read(request, page, failure))
        self._pending.setdefault(page, []).append(task)

    async def _read(self, request: Request, page: Page, failure: str | None) -> Observed | None:
        try:
            headers = await request.headers_array()
            response = await request.response()
            started = float(request.timing.get("startTime") or -1)  # ms since the epoch; -1 when unknown
            wall = started / 1000 if started > 0 else None
            hop = Hop(request.url, request.method, {"headers": _joined(headers)}, wall)
            observed = Observed(hop, RESOURCE_TYPES.get(request.resource_type, "Other"),
                                request.frame == page.main_frame, request.post_data_buffer, None)
            if response is None:
                observed.outcome, observed.detail = "failed", f"{failure or 'no response'}; {FROM_PLAYWRIGHT}"
                return observed
            address = await response.server_addr()
            hop.response = {
                "url": response.url,
                "status": response.status,
                "statusText": response.status_text,
                "headers": _joined(await response.headers_array()),
                "remoteIPAddress": address["ipAddress"] if address else None,
            }
            await self._body(observed, response)
            self._limit(observed)
            if observed.body is not None and self._held + len(observed.body) > EARLY_BODY_BUDGET:
                observed.body, observed.later = None, request  # memory stays bounded: read again when written
            self._held += len(observed.body or b"")
            if failure is not None and observed.outcome == "recorded":
                observed.outcome, observed.truncated = "truncated", "disconnect"
                observed.detail = f"{failure}; {FROM_PLAYWRIGHT}"
            return observed
        except PlaywrightError:  # the pop-up closed under us: what the recorder's own sessions saw stays
            return None

    @staticmethod
    async def _body(observed: Observed, response: Response) -> None:
        try:
            observed.body = await response.body()
        except PlaywrightError as exc:  # a redirect hop has none; the browser may not have kept it
            observed.body = b""
            if not 300 <= response.status < 400:
                observed.outcome, observed.truncated = "no-body", "unspecified"
                observed.detail = f"the browser did not give the body: {first_line(exc)}; {FROM_PLAYWRIGHT}"

    def _release(self, observed: Observed) -> None:
        if observed.later is None:
            self._held -= len(observed.body or b"")
        observed.body = None

    def _limit(self, observed: Observed) -> None:
        limit = self.max_body_size
        if limit is not None and observed.body is not None and len(observed.body) > limit:
            observed.body, observed.truncated = observed.body[:limit], "length"
            observed.outcome = "truncated"
            observed.detail = f"body cut at max_body_size ({limit} bytes); {FROM_PLAYWRIGHT}"

    @staticmethod
    async def target_of(popup: Page) -> str | None:
        """The pop-up's target id (its exchanges are linked to it), or None when it is already gone."""
        try:
            cdp = await popup.context.new_cdp_session(popup)
        except PlaywrightError:
            return None
        try:
            return str((await cdp.send("Target.getTargetInfo"))["targetInfo"]["targetId"])
        except PlaywrightError:
            return None
        finally:
            await _detach(cdp)

    async def write(self, popup: Page, target: str | None, recorder: NetworkRecorder, timeout: float) -> int:
        """Write every exchange of ``popup`` (target id ``target``) that no session of ours recorded; returns
        how many. A pop-up that closed before its id could be read has its exchanges written without a target,
        and their detail says so."""
        tasks = self._pending.get(popup, [])
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.1, timeout))
        below = _below(recorder, target) if target is not None else {None}
        seen = Counter((x.method, x.url) for x in recorder.exchanges if x.target in below)
        written = 0
        for task in tasks:
            observed = task.result() if task.done() and not task.cancelled() else None
            if observed is None:
                continue
            key = (observed.hop.method, observed.hop.url)
            if seen[key] > 0:  # a session of ours recorded it: that record stands
                seen[key] -= 1
                self._release(observed)
                continue
            if observed.later is not None:  # its body was not held: asked for now, one at a time
                try:
                    response = await observed.later.response()
                    if response is not None:
                        await self._body(observed, response)
                        self._limit(observed)
                except PlaywrightError as exc:
                    observed.body, observed.outcome, observed.truncated = b"", "no-body", "unspecified"
                    observed.detail = f"the browser did not give the body: {first_line(exc)}; {FROM_PLAYWRIGHT}"
            detail = observed.detail if target is not None else f"{observed.detail}; {UNNAMED}"
            # The flow's channel is never asked anything: the exchange is written as Playwright reported it.
            flow = Flow(f"playwright:{written}", observed.resource_type,
                        target if observed.in_main_frame else None, recorder.page, target)
            flow.hops.append(observed.hop)
            flow.post_data = observed.post_data
            await recorder.write_observed(flow, observed.body, truncated=observed.truncated,
                                          outcome=observed.outcome, detail=detail)
            self._release(observed)
            written += 1
        return written


def _joined(headers: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Playwright's header array as a CDP header dict (repeated names joined by newlines, as CDP does)."""
    joined: dict[str, str] = {}
    for item in headers:
        name, value = str(item["name"]), str(item["value"])
        joined[name] = f"{joined[name]}\n{value}" if name in joined else value
    return joined


def _below(recorder: NetworkRecorder, target: str) -> set[str | None]:
    """The pop-up's target and every target attached below it (its frames, its workers)."""
    found: set[str | None] = {target}
    grew = True
    while grew:
        grew = False
        for record in recorder.targets:
            if record.parent in found and record.target_id not in found:
                found.add(record.target_id)
                grew = True
    return found


async def _detach(cdp: Any) -> None:
    try:
        await cdp.detach()
    except PlaywrightError:
        pass


def popup_recorder(
    *,
    capture_id: str,
    scrubber: Any,
    add_artifact: Callable[[Artifact], None],
    recorder: NetworkRecorder,
    early: EarlyRequests,
    staging: Any,
    warc: WarcWriter,
    until: float,
) -> RecordPopup:
    """Records each pop-up before PageWatch closes it: its exchanges (the recorder's sessions, and what Playwright
    saw before they were attached) and its document as it stood (artifacts/popup-N.html, also in the WARC)."""
    count = 0

    async def record(popup: Page) -> dict[str, Any]:
        nonlocal count
        count += 1
        name = f"popup-{count}"
        target = await early.target_of(popup)  # first, while it is surely open
        left = min(POPUP_LOAD, max(1.0, until - time.monotonic()))
        try:
            await popup.wait_for_load_state("load", timeout=left * 1000)
            await popup.wait_for_load_state("networkidle", timeout=min(3.0, left) * 1000)
        except PlaywrightError:
            pass
        await recorder.settle(min(3.0, left))  # its bodies are read before closing it takes them away
        backfilled = await early.write(popup, target, recorder, min(3.0, left))
        html = await asyncio.wait_for(popup.content(), max(1.0, left))
        rel = f"{layout.ARTIFACTS_DIR}/{name}.html"
        body = html.encode("utf-8")
        if scrubber is not None:  # safety (issue 12)
            body = scrubber.scrub_bytes(body, rel)
        digest = write_bytes(staging / rel, body)
        uri = evicap_uri(capture_id, f"{name}.html")
        await warc.write_resource(uri, "text/html; charset=utf-8", body)
        add_artifact(Artifact(rel, "popup-dom", "text/html; charset=utf-8", digest, warc_record_uri=uri,
                              description=f"document of pop-up {popup.url} before it was closed"))
        return {"url": popup.url, "document": rel, "target": name, "exchanges_from_playwright": backfilled}

    return record
