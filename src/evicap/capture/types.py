"""What the network recorder learns during a capture, handed to attachments and the manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RedirectHop:
    url: str
    status: int
    location: str | None
    remote_ip: str | None = None
    kind: str = "http"  # "http": a 3xx answer; "client": the page itself navigated on (meta refresh, script)
    reason: str | None = None  # for "client": Chromium's ClientNavigationReason, e.g. metaTagRefresh


@dataclass
class Navigation:
    """The main document's fate: requested URL, every redirect hop, the final response."""

    requested_url: str
    redirects: list[RedirectHop] = field(default_factory=list)
    final_url: str | None = None
    status: int | None = None
    status_text: str | None = None
    remote_ip: str | None = None
    remote_port: int | None = None
    protocol: str | None = None  # e.g. "http/1.1", "h2"
    mime_type: str | None = None
    security_state: str | None = None  # CDP securityState: secure / insecure / neutral / unknown
    error: str | None = None  # net::ERR_... when the main document failed

    def to_json(self) -> dict[str, Any]:
        return {
            "requested_url": self.requested_url,
            "final_url": self.final_url,
            "status": self.status,
            "status_text": self.status_text,
            "remote_ip": self.remote_ip,
            "remote_port": self.remote_port,
            "protocol": self.protocol,
            "mime_type": self.mime_type,
            "security_state": self.security_state,
            "error": self.error,
            "redirects": [
                {"url": h.url, "status": h.status, "location": h.location, "remote_ip": h.remote_ip,
                 "kind": h.kind, "reason": h.reason}
                for h in self.redirects
            ],
        }


@dataclass(frozen=True)
class CertificateChain:
    """Server certificate chain of one HTTPS origin, as the capturing session saw it."""

    origin: str  # scheme://host[:port]
    der_chain: tuple[bytes, ...]  # leaf first, from Network.getCertificate
    security_details: dict[str, Any]  # CDP SecurityDetails of the first response from the origin
    remote_ip: str | None = None


@dataclass(frozen=True)
class ExchangeSummary:
    """One HTTP exchange (or a failed attempt), for the manifest's network summary and warnings."""

    url: str
    method: str
    resource_type: str | None
    status: int | None
    remote_ip: str | None
    body_size: int | None  # bytes stored; None when no body was stored
    outcome: str  # "recorded", "failed", "blocked", "truncated", "no-body", "aborted"
    detail: str | None = None  # net error text, truncation reason, ...
    request_record: str | None = None  # WARC-Record-ID
    response_record: str | None = None
    target: str | None = None  # DevTools target id it came from (out-of-process frame, worker); None: the page
    frame: str | None = None  # frame id, when a frame made the request


@dataclass(frozen=True)
class ConsoleMessage:
    type: str
    text: str
    url: str | None = None
    line: int | None = None
