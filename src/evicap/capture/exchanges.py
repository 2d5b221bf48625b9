"""A finished flow becomes WARC records: a request and a response record per hop, and a summary per hop.

Pure of CDP: everything comes from the flow's recorded events. Only the last hop carries the body; a hop that
never went on the wire (refused before sending, blocked) gets no record, because no record may claim it did.
"""

from __future__ import annotations

from pathlib import Path

from evicap import clock
from evicap.capture import httpheads
from evicap.capture.flows import Flow, Hop, match_response_extra, nth
from evicap.capture.httpheads import Redactor
from evicap.capture.types import ExchangeSummary
from evicap.capture.warc import HttpMessage, WarcWriter


def response_from_paused(flow: Flow) -> None:
    """Taking the body stream suppresses responseReceived (downloads): rebuild the response from the paused
    Fetch event. CDP does not tell us the server address in that case."""
    if flow.paused is None or not flow.hops or flow.hops[-1].response is not None:
        return
    paused = flow.paused
    flow.hops[-1].response = {
        "url": flow.hops[-1].url,
        "status": paused.get("responseStatusCode"),
        "statusText": paused.get("responseStatusText"),
        "headers": {h["name"]: h["value"] for h in paused.get("responseHeaders") or []},
    }


async def write_flow(
    warc: WarcWriter,
    redactor: Redactor,
    flow: Flow,
    body: bytes | Path | None,
    *,
    size: int | None = None,
    truncated: str | None = None,
    outcome: str = "recorded",
    detail: str | None = None,
) -> list[ExchangeSummary]:
    """Request + response records for every hop of ``flow``; returns one summary per hop."""
    response_from_paused(flow)
    summaries = []
    for index, hop in enumerate(flow.hops):
        last = index == len(flow.hops) - 1
        hop.request_extra = nth(flow.request_extras, index)
        hop.response_extra = match_response_extra(flow.response_extras, index, hop.response)
        hop_body: bytes | Path | None = body if last else (b"" if hop.response is not None else None)
        hop_size = size if (last and size is not None) else (len(hop_body) if isinstance(hop_body, bytes) else 0)
        summaries.append(
            await _write_hop(
                warc,
                redactor,
                flow,
                hop,
                hop_body,
                hop_size,
                truncated if last else None,
                outcome if last else "recorded",
                detail if last else None,
            )
        )
    return summaries


async def _write_hop(
    warc: WarcWriter,
    redactor: Redactor,
    flow: Flow,
    hop: Hop,
    body: bytes | Path | None,
    size: int,
    truncated: str | None,
    outcome: str,
    detail: str | None,
) -> ExchangeSummary:
    response = hop.response
    if response is None and hop.request_extra is None:
        return summary(flow, hop, None, outcome, detail, None, None)
    protocol = (response or {}).get("protocol")
    raw_request = (hop.request_extra or {}).get("headers") or hop.request.get("headers")
    request = httpheads.request_message(
        hop.method,
        hop.url,
        httpheads.header_list(raw_request),
        protocol,
        flow.post_data if hop is flow.hops[0] else None,
        redactor,
    )
    message = response_message(hop, body, size, redactor) if response is not None else None
    when = clock.from_epoch(hop.wall_time) if hop.wall_time else None
    ids = await warc.write_exchange(
        hop.url,
        request,
        message,
        date=when,
        ip_address=(response or {}).get("remoteIPAddress"),
        protocols=httpheads.warc_protocols(response),
        truncated=truncated if message else None,
    )
    return summary(flow, hop, size if message else None, outcome, detail, ids.request_id, ids.response_id)


def response_message(hop: Hop, body: bytes | Path | None, size: int, redactor: Redactor) -> HttpMessage:
    """The response head as the wire had it (ExtraInfo's raw text when there is one), with ``body``."""
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
        redactor,
        status_line,
    )


def summary(
    flow: Flow,
    hop: Hop,
    size: int | None,
    outcome: str,
    detail: str | None,
    request_id: str | None,
    response_id: str | None,
) -> ExchangeSummary:
    response = hop.response or {}
    status = response.get("status")
    return ExchangeSummary(
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
        target=flow.target,
        frame=flow.frame_id,
    )
