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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playwright.async_api import Error as PlaywrightError

from evicap.capture import httpheads

if TYPE_CHECKING:
    from evicap.capture.flows import StreamedBody
    from evicap.capture.recorder import NetworkRecorder

# Resource types whose bodies may be large (documents that are downloads, media, XHR/fetch payloads, other).
INTERCEPTED_TYPES = ("Document", "Media", "Other", "XHR", "Fetch")
STREAM_THRESHOLD = 8 * 1024 * 1024  # Content-Length above this: stream to disk
FULFIL_LIMIT = 16 * 1024 * 1024  # streamed bodies up to this size are handed back to the page
# 1 MiB reads: each arrives base64 in one DevTools message; bigger reads left ~100 MiB of message buffers
# behind in the Python process (measured: 4 MiB reads +116 MiB RSS for a 256 MiB body, 1 MiB reads +32 MiB).
READ_SIZE = 1 * 1024 * 1024
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml", "image/svg")


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


class FetchStreamer:
    """Owns the Fetch domain for one recorder."""

    def __init__(self, recorder: NetworkRecorder) -> None:
        self.recorder = recorder
        self.frozen = False  # set by freeze(): documents are no longer loaded

    async def enable(self) -> None:
        self.recorder.cdp.on("Fetch.requestPaused", self._on_paused)
        await self.recorder.send("Fetch.enable", {"patterns": self._patterns()})

    def _patterns(self) -> list[dict[str, str]]:
        patterns = [{"urlPattern": "*", "resourceType": t, "requestStage": "Response"} for t in INTERCEPTED_TYPES]
        if self.frozen:
            patterns.append({"urlPattern": "*", "resourceType": "Document", "requestStage": "Request"})
        return patterns

    async def freeze(self) -> None:
        """From now on no document loads, in any frame: a refresh or script navigation is aborted before it
        reaches the network (net::ERR_ABORTED: no error page replaces what is shown)."""
        self.frozen = True
        await self.recorder.send("Fetch.enable", {"patterns": self._patterns()})

    def _on_paused(self, event: dict[str, Any]) -> None:
        recorder = self.recorder
        at_request = "responseStatusCode" not in event and "responseErrorReason" not in event
        if at_request:
            if self.frozen and event.get("resourceType") == "Document":
                recorder.spawn(self._abort(event["requestId"]))
            else:
                recorder.spawn(self._continue(event["requestId"]))
            return
        headers = [(h["name"], h["value"]) for h in event.get("responseHeaders") or []]
        status = int(event.get("responseStatusCode") or 0)
        flow = recorder.flow(event.get("networkId") or "")
        if event.get("responseErrorReason") or flow is None or not should_stream(status, headers):
            recorder.spawn(self._continue(event["requestId"]))
            return
        flow.paused = event
        flow.stream = asyncio.get_running_loop().create_future()
        recorder.spawn(self._take(event, flow.stream, status, headers))

    async def _abort(self, fetch_id: str) -> None:
        with contextlib.suppress(PlaywrightError):
            await self.recorder.send("Fetch.failRequest", {"requestId": fetch_id, "errorReason": "Aborted"})

    async def _continue(self, fetch_id: str) -> None:
        with contextlib.suppress(PlaywrightError):  # the page may have gone away meanwhile
            await self.recorder.send("Fetch.continueRequest", {"requestId": fetch_id})

    async def _take(
        self, event: dict[str, Any], future: asyncio.Future[StreamedBody], status: int, headers: list[tuple[str, str]]
    ) -> None:
        from evicap.capture.flows import StreamedBody

        fetch_id = event["requestId"]
        path = self.recorder.new_spool_path()
        try:
            taken = await self.recorder.send("Fetch.takeResponseBodyAsStream", {"requestId": fetch_id})
            limit = self.recorder.options.max_body_size
            size, truncated = await copy_stream(self.recorder, taken["stream"], path, limit)
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
                await self.recorder.send(
                    "Fetch.fulfillRequest",
                    {
                        "requestId": fetch_id,
                        "responseCode": status,
                        "responseHeaders": kept,
                        "body": base64.b64encode(body).decode("ascii"),
                    },
                )
                return True
            await self.recorder.send("Fetch.failRequest", {"requestId": fetch_id, "errorReason": "Aborted"})
        except PlaywrightError:
            pass
        return False


async def copy_stream(recorder: NetworkRecorder, handle: str, path: Path, limit: int | None) -> tuple[int, str | None]:
    """Copy a CDP IO stream to ``path`` in big reads; stop at ``limit`` bytes. Returns (size, WARC-Truncated)."""
    size = 0
    truncated: str | None = None
    try:
        with open(path, "xb") as out:
            while True:
                chunk = await recorder.send("IO.read", {"handle": handle, "size": READ_SIZE})
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
            await recorder.send("IO.close", {"handle": handle})
    return size, truncated
