"""Per-request state of the network recorder: one Flow per CDP requestId, one Hop per redirect hop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evicap.capture import httpheads
from evicap.capture.attach import Channel
from evicap.capture.types import Navigation, RedirectHop

Event = dict[str, Any]


@dataclass
class Hop:
    """One request/response pair of a flow (one redirect hop, or the final exchange)."""

    url: str
    method: str
    request: Event
    wall_time: float | None
    request_extra: Event | None = None
    response: Event | None = None
    response_extra: Event | None = None


@dataclass
class Flow:
    request_id: str
    resource_type: str | None
    frame_id: str | None
    channel: Channel  # the DevTools session that reported it (page, out-of-process frame, worker)
    target: str | None = None  # target id of that session; None for the page's own
    # A cross-site frame's document is requested in the parent's session but finishes in the frame's own: the
    # body is then asked of that session.
    body_channel: Channel | None = None
    hops: list[Hop] = field(default_factory=list)
    request_extras: list[Event] = field(default_factory=list)
    response_extras: list[Event] = field(default_factory=list)
    post_data: bytes | None = None
    post_read: asyncio.Future[None] | None = None  # Network.getRequestPostData in flight: its records wait for it
    # Set when the body was taken through Fetch (streaming.py): where it is and whether the page got it.
    stream: asyncio.Future[StreamedBody] | None = None
    paused: Event | None = None  # the Fetch.requestPaused event, when we took the body
    done: bool = False
    started: float = 0.0  # loop time of requestWillBeSent
    speculative: str | None = None  # Sec-Purpose of a prefetch the browser made on the page's speculation rules

    @staticmethod
    def purpose_of(request: Event) -> str | None:
        """``Sec-Purpose`` (or the older ``Purpose``) when the browser makes the request on speculation: a
        prefetch or prerender a page asked for (speculation rules, ``<link rel=prefetch>``); else None."""
        for name, value in (request.get("headers") or {}).items():
            if name.lower() in ("sec-purpose", "purpose") and str(value).strip().lower().startswith("prefetch"):
                return str(value).strip()
        return None

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel.key, self.request_id)


@dataclass(frozen=True)
class StreamedBody:
    path: Path | None  # spool file; None when the stream could not be read
    size: int
    truncated: str | None  # WARC-Truncated reason
    detail: str | None  # what the page got (fulfilled / failed) or why reading stopped
    withheld: bool = False  # the page did not get the body (too large to hand back)


HEAD_ALLOWANCE = 256 * 1024  # bytes a response head (and framing) can take on the wire


def nth(items: list[Event], index: int) -> Event | None:
    return items[index] if index < len(items) else None


def match_response_extra(extras: list[Event], index: int, response: Event | None) -> Event | None:
    """The ExtraInfo of hop ``index``: same position when its status agrees, else the first with that status."""
    if response is None:
        return None
    status = response.get("status")
    candidate = nth(extras, index)
    if candidate is not None and candidate.get("statusCode") == status:
        return candidate
    return next((e for e in extras if e.get("statusCode") == status), None)


def update_navigation(nav: Navigation, documents: list[Flow], reasons: dict[str, str] | None = None) -> None:
    """Fill ``nav`` from the main frame's documents, in the order they were shown: every HTTP redirect hop of
    each, a "client" hop where the page itself moved on (meta refresh, script; ``reasons`` maps the URL it moved
    to onto Chromium's reason), then the last document's final response."""
    nav.redirects = []
    for index, doc in enumerate(documents):
        for hop in doc.hops[:-1]:
            response = hop.response or {}
            headers = httpheads.header_list(response.get("headers"))
            nav.redirects.append(
                RedirectHop(
                    hop.url,
                    int(response.get("status") or 0),
                    httpheads.find(headers, "location"),
                    response.get("remoteIPAddress"),
                )
            )
        if index + 1 < len(documents):
            shown = doc.hops[-1].response or {}
            moved_to = documents[index + 1].hops[0].url
            nav.redirects.append(
                RedirectHop(
                    doc.hops[-1].url,
                    int(shown.get("status") or 0),
                    moved_to,
                    shown.get("remoteIPAddress"),
                    kind="client",
                    reason=(reasons or {}).get(moved_to),
                )
            )
    flow = documents[-1]
    final = flow.hops[-1]
    nav.final_url = final.url
    if final.response is not None:
        got = final.response
        nav.status = int(got.get("status") or 0)
        nav.status_text = got.get("statusText") or None
        nav.remote_ip = got.get("remoteIPAddress")
        nav.remote_port = got.get("remotePort")
        nav.protocol = got.get("protocol")
        nav.mime_type = got.get("mimeType")
        nav.security_state = got.get("securityState")


def body_shortfall(response: Event | None, got: int, received: int, exact: bool = True) -> str | None:
    """Why a body the browser handed back is not the whole body, or None when nothing says so.

    Chromium keeps a response body for DevTools only up to its per-resource buffer; past that,
    ``Network.getResponseBody`` answers with an empty body and no error. The body is then missing, and the
    record must say so: an unencoded response shorter than its Content-Length, or an empty body where the network
    delivered more than a response head can account for. ``exact`` is False for text the browser decoded (its
    UTF-8 length need not be the length on the wire); then only an empty body counts as short.
    """
    headers = httpheads.header_list((response or {}).get("headers"))
    length = (httpheads.find(headers, "content-length") or "").strip()
    encoding = (httpheads.find(headers, "content-encoding") or "identity").strip().lower()
    comparable = encoding == "identity" and (exact or got == 0)
    if length.isdigit() and comparable and got < int(length):
        return f"the browser kept {got} of the {int(length)} bytes announced (body larger than its DevTools buffer)"
    if got == 0 and received > HEAD_ALLOWANCE:
        return f"the browser kept no body though {received} bytes arrived (body larger than its DevTools buffer)"
    return None
