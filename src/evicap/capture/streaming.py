"""Large bodies straight to disk: CDP Fetch interception at the response stage + takeResponseBodyAsStream + IO.read.

``Network.getResponseBody`` returns a whole body in one message, so a 256 MB video would sit in memory (twice,
with base64). For responses that may be large we intercept at the response stage, decide from the status and
headers, and either let them continue (the common case: one round trip) or take the body as a stream and copy it
to a spool file in 1 MiB reads. Taking the stream means the page no longer gets the body: we hand it back
(``Fetch.fulfillRequest``) when it is small enough to do safely, otherwise we fail the request for the page and
record that as a warning. Only resource types that can carry large bodies are intercepted, so scripts, styles,
images and fonts never wait for us.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from playwright.async_api import Error as PlaywrightError

from evicap.capture import httpheads
from evicap.capture.attach import Channel
from evicap.capture.egress_gate import Blocked, EgressGate
from evicap.capture.flows import Flow, StreamedBody

# Resource types whose bodies may be large (documents that are downloads, media, XHR/fetch payloads, other).
INTERCEPTED_TYPES = ("Document", "Media", "Other", "XHR", "Fetch")
STREAM_THRESHOLD = 8 * 1024 * 1024  # Content-Length above this: stream to disk
FULFIL_LIMIT = 16 * 1024 * 1024  # streamed bodies up to this size are handed back to the page
# 88 KiB reads. Each read arrives base64 in one DevTools message, which Playwright's node driver parses and
# passes on. A message under V8's large-object size (128 KiB) lives in the young generation and is collected
# within the next read or two; a larger one waits in the old generation for a full collection, so the driver grows
# by tens of MB over a large body. Measured with benchmarks/bench_large_body.py on a quiet machine, 256 MiB body,
# the peak of Python plus driver at one moment: 512 KiB reads 186-221 MB (driver 136-173) in 13.2 s; 88 KiB reads
# 158-160 MB (driver 116-117, its idle size) in 17.5 s. The driver alone holds about 105-117 MB when idle.
READ_SIZE = 88 * 1024
UNSEEN = "recorded from the Fetch interception of its frame (no attached session reported it in time)"
# A worker's script is requested by its frame and answered in the worker's own process, which we may attach to
# only after the answer went by: its body is read from the frame's Fetch interception instead.
WORKER_SCRIPT = "a worker's script, read from the Fetch interception of its frame"
WORKER_DESTINATIONS = ("worker", "sharedworker")
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml", "image/svg")


def worker_script(flow: Flow, destinations: tuple[str, ...] = WORKER_DESTINATIONS) -> bool:
    """Whether the request fetches a dedicated or shared worker's script (Sec-Fetch-Dest says so)."""
    sent = [flow.hops[-1].request.get("headers") or {}, *[(e.get("headers") or {}) for e in flow.request_extras]]
    return any(
        str(value).lower() in destinations
        for headers in sent
        for name, value in headers.items()
        if name.lower() == "sec-fetch-dest"
    )


def should_stream(status: int, headers: list[tuple[str, str]]) -> bool:
    """Stream attachments, bodies announced above the threshold, and non-text bodies of unknown length."""
    if status < 200 or 300 <= status < 400 or status in (204, 304):
        return False
    disposition = (httpheads.find(headers, "content-disposition") or "").lower()
    if disposition.startswith("attachment"):
        return True
    length = httpheads.find(headers, "content-length")
    if length is not None and length.strip().isdigit():
        return int(length) > STREAM_THRESHOLD
    media = (httpheads.find(headers, "content-type") or "application/octet-stream").lower()
    return not media.startswith(TEXT_TYPES)


class StreamHost(Protocol):
    """What the streamer needs from the recorder: run a task, a fresh spool file, the flow of a request."""

    max_body_size: int | None
    gate: EgressGate | None

    def spawn(self, coro: Awaitable[Any]) -> None: ...

    def spool(self) -> Path: ...

    def flow_of(self, channel: Channel, request_id: str) -> Flow | None: ...

    def blocked(self, channel: Channel, refusal: Blocked) -> None: ...

    def held(self, network_id: str) -> None: ...

    def unseen(self, channel: Channel, event: dict[str, Any]) -> Flow | None: ...

    def finish(self, flow: Flow) -> None: ...

    async def shared_worker_ready(self, url: str) -> None: ...


class FetchStreamer:
    """Owns the Fetch domain of one session (the page's, an out-of-process frame's, a worker's)."""

    def __init__(self, channel: Channel, host: StreamHost, *, responses: bool = True) -> None:
        self.channel = channel
        self.host = host
        self.responses = responses  # intercept large-body types at the response stage
        self.frozen = False  # set by freeze(): documents are no longer loaded

    async def enable(self) -> None:
        self.channel.on("Fetch.requestPaused", self._on_paused)
        await self.channel.send("Fetch.enable", {"patterns": self._patterns()})

    def _patterns(self) -> list[dict[str, str]]:
        patterns = []
        if self.responses:
            patterns += [{"urlPattern": "*", "resourceType": t, "requestStage": "Response"}
                         for t in INTERCEPTED_TYPES]
        if self.host.gate is not None:  # every request asks the gate first
            patterns.append({"urlPattern": "*", "requestStage": "Request"})
        elif self.frozen:
            patterns.append({"urlPattern": "*", "resourceType": "Document", "requestStage": "Request"})
        return patterns

    async def freeze(self) -> None:
        """From now on no document loads, in any frame: a refresh or script navigation is aborted before it
        reaches the network (net::ERR_ABORTED: no error page replaces what is shown)."""
        self.frozen = True
        await self.channel.send("Fetch.enable", {"patterns": self._patterns()})

    def _on_paused(self, event: dict[str, Any]) -> None:
        host = self.host
        at_request = "responseStatusCode" not in event and "responseErrorReason" not in event
        if at_request:
            host.spawn(self._at_request(event))
            return
        headers = [(h["name"], h["value"]) for h in event.get("responseHeaders") or []]
        status = int(event.get("responseStatusCode") or 0)
        flow = host.flow_of(self.channel, str(event.get("networkId") or ""))
        unseen = flow is None and not event.get("responseErrorReason")
        if unseen:  # no session reported it (a worker that ran before we were attached): keep it from here
            flow = host.unseen(self.channel, event)
        if event.get("responseErrorReason") or flow is None or flow.done:
            host.spawn(self._continue(event["requestId"]))
            return
        if flow.hops and flow.hops[-1].response is None:
            flow.paused = event  # the response head, should its session's responseReceived be missed
        if not should_stream(status, headers):
            if unseen or (flow.stream is None and worker_script(flow)):
                flow.paused = event
                flow.stream = asyncio.get_running_loop().create_future()
                host.spawn(self._read_at_pause(event, flow, UNSEEN if unseen else WORKER_SCRIPT))
            else:
                host.spawn(self._continue(event["requestId"]))
            return
        flow.paused = event
        flow.stream = asyncio.get_running_loop().create_future()
        host.spawn(self._take(event, flow.stream, status, headers))
        if unseen:
            host.finish(flow)

    async def _read_at_pause(self, event: dict[str, Any], flow: Flow, why: str) -> None:
        """The body of a response no session of ours will hold (``why``), read while it is paused, then let go."""
        assert flow.stream is not None
        fetch_id = event["requestId"]
        path = self.host.spool()
        try:
            got = await self.channel.send("Fetch.getResponseBody", {"requestId": fetch_id})
            body = base64.b64decode(got.get("body") or "") if got.get("base64Encoded") else \
                str(got.get("body") or "").encode("utf-8")
            await asyncio.to_thread(path.write_bytes, body)
            flow.stream.set_result(StreamedBody(path, len(body), None, why))
        except PlaywrightError as exc:
            path.unlink(missing_ok=True)
            flow.stream.set_result(StreamedBody(None, 0, "unspecified", f"{why}; body not readable: {exc}"))
        finally:
            if worker_script(flow, ("sharedworker",)):  # it cannot run before it has its script: held until
                await self.host.shared_worker_ready(flow.hops[0].url)  # its session is handed its commands
            await self._continue(fetch_id)
            self.host.finish(flow)

    async def _at_request(self, event: dict[str, Any]) -> None:
        fetch_id = event["requestId"]
        self.host.held(str(event.get("networkId") or ""))
        if self.frozen and event.get("resourceType") == "Document":
            await self._fail(fetch_id, "Aborted")
            return
        gate = self.host.gate
        if gate is not None:
            url = str((event.get("request") or {}).get("url") or "")
            decision = await gate.check(url)
            if not decision.allowed:
                self.host.blocked(self.channel, Blocked(url, decision.address, decision.rule))
                await self._fail(fetch_id, "BlockedByClient")
                return
        await self._continue(fetch_id)

    async def _fail(self, fetch_id: str, reason: str) -> None:
        with contextlib.suppress(PlaywrightError):
            await self.channel.send("Fetch.failRequest", {"requestId": fetch_id, "errorReason": reason})

    async def _continue(self, fetch_id: str) -> None:
        with contextlib.suppress(PlaywrightError):  # the page may have gone away meanwhile
            await self.channel.send("Fetch.continueRequest", {"requestId": fetch_id})

    async def _take(
        self, event: dict[str, Any], future: asyncio.Future[StreamedBody], status: int, headers: list[tuple[str, str]]
    ) -> None:
        fetch_id = event["requestId"]
        path = self.host.spool()
        try:
            taken = await self.channel.send("Fetch.takeResponseBodyAsStream", {"requestId": fetch_id})
            size, truncated = await copy_stream(self.channel.send, taken["stream"], path, self.host.max_body_size)
        except PlaywrightError as exc:
            path.unlink(missing_ok=True)
            future.set_result(StreamedBody(None, 0, "unspecified", f"body stream failed: {exc}"))
            await self._continue(fetch_id)
            return
        except BaseException as exc:
            future.set_result(StreamedBody(None, 0, "unspecified", f"body stream failed: {exc}"))
            raise
        detail = f"body cut at max_body_size ({size} bytes)" if truncated else None
        handed = await self._hand_back(fetch_id, status, headers, path, size, truncated)
        if not handed:
            detail = (detail + "; " if detail else "") + f"streamed to the WARC ({size} bytes), not given to the page"
        future.set_result(StreamedBody(path, size, truncated, detail, withheld=not handed))

    async def _hand_back(
        self, fetch_id: str, status: int, headers: list[tuple[str, str]], path: Path, size: int, truncated: str | None
    ) -> bool:
        """Give the body back to the page when it is whole and small; otherwise fail the request for the page."""
        try:
            if truncated is None and size <= FULFIL_LIMIT:
                kept = [
                    {"name": n, "value": v}
                    for n, v in headers
                    if n.lower() not in ("content-encoding", "transfer-encoding", "content-length")
                ]
                kept.append({"name": "Content-Length", "value": str(size)})
                body = await asyncio.to_thread(path.read_bytes)
                await self.channel.send(
                    "Fetch.fulfillRequest",
                    {
                        "requestId": fetch_id,
                        "responseCode": status,
                        "responseHeaders": kept,
                        "body": base64.b64encode(body).decode("ascii"),
                    },
                )
                return True
            await self.channel.send("Fetch.failRequest", {"requestId": fetch_id, "errorReason": "Aborted"})
        except PlaywrightError:
            pass
        return False


Send = Callable[[str, "dict[str, Any] | None"], Awaitable[dict[str, Any]]]


async def copy_stream(send: Send, handle: str, path: Path, limit: int | None) -> tuple[int, str | None]:
    """Copy a CDP IO stream to ``path`` in big reads; stop at ``limit`` bytes. Returns (size, WARC-Truncated)."""
    size = 0
    truncated: str | None = None
    try:
        with open(path, "xb") as out:
            while True:
                chunk = await send("IO.read", {"handle": handle, "size": READ_SIZE})
                data = chunk.get("data", "")
                block = base64.b64decode(data) if chunk.get("base64Encoded") else data.encode("utf-8")
                if limit is not None and size + len(block) > limit:
                    block = block[: limit - size]
                    truncated = "length"
                if block:
                    await asyncio.to_thread(out.write, block)
                    size += len(block)
                if truncated or chunk.get("eof"):
                    break
    finally:
        with contextlib.suppress(PlaywrightError):
            await send("IO.close", {"handle": handle})
    return size, truncated
