"""Whole media files for videos and audio the page only loaded in pieces (HTTP 206 range responses).

A player asks for ranges and often cancels them, so the WARC holds fragments that no one can play. After the page
is done we re-fetch each such URL whole, in the same browser context (same cookies, same frame), with CDP
``Network.loadNetworkResource``: it streams through ``IO.read`` to a spool file, is not subject to the page's CSP
or CORS, and does not show up as page traffic. The result is stored as a complete 200 response record, capped at
``max_size`` (WARC-Truncated: length plus a warning when the cap is hit).

The re-fetch is handed what it needs (the session to ask, a spool file, the WARC writer and redactor) and returns
what happened: an ExchangeSummary and the warnings; it never writes into the recorder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Error as PlaywrightError

from evicap.bundle.model import CaptureWarning
from evicap.capture import httpheads
from evicap.capture.attach import Channel
from evicap.capture.flows import Flow
from evicap.capture.httpheads import Redactor
from evicap.capture.streaming import copy_stream
from evicap.capture.types import ExchangeSummary
from evicap.capture.warc import WarcWriter
from evicap.errors import first_line

MEDIA_PREFIXES = ("video/", "audio/")


@dataclass(frozen=True)
class Wanted:
    """A URL to fetch again whole, from the session and frame that first loaded it."""

    url: str
    channel: Channel
    frame_id: str | None
    what: str = "ranged media"  # why, in warnings and the exchange detail
    kind: str = "Media"  # resource type listed for the exchange


@dataclass
class Refetched:
    summary: ExchangeSummary | None = None
    warnings: list[CaptureWarning] = field(default_factory=list)
    timed_out: bool = False  # stopped by the time it was given


def ranged_media(flows: Iterable[Flow], exchanges: Iterable[ExchangeSummary]) -> list[Wanted]:
    """Media seen only as partial responses (206), never as a whole 200, once per URL."""
    whole = {x.url for x in exchanges if x.status == 200 and x.outcome == "recorded"}
    found: dict[str, Wanted] = {}
    for flow in flows:
        hop = flow.hops[-1]
        response = hop.response or {}
        media = str(response.get("mimeType") or "").startswith(MEDIA_PREFIXES) or flow.resource_type == "Media"
        if media and response.get("status") == 206 and hop.url not in whole and hop.url not in found:
            found[hop.url] = Wanted(hop.url, flow.channel, flow.frame_id)
    return list(found.values())


async def refetch_whole(
    wanted: Wanted, spool: Path, warc: WarcWriter, redactor: Redactor, *, max_size: int, timeout: float
) -> Refetched:
    """Load ``wanted.url`` again, whole, in its frame, and store it as a 200 response record; a failure or a
    load over ``timeout`` seconds is a warning."""
    code = "media" if wanted.kind == "Media" else "body"
    try:
        return await asyncio.wait_for(_refetch(wanted, spool, warc, redactor, max_size, code), max(0.1, timeout))
    except TimeoutError:
        spool.unlink(missing_ok=True)
        return Refetched(warnings=[CaptureWarning(
            f"{code}-incomplete", f"re-fetch of {wanted.what} stopped at the deadline ({timeout:.0f} s left)",
            wanted.url)], timed_out=True)


async def _refetch(
    wanted: Wanted, spool: Path, warc: WarcWriter, redactor: Redactor, limit: int, code: str
) -> Refetched:
    url, what = wanted.url, wanted.what
    params: dict[str, object] = {
        "url": url,
        "options": {"disableCache": True, "includeCredentials": True},
        "frameId": wanted.frame_id,
    }
    try:
        result = (await wanted.channel.send("Network.loadNetworkResource", params))["resource"]
    except PlaywrightError as exc:
        return Refetched(warnings=[CaptureWarning(
            f"{code}-incomplete", f"could not re-fetch {what} whole: {first_line(exc)}", url)])
    status = int(result.get("httpStatusCode") or 0)
    if not result.get("success") or "stream" not in result or status != 200:
        reason = result.get("netErrorName") or f"HTTP {status}"
        return Refetched(warnings=[CaptureWarning(
            f"{code}-incomplete", f"re-fetch of {what} failed ({reason}); only what the page got is kept", url)])
    try:
        size, truncated = await copy_stream(wanted.channel.send, result["stream"], spool, limit)
        headers = httpheads.header_list(result.get("headers"))
        request = httpheads.request_message("GET", url, [], None, None, redactor)
        response = httpheads.response_message(status, None, headers, None, spool, size, redactor)
        ids = await warc.write_exchange(url, request, response, truncated=truncated)
    finally:
        spool.unlink(missing_ok=True)
    done = Refetched()
    detail = f"{what} re-fetched whole (Network.loadNetworkResource)"
    if truncated:
        detail = f"{what} re-fetched but cut at max_media_size ({limit} bytes)"
        done.warnings.append(CaptureWarning(f"{code}-truncated", detail, url))
    done.summary = ExchangeSummary(
        url, "GET", wanted.kind, status, None, size, "truncated" if truncated else "recorded", detail,
        ids.request_id, ids.response_id,
    )
    return done
