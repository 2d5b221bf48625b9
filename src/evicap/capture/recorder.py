"""NetworkRecorder: every exchange of the capturing page and of every target below it, into one WARC.

Sessions: the page's own, and one per out-of-process frame, dedicated or shared worker (attach.py attaches them
before they run). Each session's Network events feed flows (flows.py: one Flow per session and requestId, one Hop
per redirect hop); a flow is written (exchanges.py) once its body is known: after ``loadingFinished`` (small
bodies by ``Network.getResponseBody``), after a Fetch stream (large ones, streaming.py), after ``loadingFailed``,
or at ``drain()`` for whatever is still open (with what had arrived by then). WebSockets go to websockets.py.
Nothing is dropped silently: every flow ends as an ExchangeSummary, and every gap also as a CaptureWarning.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import CDPSession
from playwright.async_api import Error as PlaywrightError

from evicap.bundle.model import CaptureWarning
from evicap.capture.attach import Channel, PageChannel, TargetRecord, TargetTree
from evicap.capture.egress_gate import Blocked, EgressGate
from evicap.capture.exchanges import response_from_paused, write_flow
from evicap.capture.flows import Event, Flow, Hop, StreamedBody, body_shortfall
from evicap.capture.httpheads import Redactor
from evicap.capture.media import Wanted, ranged_media, refetch_whole
from evicap.capture.navigation import MAX_LISTED_HOPS, NavigationTracker
from evicap.capture.options import CaptureOptions
from evicap.capture.streaming import FetchStreamer
from evicap.capture.tls_chains import ChainCollector
from evicap.capture.types import CertificateChain, ExchangeSummary, Navigation
from evicap.capture.warc import WarcWriter
from evicap.capture.websockets import WebSocketLog
from evicap.errors import first_line

QUIET_SECONDS = 1.0  # drain stops waiting for open exchanges after this long without network events
# After the load event the capture waits for the network to be quiet: nothing in flight (in any frame or worker,
# bodies being read included) and no HTTP event for this long, counted from the later of the last HTTP event and
# the load event (docs/architecture.md, "Waiting for quiet"). Playwright's "networkidle" waited a fixed 500 ms
# after its driver saw the last request end, plus the driver's round trips. A request a page starts from its load
# handler, an animation frame, the response of another request or a timer of up to about 300 ms after its
# scripts ran (a polling page's first poll: tests/integration/test_capture.py) is seen within this window.
QUIET_WINDOW = 0.4
# Requests that are open by design and do not hold the quiet wait (as in Playwright's "networkidle"): an event
# stream stays open for as long as the page does. Drain records what arrived of it, marked truncated.
NEVER_QUIET = ("EventSource",)
NETWORK_BUFFERS = {"maxTotalBufferSize": 512 * 1024 * 1024, "maxResourceBufferSize": 64 * 1024 * 1024}
# Network is enabled in these target types; workers have no Page domain and no frames of their own.
PAGE_TYPES = ("page", "iframe")


POST_DATA_SECONDS = 5.0  # how long a flow's records wait for its request body (Network.getRequestPostData)
# How long the page may take, after the freeze, to finish a document already on its way (see drain).
DOCUMENT_SETTLE_SECONDS = 3.0


class NetworkRecorder:
    """Records the page's network traffic into ``warc``. Call ``start()`` before navigating."""

    def __init__(
        self,
        cdp: CDPSession,
        warc: WarcWriter,
        spool_dir: Path,
        options: CaptureOptions,
        *,
        user_agent: Event | None = None,
    ) -> None:
        self.page = PageChannel(cdp)
        # Emulation.setUserAgentOverride params the page was given: every frame of another process gets the same
        self.user_agent = user_agent

        self.warc = warc
        self.spool_dir = spool_dir
        self.options = options
        self.max_body_size = options.max_body_size
        self.gate: EgressGate | None = options.egress
        self.chains = ChainCollector(self.spawn, self.warn, self._certificate_channels)
        self.exchanges: list[ExchangeSummary] = []
        self.warnings: list[CaptureWarning] = []
        self.blocked_requests: list[Blocked] = []
        self.cut_by_deadline: list[str] = []  # URLs whose whole-body re-fetch the deadline stopped
        self.websockets: list[dict[str, Any]] = []
        self.service_workers: list[dict[str, Any]] = []
        self.nav = NavigationTracker()
        self.tree = TargetTree(on_attach=self._attach_target, warn=self.warn, spawn=self.spawn)
        self.sockets = WebSocketLog(self.spool)
        self._redactor = Redactor(options.keep_secrets)
        self._flows: dict[tuple[str, str], Flow] = {}
        self._early_extras: dict[tuple[str, str], tuple[list[Event], list[Event]]] = {}
        # Flows by requestId alone: a frame's document or a worker's script is requested in the parent's session
        # and answered in the new target's, under the same id.
        self._by_id: dict[str, Flow] = {}
        self._streamers: list[FetchStreamer] = []
        self._targets: dict[str, str] = {}  # session key -> target id
        self._ungated: set[str] = set()  # session keys whose requests the gate cannot stop (shared workers)
        self._held: set[str] = set()  # requestIds our Fetch held at the request stage (so the gate judged them)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = False  # set when drain() stops the page: later cancellations are ours
        self._not_kept: dict[str, Wanted] = {}  # GET bodies the browser did not keep, by URL
        self._spool_counter = 0
        self._last_event = 0.0
        self._last_http = 0.0  # last HTTP event (not a WebSocket frame): what quiet() counts from
        self.http_events = 0  # HTTP events so far: snapshots taken ahead are stale once it moves (capture/ahead.py)

    @property
    def navigation(self) -> Navigation:
        return self.nav.navigation

    @property
    def certificates(self) -> dict[str, CertificateChain]:
        """TLS chains by origin (tls_chains.py)."""
        return self.chains.chains

    @property
    def redactions(self) -> list[str]:
        return self._redactor.summary()

    @property
    def targets(self) -> list[TargetRecord]:
        return self.tree.targets

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Enable recording in the page's session and attach to every target below it, before navigating."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        tree = await self.page.send("Page.getFrameTree")
        self.nav.main_frame = tree["frameTree"]["frame"]["id"]
        page = self.page
        page.on("Page.frameNavigated", self.nav.on_navigated)
        page.on("Page.frameRequestedNavigation", self.nav.on_requested)
        await self._enable(page, None, "page")
        await page.send("Page.enable")  # frameNavigated: which document the main frame shows
        await self.tree.watch(page)
        info = (await page.send("Target.getTargetInfo"))["targetInfo"]  # pop-ups, shared workers: the context's
        await self.tree.discover(page, str(info.get("browserContextId")))

    async def _attach_target(self, channel: Channel, record: TargetRecord) -> None:
        if self.user_agent is not None and record.type in PAGE_TYPES:  # one browser, one face, in every process
            await channel.send("Emulation.setUserAgentOverride", self.user_agent)
        if record.type == "shared_worker" and self.gate is not None:
            # Chromium pauses no request of a shared worker for DevTools (neither its own Fetch nor its page's),
            # so the egress policy cannot stop them: each is checked as soon as it is seen, and named if refused.
            self._ungated.add(channel.key)
            self.warn("egress-unenforced", f"shared worker {record.url}: its requests cannot be stopped by the "
                      "egress policy; each one is checked as it leaves and named if the policy refuses it",
                      record.url or None)
        await self._enable(channel, record.target_id, record.type)
        if record.type == "page":  # a pop-up: its frames commit there
            await channel.send("Page.enable")

    async def _enable(self, channel: Channel, target: str | None, kind: str) -> None:
        handlers: dict[str, Callable[[Channel, Event], None]] = {
            "Network.requestWillBeSent": self._on_request,
            "Network.requestWillBeSentExtraInfo": self._on_request_extra,
            "Network.responseReceived": self._on_response,
            "Network.responseReceivedExtraInfo": self._on_response_extra,
            "Network.loadingFinished": self._on_finished,
            "Network.loadingFailed": self._on_failed,
            "Network.webSocketCreated": lambda ch, e: self.sockets.created(ch.key, self._targets.get(ch.key), e),
            "Network.webSocketWillSendHandshakeRequest": lambda ch, e: self.sockets.handshake_request(ch.key, e),
            "Network.webSocketHandshakeResponseReceived": lambda ch, e: self.sockets.handshake_response(ch.key, e),
            "Network.webSocketFrameSent": lambda ch, e: self.sockets.frame(ch.key, e, "sent"),
            "Network.webSocketFrameReceived": lambda ch, e: self.sockets.frame(ch.key, e, "received"),
            "Network.webSocketFrameError": lambda ch, e: self.sockets.error(ch.key, e),
            "Network.webSocketClosed": lambda ch, e: self.sockets.closed(ch.key, e),
        }
        if target is not None:
            self._targets[channel.key] = target
        for name, handler in handlers.items():
            channel.on(name, self._bound(handler, channel, http=not name.startswith("Network.webSocket")))
        # Bodies must stay retrievable until we ask for them: raise the per-resource and total buffers.
        await channel.send("Network.enable", NETWORK_BUFFERS)
        await channel.send("Network.setCacheDisabled", {"cacheDisabled": True})
        streamer = FetchStreamer(channel, self, responses=kind in PAGE_TYPES)
        try:
            await streamer.enable()
        except PlaywrightError:
            # Workers have no Fetch domain: their requests pass the Fetch of the frame that owns them, and their
            # bodies come from Network.getResponseBody.
            return
        self._streamers.append(streamer)

    def _bound(
        self, handler: Callable[[Channel, Event], None], channel: Channel, *, http: bool = True
    ) -> Callable[[Event], None]:
        def on_event(event: Event) -> None:
            self._touch()
            if http:
                self._last_http = self._last_event
                self.http_events += 1
            handler(channel, event)

        return on_event

    async def complete_media(self, deadline: float) -> None:
        """Re-fetch whole every video/audio the page only loaded as 206 ranges, and every GET body the browser
        did not keep for us (media.py), until ``deadline`` (time.monotonic()). The page's own exchanges stay in
        the WARC as they happened."""
        await self._settle(min(_left(deadline), 5.0))
        wanted = ranged_media(self._flows.values(), self.exchanges) + list(self._not_kept.values())
        for item in wanted:
            left = _left(deadline)
            if left <= 0:
                self.cut_by_deadline.append(item.url)
                self.warn("media-incomplete" if item.kind == "Media" else "body-incomplete",
                          f"re-fetch of {item.what} not started: the capture deadline had passed", item.url)
                continue
            if item.frame_id is None:  # a worker's request: fetch it again from the page's main frame
                item = Wanted(item.url, self.page, self.nav.main_frame, item.what, item.kind)
            done = await refetch_whole(item, self.spool(), self.warc, self._redactor,
                                       max_size=self.options.max_media_size, timeout=left)
            self.warnings.extend(done.warnings)
            if done.timed_out:
                self.cut_by_deadline.append(item.url)
            if done.summary is not None:
                self.exchanges.append(done.summary)

    @property
    def busy(self) -> bool:
        """An exchange is in flight (bodies being read included; event streams excepted)."""
        return bool(self._tasks) or any(
            not flow.done and flow.resource_type not in NEVER_QUIET for flow in self._flows.values()
        )

    async def quiet(self, timeout: float, window: float = QUIET_WINDOW) -> bool:
        """Wait until no exchange is in flight (``busy``) and no HTTP event came for ``window`` seconds. False
        when the network did not go quiet within ``timeout`` (long polls, polling)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        self._last_http = max(self._last_http, loop.time())  # called at the load event: the window starts here
        while True:
            now = loop.time()
            busy = self.busy
            if not busy and now - self._last_http >= window:
                return True
            if now >= until:
                return False
            wait = window - (now - self._last_http) if not busy else 0.02
            await asyncio.sleep(max(0.01, min(wait, until - now)))

    async def settle(self, timeout: float) -> None:
        """Wait (up to ``timeout`` s) for the exchanges in flight: a pop-up's, before it is closed."""
        await self._settle(timeout)

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
        still open with what had arrived of it.

        Stopping (``Page.stopLoading``) freezes the document for the snapshots that follow: a meta refresh or a
        script that keeps navigating would otherwise pull the page from under every one of them.
        """
        await self._settle(timeout)
        if not self._stopped:
            # What an open request (event stream, long poll, stalled body) received so far is taken before the
            # page is stopped: stopping cancels it, and a cancelled request's bytes are gone.
            for flow in list(self._flows.values()):
                if not flow.done and flow.stream is None and flow.hops[-1].response is not None:
                    await self._write_open(flow)
            self._stopped = True
            for streamer in self._streamers:  # no new document from here on, in any frame...
                try:
                    await asyncio.wait_for(streamer.freeze(), 2.0)
                except TimeoutError:  # a browser too busy to answer: said, and the capture goes on
                    self.warn("page-not-frozen", "a frame's new documents could not be refused in time (the "
                              "browser did not answer within 2 s); a later navigation may show in the snapshots")
                except PlaywrightError:
                    pass
            await self._document_settled(min(timeout, DOCUMENT_SETTLE_SECONDS))
            with contextlib.suppress(PlaywrightError, TimeoutError):
                await asyncio.wait_for(self.page.send("Page.stopLoading"), 2.0)  # ...nor one half-loaded
        await self._settle(min(timeout, 1.0))  # the cancellations it causes arrive as loadingFailed events
        for flow in list(self._flows.values()):
            if not flow.done:
                await self._write_open(flow)
        self.websockets.extend(await self.sockets.write(self.warc, self._redactor))
        self._settle_navigation()
        if self.spool_dir.exists() and not any(self.spool_dir.iterdir()):
            shutil.rmtree(self.spool_dir, ignore_errors=True)

    async def _document_settled(self, timeout: float) -> None:
        """Before the page is stopped: let a main-frame document that got past the freeze finish loading.

        A page that keeps navigating (a zero-second meta refresh) may have a document request already on its way
        when the freeze starts; stopping the page just after that document committed would leave it empty for
        every snapshot. New documents are refused from the freeze on, so this ends as soon as the main frame's
        document is complete and no main-frame document request is open, or at ``timeout``."""
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        while loop.time() < until:
            loading = any(
                not flow.done and flow.resource_type == "Document" and flow.frame_id == self.nav.main_frame
                for flow in self._flows.values()
            )
            state = None
            with contextlib.suppress(PlaywrightError, TimeoutError):
                result = await asyncio.wait_for(
                    self.page.send("Runtime.evaluate", {"expression": "document.readyState", "returnByValue": True}),
                    max(0.1, until - loop.time()),
                )
                state = result.get("result", {}).get("value")
            if state == "complete" and not loading:
                return
            await asyncio.sleep(0.05)

    async def _write_open(self, flow: Flow) -> None:
        """A request still open at the end (long poll, event stream, stalled body): what arrived, marked cut."""
        if flow.hops[-1].response is None:
            await self._write(flow, None, outcome="aborted", detail="still open when the capture ended (no response)")
            return
        data = b""
        with contextlib.suppress(PlaywrightError, TimeoutError):
            result = await asyncio.wait_for(
                (flow.body_channel or flow.channel).send(
                    "Network.streamResourceContent", {"requestId": flow.request_id}
                ),
                2.0,
            )
            data = base64.b64decode(result.get("bufferedData") or "")
        await self._write(flow, data, truncated="time", outcome="truncated",
                          detail=f"still open when the capture ended; the {len(data)} bytes received by then are kept")

    def _settle_navigation(self) -> None:
        hops = self.nav.settle()
        if hops > MAX_LISTED_HOPS and not any(w.code == "navigation-loop" for w in self.warnings):
            self.warn(
                "navigation-loop",
                f"the page moved on {hops} times; target.redirects lists the first and last {MAX_LISTED_HOPS // 2} "
                "hops (every exchange is in the WARC)",
                self.navigation.requested_url,
            )

    # -- helpers (also the StreamHost the Fetch streamers use) -----------------------------------------------

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.warn("recorder-error", f"network recorder error: {type(exc).__name__}: {exc}")

    def warn(self, code: str, message: str, url: str | None = None) -> None:
        self.warnings.append(CaptureWarning(code, message, url))

    def spool(self) -> Path:
        self._spool_counter += 1
        return self.spool_dir / f"body-{self._spool_counter:06d}"

    def flow_of(self, channel: Channel, request_id: str) -> Flow | None:
        """The flow a Fetch pause in ``channel`` belongs to: a frame's Fetch also pauses its workers' requests."""
        return self._flows.get((channel.key, request_id)) or self._by_id.get(request_id)

    def _network_flow(self, channel: Channel, request_id: str, *, finished: bool = False) -> Flow | None:
        """The flow of a Network event. A frame's document or a worker's script, requested in the parent's
        session, finishes in the new target's session under the same id: the session that saw it finish holds
        its body. (The browser also reports ExtraInfo of a worker's requests to the frame: those change nothing.)"""
        flow = self._flows.get((channel.key, request_id))
        if flow is None:
            flow = self._by_id.get(request_id)
            if flow is None or flow.done:
                return None
            if finished:
                flow.body_channel = channel
        return flow

    def unseen(self, channel: Channel, event: Event) -> Flow | None:
        """A response paused in ``channel``'s Fetch whose request no session reported (a worker that ran before
        its session was ready): a flow built from the Fetch event alone."""
        request = event.get("request") or {}
        url = str(request.get("url") or "")
        rid = str(event.get("networkId") or event.get("requestId"))
        if urlsplit(url).scheme not in ("http", "https"):
            return None
        flow = Flow(rid, event.get("resourceType"), event.get("frameId"), channel, self._targets.get(channel.key))
        flow.hops.append(Hop(url, str(request.get("method") or "GET"), request, None))
        flow.hops[-1].response = {
            "url": url,
            "status": event.get("responseStatusCode"),
            "statusText": event.get("responseStatusText"),
            "headers": {h["name"]: h["value"] for h in event.get("responseHeaders") or []},
        }
        if request.get("postData"):
            flow.post_data = str(request["postData"]).encode("utf-8")
        self._flows[(channel.key, rid)] = flow
        self._by_id[rid] = flow
        return flow

    async def write_observed(self, flow: Flow, body: bytes | None, *, truncated: str | None = None,
                             outcome: str = "recorded", detail: str | None = None) -> None:
        """An exchange no session of ours saw (a pop-up's first moments, popups.py), written from another
        session's account of it; ``detail`` says whose. No gate of ours held it either: a refused one is named."""
        await self._write(flow, body, truncated=truncated, outcome=outcome, detail=detail)
        if self.gate is not None and flow.hops:
            await self._ungated_request(flow.hops[0].url, "a pop-up, before it could be held,")

    def finish(self, flow: Flow) -> None:
        self.spawn(self._finish(flow))

    async def shared_worker_ready(self, url: str) -> None:
        await self.tree.shared_worker_ready(url)

    def held(self, network_id: str) -> None:
        self._held.add(network_id)

    def blocked(self, channel: Channel, refusal: Blocked) -> None:
        self.blocked_requests.append(refusal)
        where = f" (address {refusal.address})" if refusal.address else ""
        self.warn("egress-blocked", f"request refused by the egress policy{where}: {refusal.url} "
                  f"[rule: {refusal.rule or 'unnamed'}]", refusal.url)

    # -- CDP events (synchronous: state changes happen in event order) --------------------------------------

    def _touch(self) -> None:
        self._last_event = asyncio.get_running_loop().time()

    def _on_request(self, channel: Channel, event: Event) -> None:
        url = event["request"]["url"]
        if urlsplit(url).scheme not in ("http", "https"):
            return
        rid = event["requestId"]
        key = (channel.key, rid)
        hop = Hop(url, event["request"].get("method", "GET"), event["request"], event.get("wallTime"))
        known = self._by_id.get(rid)
        if known is not None and known.stream is not None and known.channel is not channel:
            return  # first seen by a frame's Fetch (unseen()): that flow holds it
        flow = self._flows.get(key)
        if flow is not None and event.get("redirectResponse") and flow.hops:
            flow.hops[-1].response = event["redirectResponse"]
            flow.hops.append(hop)
            return
        flow = Flow(rid, event.get("type"), event.get("frameId"), channel, self._targets.get(channel.key))
        flow.hops.append(hop)
        flow.request_extras, flow.response_extras = self._early_extras.pop(key, ([], []))
        self._flows[key] = flow
        self._by_id[rid] = flow
        if event["request"].get("hasPostData"):
            flow.post_read = asyncio.ensure_future(self._fetch_post_data(flow, event["request"]))
            self.spawn(flow.post_read)
        if channel is self.page:
            self.nav.on_document(flow, event)
        if channel.key in self._ungated and self.gate is not None:
            self.spawn(self._ungated_request(url, "a shared worker"))
        flow.speculative = Flow.purpose_of(event["request"])

    def _extras(self, channel: Channel, rid: str) -> tuple[list[Event], list[Event]]:
        flow = self._network_flow(channel, rid)
        if flow is not None:
            return flow.request_extras, flow.response_extras
        return self._early_extras.setdefault((channel.key, rid), ([], []))

    def _on_request_extra(self, channel: Channel, event: Event) -> None:
        self._extras(channel, event["requestId"])[0].append(event)

    def _on_response_extra(self, channel: Channel, event: Event) -> None:
        self._extras(channel, event["requestId"])[1].append(event)

    def _on_response(self, channel: Channel, event: Event) -> None:
        flow = self._network_flow(channel, event["requestId"])
        if flow is None or not flow.hops:
            return
        flow.hops[-1].response = event["response"]
        if event.get("type"):
            flow.resource_type = event["type"]
        self.chains.seen(channel, event["response"])
        if self._bypassed(flow):
            return
        address = event["response"].get("remoteIPAddress")
        if address and self.gate is not None and hasattr(self.gate, "check_address"):
            self.spawn(self._rebinding(flow.hops[-1].url, str(address)))

    async def _rebinding(self, url: str, address: str) -> None:
        """A response from an address the policy refuses although the name was allowed: DNS rebinding. The
        response already arrived, so it stays recorded (it is evidence); the warning names it."""
        decision = await self.gate.check_address(address)  # type: ignore[union-attr]
        if not decision.allowed:
            self.warn("egress-rebinding", f"{url} came from {decision.address} ({decision.rule}) although its name "
                      "was allowed: DNS rebinding?", url)

    async def _ungated_request(self, url: str, who: str) -> None:
        """A request the gate could not hold (a shared worker's, a pop-up's first): it has left; say so when the
        policy refuses it."""
        assert self.gate is not None
        decision = await self.gate.check(url)
        if not decision.allowed:
            self.warn("egress-bypassed", f"{who} requested {url} ({decision.address}, {decision.rule}), which the "
                      "egress policy refuses; it could not be stopped and is recorded as it happened", url)

    def _on_finished(self, channel: Channel, event: Event) -> None:
        flow = self._network_flow(channel, event["requestId"], finished=True)
        if flow is not None and not flow.done:
            self.spawn(self._finish(flow, int(event.get("encodedDataLength") or 0)))

    def _on_failed(self, channel: Channel, event: Event) -> None:
        flow = self._network_flow(channel, event["requestId"])
        if flow is not None and not flow.done:
            self._bypassed(flow)
            self.spawn(self._fail(flow, event))

    def _bypassed(self, flow: Flow) -> bool:
        """A prefetch the browser made on the page's speculation rules passes no DevTools Fetch interception, so
        the gate never held it (one it held was paused first, at the request stage): judge it now it has gone."""
        if flow.speculative is None or self.gate is None or flow.request_id in self._held:
            return False
        self._held.add(flow.request_id)  # judged once, whether it answers or fails
        self.spawn(self._ungated_request(flow.hops[0].url, f"the browser, loading ahead on the page's speculation "
                                                           f"rules ({flow.speculative}),"))
        return True

    # -- bodies and records ----------------------------------------------------------------------------------

    async def _fetch_post_data(self, flow: Flow, request: Event) -> None:
        entries = request.get("postDataEntries")
        if entries and all("bytes" in e for e in entries):
            flow.post_data = b"".join(base64.b64decode(e["bytes"]) for e in entries)
            return
        try:
            result = await flow.channel.send("Network.getRequestPostData", {"requestId": flow.request_id})
        except PlaywrightError as exc:
            url = flow.hops[0].url
            self.warn("post-body-missing", f"{flow.hops[0].method} {url}: the browser did not give the request "
                      f"body ({first_line(exc)}); the request record has none", url)
            return
        data = result.get("postData", "")
        flow.post_data = base64.b64decode(data) if result.get("base64Encoded") else data.encode()

    async def _finish(self, flow: Flow, received: int = 0) -> None:
        if flow.stream is not None:
            await self._write_streamed(flow, await flow.stream)
            return
        response_from_paused(flow)
        final = flow.hops[-1]
        status = int((final.response or {}).get("status") or 0)
        if final.response is None:
            await self._write(flow, None, outcome="no-response",
                              detail="finished, but no session of ours heard its response (target attached late)")
            return
        if status in (204, 304) or final.method == "HEAD":
            await self._write(flow, b"" if final.response is not None else None)
            return
        try:
            result = await (flow.body_channel or flow.channel).send(
                "Network.getResponseBody", {"requestId": flow.request_id}
            )
        except PlaywrightError as exc:
            await self._write(flow, b"", truncated="unspecified", outcome="no-body",
                              detail=f"browser did not give the body: {first_line(exc)}")
            self._keep_whole_later(flow, status)
            return
        body = result.get("body", "")
        data = base64.b64decode(body) if result.get("base64Encoded") else body.encode("utf-8")
        shortfall = body_shortfall(final.response, len(data), received, exact=bool(result.get("base64Encoded")))
        if shortfall is not None:
            await self._write(flow, data, truncated="length", outcome="truncated", detail=shortfall)
            self._keep_whole_later(flow, status)
            return
        limit = self.max_body_size
        if limit is not None and len(data) > limit:
            await self._write(flow, data[:limit], truncated="length", outcome="truncated",
                              detail=f"body cut at max_body_size ({limit} bytes)")
            return
        await self._write(flow, data)

    def _keep_whole_later(self, flow: Flow, status: int) -> None:
        """A GET body the browser did not keep (or give) is fetched again whole by complete_media()."""
        final = flow.hops[-1]
        if status == 200 and final.method == "GET":
            self._not_kept.setdefault(final.url, Wanted(final.url, flow.channel, flow.frame_id,
                                                        "a body the browser did not keep",
                                                        flow.resource_type or "Other"))

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
        if flow is self.nav.first:
            self.navigation.error = error
        await self._write(
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
            await self._write(flow, streamed.path if streamed.path else b"", size=streamed.size,
                              truncated=streamed.truncated, outcome=outcome, detail=streamed.detail)
        finally:
            if streamed.path is not None:
                streamed.path.unlink(missing_ok=True)

    async def _write(
        self,
        flow: Flow,
        body: bytes | Path | None,
        *,
        size: int | None = None,
        truncated: str | None = None,
        outcome: str = "recorded",
        detail: str | None = None,
    ) -> None:
        if flow.done:
            return
        flow.done = True
        if flow.post_read is not None and not flow.post_read.done():  # a blob or file body is read afterwards
            try:
                await asyncio.wait_for(asyncio.shield(flow.post_read), POST_DATA_SECONDS)
            except TimeoutError:
                url = flow.hops[0].url
                self.warn("post-body-missing", f"{flow.hops[0].method} {url}: the browser did not give the request "
                          f"body within {POST_DATA_SECONDS:g} s; the request record has none", url)
        summaries = await write_flow(self.warc, self._redactor, flow, body, size=size, truncated=truncated,
                                     outcome=outcome, detail=detail)
        for summary in summaries:
            self.exchanges.append(summary)
            if summary.outcome != "recorded":
                self.warn(f"exchange-{summary.outcome}",
                          f"{summary.method} {summary.url}: {summary.outcome}: {summary.detail or 'no detail'}",
                          summary.url)

    def _certificate_channels(self, first: Channel, origin: str) -> list[Channel]:
        """The sessions that reached ``origin``, ``first`` first: whom to ask for its certificate chain."""
        channels = [first]
        for flow in self._flows.values():
            for candidate in (flow.body_channel, flow.channel):
                if candidate is not None and candidate not in channels and flow.hops[0].url.startswith(origin):
                    channels.append(candidate)
        return channels


def _left(deadline: float) -> float:
    return deadline - time.monotonic()
