"""NetworkRecorder: every HTTP exchange of the capturing page, from CDP events to WARC records.

One ``Flow`` per CDP requestId; a redirect reuses the requestId, so a flow holds one ``Hop`` per redirect hop.
A flow is written (request + response record per hop) once its body is known: after ``loadingFinished`` (small
bodies by ``Network.getResponseBody``), after a Fetch stream (large ones, see streaming.py), after
``loadingFailed``, or at ``drain()`` for whatever is still open. Nothing is dropped silently: every flow ends as
an ExchangeSummary, and every failure or truncation also as a CaptureWarning.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import CDPSession, Page
from playwright.async_api import Error as PlaywrightError

from evicap.bundle.model import CaptureWarning
from evicap.capture import httpheads
from evicap.capture.flows import (
    Event,
    Flow,
    Hop,
    StreamedBody,
    body_shortfall,
    match_response_extra,
    nth,
    update_navigation,
)
from evicap.capture.httpheads import Redactor
from evicap.capture.options import CaptureOptions
from evicap.capture.types import CertificateChain, ExchangeSummary, Navigation
from evicap.capture.warc import HttpMessage, WarcWriter
from evicap.errors import first_line

QUIET_SECONDS = 1.0  # drain stops waiting for open exchanges after this long without network events


MAX_LISTED_HOPS = 100  # redirect hops listed in the manifest; a refresh loop is cut in the middle


class NetworkRecorder:
    """Records the page's network traffic into ``warc``. Call ``start()`` before navigating."""

    def __init__(self, cdp: CDPSession, warc: WarcWriter, spool_dir: Path, options: CaptureOptions) -> None:
        self.cdp = cdp
        self.warc = warc
        self.spool_dir = spool_dir
        self.options = options
        self.navigation = Navigation(requested_url="")
        self.certificates: dict[str, CertificateChain] = {}
        self.exchanges: list[ExchangeSummary] = []
        self.warnings: list[CaptureWarning] = []
        self._redactor = Redactor(options.keep_secrets)
        self._flows: dict[str, Flow] = {}
        self._early_extras: dict[str, tuple[list[Event], list[Event]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main_frame: str | None = None
        self._nav_flow: Flow | None = None  # the first main-frame document: the URL asked for
        self._stopped = False  # set when drain() stops the page: later cancellations are ours
        self._documents: dict[str, Flow] = {}  # main-frame document flows by loader id
        self._committed: list[str] = []  # loader ids of the documents the main frame showed, in order
        self._nav_reasons: dict[str, str] = {}  # URL the page moved itself to -> Chromium's reason
        self._not_kept: dict[str, tuple[str | None, str | None]] = {}  # URL -> (frame, type) of bodies lost
        self._cert_origins: set[str] = set()
        self._spool_counter = 0
        self._last_event = 0.0
        self.streaming: Any = None  # streaming.FetchStreamer, set in start()

    @property
    def redactions(self) -> list[str]:
        return self._redactor.summary()

    @property
    def redactor(self) -> Redactor:
        return self._redactor

    @property
    def main_frame(self) -> str | None:
        return self._main_frame

    def all_flows(self) -> list[Flow]:
        return list(self._flows.values())

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe and enable Network (and Fetch for large bodies) before the first navigation."""
        from evicap.capture.streaming import FetchStreamer

        self.spool_dir.mkdir(parents=True, exist_ok=True)
        handlers = {
            "Network.requestWillBeSent": self._on_request,
            "Network.requestWillBeSentExtraInfo": self._on_request_extra,
            "Network.responseReceived": self._on_response,
            "Network.responseReceivedExtraInfo": self._on_response_extra,
            "Network.loadingFinished": self._on_finished,
            "Network.loadingFailed": self._on_failed,
            "Page.frameNavigated": self._on_frame_navigated,
            "Page.frameRequestedNavigation": self._on_navigation_requested,
        }
        for name, handler in handlers.items():
            self.cdp.on(name, handler)
        tree = await self.cdp.send("Page.getFrameTree")
        self._main_frame = tree["frameTree"]["frame"]["id"]
        # Bodies must stay retrievable until we ask for them: raise the per-resource and total buffers.
        await self.cdp.send(
            "Network.enable",
            {"maxTotalBufferSize": 512 * 1024 * 1024, "maxResourceBufferSize": 64 * 1024 * 1024},
        )
        await self.cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        await self.cdp.send("Page.enable")  # frameNavigated: which document the main frame shows
        self.streaming = FetchStreamer(self)
        await self.streaming.enable()

    async def complete_media(self, page: Page | None = None, timeout: float = 60.0) -> None:
        """Re-fetch whole every video/audio the page only loaded as 206 ranges, and every GET body the browser
        did not keep for us (media.py). The page's own exchanges stay in the WARC as they happened.

        ``page`` is accepted for the session's call shape; the frames come from CDP events.
        """
        from evicap.capture.media import ranged_media, refetch_whole

        await self._settle(min(timeout, 5.0))
        wanted = [(url, frame, "ranged media", "Media") for url, frame in ranged_media(self).items()]
        wanted += [(url, frame, "a body the browser did not keep", kind or "Other")
                   for url, (frame, kind) in self._not_kept.items()]
        for url, frame_id, what, kind in wanted:
            await refetch_whole(self, url, frame_id, what=what, kind=kind, timeout=timeout)

    async def _settle(self, timeout: float) -> None:
        """Wait for pending work and open exchanges; give up on open ones after QUIET_SECONDS without events
        (long-polls and streams never finish) or at ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=min(0.05, max(0.0, deadline - loop.time())))
                continue
            open_flows = any(not flow.done for flow in self._flows.values())
            if not open_flows or loop.time() - self._last_event > QUIET_SECONDS:
                return
            await asyncio.sleep(0.05)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait up to ``timeout`` s for bodies in flight; then stop the page where it is, and record whatever is
        still open as incomplete.

        Stopping (``Page.stopLoading``) freezes the document for the snapshots that follow: a meta refresh or a
        script that keeps navigating would otherwise pull the page from under every one of them.
        """
        await self._settle(timeout)
        self._stopped = True
        with contextlib.suppress(PlaywrightError):
            if self.streaming is not None:
                await self.streaming.freeze()  # no new document from here on...
            await self.cdp.send("Page.stopLoading")  # ...and none half-loaded, nor a refresh pending
        await self._settle(min(timeout, 1.0))  # the cancellations it causes arrive as loadingFailed events
        for flow in list(self._flows.values()):
            if not flow.done:
                await self._write_flow(
                    flow,
                    None,
                    truncated="unspecified",
                    outcome="aborted",
                    detail="still loading when the capture ended",
                )
        self._settle_navigation()
        if self.spool_dir.exists() and not any(self.spool_dir.iterdir()):
            shutil.rmtree(self.spool_dir, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.warn("recorder-error", f"network recorder error: {type(exc).__name__}: {exc}")

    def warn(self, code: str, message: str, url: str | None = None) -> None:
        self.warnings.append(CaptureWarning(code, message, url))

    def new_spool_path(self) -> Path:
        self._spool_counter += 1
        return self.spool_dir / f"body-{self._spool_counter:06d}"

    def flow(self, request_id: str) -> Flow | None:
        return self._flows.get(request_id)

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.cdp.send(method, params or {})
        return result

    # -- CDP events (synchronous: state changes happen in event order) --------------------------------------

    def _touch(self) -> None:
        self._last_event = asyncio.get_running_loop().time()

    def _on_request(self, event: Event) -> None:
        self._touch()
        url = event["request"]["url"]
        if urlsplit(url).scheme not in ("http", "https"):
            return
        rid = event["requestId"]
        hop = Hop(url, event["request"].get("method", "GET"), event["request"], event.get("wallTime"))
        flow = self._flows.get(rid)
        if flow is not None and event.get("redirectResponse") and flow.hops:
            flow.hops[-1].response = event["redirectResponse"]
            flow.hops.append(hop)
            return
        flow = Flow(rid, event.get("type"), event.get("frameId"))
        flow.hops.append(hop)
        requests, responses = self._early_extras.pop(rid, ([], []))
        flow.request_extras, flow.response_extras = requests, responses
        self._flows[rid] = flow
        if event["request"].get("hasPostData"):
            self.spawn(self._fetch_post_data(flow, event["request"]))
        if event.get("type") == "Document" and event.get("frameId") == self._main_frame:
            self._documents[str(event.get("loaderId") or rid)] = flow
            if self._nav_flow is None:
                self._nav_flow = flow
                self.navigation.requested_url = url

    def _on_navigation_requested(self, event: Event) -> None:
        if event.get("frameId") == self._main_frame and event.get("url"):
            self._nav_reasons.setdefault(str(event["url"]), str(event.get("reason") or "other"))

    def _on_frame_navigated(self, event: Event) -> None:
        frame = event.get("frame") or {}
        loader = frame.get("loaderId")
        main = frame.get("id") == self._main_frame and not frame.get("parentId")
        if main and isinstance(loader, str) and loader not in self._committed:
            self._committed.append(loader)

    def _settle_navigation(self) -> None:
        """The navigation once the page is done: the URL asked for, then every document the main frame went on
        to show. A page that keeps moving itself on (a refresh loop) is listed by its first and last hops."""
        if self._nav_flow is None:
            return
        shown = [self._documents[loader] for loader in self._committed if loader in self._documents]
        if not shown or (shown[0] is not self._nav_flow and self._nav_flow.hops[-1].response is not None):
            shown = [self._nav_flow, *(doc for doc in shown if doc is not self._nav_flow)]
        update_navigation(self.navigation, shown, self._nav_reasons)
        hops = self.navigation.redirects
        if len(hops) > MAX_LISTED_HOPS:
            keep = MAX_LISTED_HOPS // 2
            self.navigation.redirects = hops[:keep] + hops[-keep:]
            if not any(w.code == "navigation-loop" for w in self.warnings):  # drain may run twice: said once
                self.warn(
                    "navigation-loop",
                    f"the page moved on {len(hops)} times; target.redirects lists the first and last {keep} hops "
                    "(every exchange is in the WARC)",
                    self.navigation.requested_url,
                )

    def _extras(self, rid: str) -> tuple[list[Event], list[Event]]:
        flow = self._flows.get(rid)
        if flow is not None:
            return flow.request_extras, flow.response_extras
        return self._early_extras.setdefault(rid, ([], []))

    def _on_request_extra(self, event: Event) -> None:
        self._touch()
        self._extras(event["requestId"])[0].append(event)

    def _on_response_extra(self, event: Event) -> None:
        self._touch()
        self._extras(event["requestId"])[1].append(event)

    def _on_response(self, event: Event) -> None:
        self._touch()
        flow = self._flows.get(event["requestId"])
        if flow is None or not flow.hops:
            return
        flow.hops[-1].response = event["response"]
        if event.get("type"):
            flow.resource_type = event["type"]
        self._maybe_certificate(event["response"])

    def _on_finished(self, event: Event) -> None:
        self._touch()
        flow = self._flows.get(event["requestId"])
        if flow is not None and not flow.done:
            self.spawn(self._finish(flow, int(event.get("encodedDataLength") or 0)))

    def _on_failed(self, event: Event) -> None:
        self._touch()
        flow = self._flows.get(event["requestId"])
        if flow is not None and not flow.done:
            self.spawn(self._fail(flow, event))

    # -- bodies and records ----------------------------------------------------------------------------------

    async def _fetch_post_data(self, flow: Flow, request: Event) -> None:
        entries = request.get("postDataEntries")
        if entries and all("bytes" in e for e in entries):
            flow.post_data = b"".join(base64.b64decode(e["bytes"]) for e in entries)
            return
        with contextlib.suppress(PlaywrightError):
            result = await self.send("Network.getRequestPostData", {"requestId": flow.request_id})
            data = result.get("postData", "")
            flow.post_data = base64.b64decode(data) if result.get("base64Encoded") else data.encode()

    async def _finish(self, flow: Flow, received: int = 0) -> None:
        if flow.stream is not None:
            streamed = await flow.stream
            await self._write_streamed(flow, streamed)
            return
        final = flow.hops[-1]
        status = int((final.response or {}).get("status") or 0)
        if final.response is None or status in (204, 304) or final.method == "HEAD":
            await self._write_flow(flow, b"" if final.response is not None else None)
            return
        try:
            result = await self.send("Network.getResponseBody", {"requestId": flow.request_id})
        except PlaywrightError as exc:
            await self._write_flow(
                flow,
                b"",
                truncated="unspecified",
                outcome="no-body",
                detail=f"browser did not give the body: {first_line(exc)}",
            )
            return
        body = result.get("body", "")
        data = base64.b64decode(body) if result.get("base64Encoded") else body.encode("utf-8")
        shortfall = body_shortfall(final.response, len(data), received, exact=bool(result.get("base64Encoded")))
        if shortfall is not None:
            await self._write_flow(flow, data, truncated="length", outcome="truncated", detail=shortfall)
            if status == 200 and final.method == "GET":
                self._not_kept.setdefault(final.url, (flow.frame_id, flow.resource_type))
            return
        limit = self.options.max_body_size
        if limit is not None and len(data) > limit:
            await self._write_flow(
                flow,
                data[:limit],
                truncated="length",
                outcome="truncated",
                detail=f"body cut at max_body_size ({limit} bytes)",
            )
            return
        await self._write_flow(flow, data)

    async def _fail(self, flow: Flow, event: Event) -> None:
        if flow.stream is not None:  # we took the body ourselves; the failure the page saw is ours
            await self._write_streamed(flow, await flow.stream)
            return
        error = event.get("errorText") or "failed"
        blocked = event.get("blockedReason") or event.get("corsErrorStatus", {}).get("corsError")
        if self._stopped and (event.get("canceled") or "ERR_ABORTED" in error):
            outcome, detail = "aborted", "stopped by evicap when the capture ended"
        elif event.get("canceled"):
            outcome, detail = "aborted", f"canceled by the browser ({error})"
        elif blocked:
            outcome, detail = "blocked", f"{error} (blocked: {blocked})"
        else:
            outcome, detail = "failed", error
        has_response = flow.hops[-1].response is not None
        if flow is self._nav_flow:
            self.navigation.error = error
        await self._write_flow(
            flow,
            b"" if has_response else None,
            truncated="disconnect" if has_response else None,
            outcome="truncated" if has_response else outcome,
            detail=detail,
        )

    async def _write_streamed(self, flow: Flow, streamed: StreamedBody) -> None:
        outcome = "truncated" if streamed.truncated else "recorded"
        if streamed.withheld:
            self.warn("body-withheld", f"{flow.hops[-1].url}: {streamed.detail}", flow.hops[-1].url)
        try:
            await self._write_flow(
                flow,
                streamed.path if streamed.path else b"",
                size=streamed.size,
                truncated=streamed.truncated,
                outcome=outcome,
                detail=streamed.detail,
            )
        finally:
            if streamed.path is not None:
                streamed.path.unlink(missing_ok=True)

    async def _write_flow(
        self,
        flow: Flow,
        body: bytes | Path | None,
        *,
        size: int | None = None,
        truncated: str | None = None,
        outcome: str = "recorded",
        detail: str | None = None,
    ) -> None:
        """Request + response records for every hop; only the last hop carries ``body``."""
        if flow.done:
            return
        flow.done = True
        if flow.paused is not None and flow.hops and flow.hops[-1].response is None:
            # Taking the body stream suppresses responseReceived (downloads): rebuild the response from the
            # paused event. CDP does not tell us the server address in that case.
            paused = flow.paused
            flow.hops[-1].response = {
                "url": flow.hops[-1].url,
                "status": paused.get("responseStatusCode"),
                "statusText": paused.get("responseStatusText"),
                "headers": {h["name"]: h["value"] for h in paused.get("responseHeaders") or []},
            }
        for index, hop in enumerate(flow.hops):
            last = index == len(flow.hops) - 1
            hop.request_extra = nth(flow.request_extras, index)
            hop.response_extra = match_response_extra(flow.response_extras, index, hop.response)
            hop_body: bytes | Path | None = body if last else (b"" if hop.response is not None else None)
            hop_size = size if (last and size is not None) else (len(hop_body) if isinstance(hop_body, bytes) else 0)
            await self._write_hop(
                flow,
                hop,
                hop_body,
                hop_size,
                truncated if last else None,
                outcome if last else "recorded",
                detail if last else None,
            )

    async def _write_hop(
        self,
        flow: Flow,
        hop: Hop,
        body: bytes | Path | None,
        size: int,
        truncated: str | None,
        outcome: str,
        detail: str | None,
    ) -> None:
        response = hop.response
        protocol = (response or {}).get("protocol")
        if response is None and hop.request_extra is None:
            # The request never went on the wire (refused before sending, blocked): no record claims it did.
            self._summarise(flow, hop, None, outcome, detail, None, None)
            return
        raw_request = (hop.request_extra or {}).get("headers") or hop.request.get("headers")
        request = httpheads.request_message(
            hop.method,
            hop.url,
            httpheads.header_list(raw_request),
            protocol,
            flow.post_data if hop is flow.hops[0] else None,
            self._redactor,
        )
        message: HttpMessage | None = None
        if response is not None:
            message = self._response_message(hop, body, size)
        ip = (response or {}).get("remoteIPAddress")
        when = datetime.fromtimestamp(hop.wall_time, UTC) if hop.wall_time else None
        ids = await self.warc.write_exchange(
            hop.url,
            request,
            message,
            date=when,
            ip_address=ip,
            protocols=httpheads.warc_protocols(response),
            truncated=truncated if message else None,
        )
        self._summarise(flow, hop, size if message else None, outcome, detail, ids.request_id, ids.response_id)

    def _response_message(self, hop: Hop, body: bytes | Path | None, size: int) -> HttpMessage:
        response = hop.response or {}
        extra = hop.response_extra or {}
        status_line = None
        text = extra.get("headersText") or response.get("headersText")
        if text:
            status_line, headers = httpheads.parse_headers_text(text)
        elif extra.get("headers"):
            headers = httpheads.header_list(extra["headers"])
        else:
            headers = httpheads.header_list(response.get("headers"))
        return httpheads.response_message(
            int(extra.get("statusCode") or response.get("status") or 0),
            response.get("statusText"),
            headers,
            response.get("protocol"),
            body,
            size,
            self._redactor,
            status_line,
        )

    def _summarise(
        self,
        flow: Flow,
        hop: Hop,
        size: int | None,
        outcome: str,
        detail: str | None,
        request_id: str | None,
        response_id: str | None,
    ) -> None:
        response = hop.response or {}
        status = response.get("status")
        self.exchanges.append(
            ExchangeSummary(
                url=hop.url,
                method=hop.method,
                resource_type=flow.resource_type,
                status=int(status) if status is not None else None,
                remote_ip=response.get("remoteIPAddress"),
                body_size=size,
                outcome=outcome,
                detail=detail,
                request_record=request_id,
                response_record=response_id,
            )
        )
        if outcome != "recorded":
            self.warn(f"exchange-{outcome}", f"{hop.method} {hop.url}: {outcome}: {detail or 'no detail'}", hop.url)

    # -- certificates ----------------------------------------------------------------------------------------

    def _maybe_certificate(self, response: Event) -> None:
        parts = urlsplit(response.get("url", ""))
        if parts.scheme != "https" or not response.get("securityDetails"):
            return
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        if origin in self._cert_origins:
            return
        self._cert_origins.add(origin)
        self.spawn(self._fetch_certificate(origin, response))

    async def _fetch_certificate(self, origin: str, response: Event) -> None:
        try:
            result = await self.send("Network.getCertificate", {"origin": origin})
        except PlaywrightError as exc:
            self.warn("certificate-missing", f"certificate chain of {origin} not available: {first_line(exc)}")
            return
        chain = tuple(base64.b64decode(item) for item in result.get("tableNames", []))
        if not chain:
            self.warn("certificate-missing", f"browser reported no certificate chain for {origin}")
            return
        self.certificates[origin] = CertificateChain(
            origin, chain, dict(response["securityDetails"]), response.get("remoteIPAddress")
        )


