"""Whole media files for videos and audio the page only loaded in pieces (HTTP 206 range responses).

A player asks for ranges and often cancels them, so the WARC holds fragments that no one can play. After the page
is done we re-fetch each such URL whole, in the same browser context (same cookies, same frame), with CDP
``Network.loadNetworkResource``: it streams through ``IO.read`` to a spool file, is not subject to the page's CSP
or CORS, and does not show up as page traffic. The result is stored as a complete 200 response record, capped at
``options.max_media_size`` (WARC-Truncated: length plus a warning when the cap is hit).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from playwright.async_api import Error as PlaywrightError

from evicap.capture import httpheads
from evicap.capture.streaming import copy_stream
from evicap.capture.types import ExchangeSummary

if TYPE_CHECKING:
    from evicap.capture.recorder import NetworkRecorder

MEDIA_PREFIXES = ("video/", "audio/")


def ranged_media(recorder: NetworkRecorder) -> dict[str, str | None]:
    """URL -> frame id of media seen only as partial responses (206), never as a whole 200."""
    whole = {x.url for x in recorder.exchanges if x.status == 200 and x.outcome == "recorded"}
    found: dict[str, str | None] = {}
    for flow in recorder.all_flows():
        hop = flow.hops[-1]
        response = hop.response or {}
        media = str(response.get("mimeType") or "").startswith(MEDIA_PREFIXES) or flow.resource_type == "Media"
        if media and response.get("status") == 206 and hop.url not in whole:
            found.setdefault(hop.url, flow.frame_id)
    return found


async def refetch_whole(
    recorder: NetworkRecorder,
    url: str,
    frame_id: str | None,
    *,
    what: str = "ranged media",
    kind: str = "Media",
    timeout: float = 60.0,
) -> None:
    """Load ``url`` again, whole, in the page's context and frame, and store it as a 200 response record; a
    failure or a load over ``timeout`` seconds is a warning.

    ``what`` names why in the warnings and exchange detail ("ranged media", or a body the browser did not keep);
    ``kind`` is the resource type listed for the exchange.
    """
    code = "media" if kind == "Media" else "body"
    try:
        await asyncio.wait_for(_refetch(recorder, url, frame_id, what, kind, code), timeout)
    except TimeoutError:
        recorder.warn(f"{code}-incomplete", f"re-fetch of {what} took over {timeout:.0f} s", url)


async def _refetch(
    recorder: NetworkRecorder, url: str, frame_id: str | None, what: str, kind: str, code: str
) -> None:
    limit = recorder.options.max_media_size
    params: dict[str, object] = {
        "url": url,
        "options": {"disableCache": True, "includeCredentials": True},
        "frameId": frame_id or recorder.main_frame,
    }
    try:
        result = (await recorder.send("Network.loadNetworkResource", params))["resource"]
    except PlaywrightError as exc:
        recorder.warn(f"{code}-incomplete", f"could not re-fetch {what} whole: {exc}", url)
        return
    status = int(result.get("httpStatusCode") or 0)
    if not result.get("success") or "stream" not in result or status != 200:
        reason = result.get("netErrorName") or f"HTTP {status}"
        recorder.warn(f"{code}-incomplete", f"re-fetch of {what} failed ({reason}); only what the page got is kept",
                      url)
        return
    path = recorder.new_spool_path()
    try:
        size, truncated = await copy_stream(recorder, result["stream"], path, limit)
        headers = httpheads.header_list(result.get("headers"))
        request = httpheads.request_message("GET", url, [], None, None, recorder.redactor)
        response = httpheads.response_message(status, None, headers, None, path, size, recorder.redactor)
        ids = await recorder.warc.write_exchange(url, request, response, truncated=truncated)
    finally:
        path.unlink(missing_ok=True)
    detail = f"{what} re-fetched whole (Network.loadNetworkResource)"
    if truncated:
        detail = f"{what} re-fetched but cut at max_media_size ({limit} bytes)"
        recorder.warn(f"{code}-truncated", detail, url)
    recorder.exchanges.append(
        ExchangeSummary(
            url,
            "GET",
            kind,
            status,
            None,
            size,
            "truncated" if truncated else "recorded",
            detail,
            ids.request_id,
            ids.response_id,
        )
    )
