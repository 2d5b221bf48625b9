"""HTTP message heads for WARC records, built from what Chromium's DevTools protocol reports.

CDP gives headers in three shapes: raw ``headersText`` (HTTP/1.x responses only), the ``*ExtraInfo`` events'
dictionaries (what went over the wire, cookies included, several values joined by newlines) and the
``Network.Request/Response`` dictionaries (what the renderer saw). We take the most raw one available.

Records must agree with the bytes we store: CDP hands bodies decoded, so the original Content-Encoding,
Transfer-Encoding and (when it differs) Content-Length move to ``X-Orig-*`` names and Content-Length is set to
the stored length. Secrets are replaced by a fixed marker unless the user asked to keep them.
See docs/warc-records.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from evicap.capture.warc import HttpMessage

REDACTED = "[redacted by evicap]"
# Headers that carry the investigator's credentials or their account's tokens (both directions: servers echo
# CSRF tokens back, and auth gateways hand out fresh ones).
TOKEN_HEADERS = (
    "x-csrf-token", "x-csrftoken", "x-xsrf-token", "x-api-key", "x-auth-token", "x-access-token",
    "x-refresh-token", "x-amz-security-token", "x-goog-api-key", "x-fb-dtsg", "x-ig-www-claim", "x-session-token",
    "x-client-secret", "x-upload-token", "x-twitter-auth-type", "x-guest-token",
)
REDACT_REQUEST = ("cookie", "authorization", "proxy-authorization", *TOKEN_HEADERS)
REDACT_RESPONSE = ("set-cookie", "set-cookie2", "proxy-authenticate-info", "authentication-info", *TOKEN_HEADERS)
RENAMED = ("content-encoding", "transfer-encoding")

HeaderList = list[tuple[str, str]]


def header_list(headers: Mapping[str, Any] | None) -> HeaderList:
    """CDP header dict to ordered (name, value) pairs; one pair per newline-joined value; h2 pseudo-headers
    (``:path`` ...) dropped because the start line carries them."""
    pairs: HeaderList = []
    for name, value in (headers or {}).items():
        if name.startswith(":"):
            continue
        for part in str(value).split("\n"):
            pairs.append((name, part))
    return pairs


def parse_headers_text(text: str) -> tuple[str, HeaderList]:
    """Status line and headers from raw HTTP/1.x header text, duplicates and order kept."""
    lines = [line for line in text.replace("\r\n", "\n").split("\n")]
    status_line = lines[0].strip() if lines else ""
    pairs: HeaderList = []
    for line in lines[1:]:
        if not line.strip():
            continue
        if line[0] in " \t" and pairs:  # obsolete line folding: continue the previous value
            name, value = pairs[-1]
            pairs[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if sep:
            pairs.append((name.strip(), value.strip()))
    return status_line, pairs


def find(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return None


def request_target(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def _authority(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2]


def http_version(protocol: str | None) -> str:
    """Version for the start line. HTTP/2 and HTTP/3 are written as HTTP/1.1 so every WARC reader parses them;
    the real protocol is in WARC-Protocol."""
    return "HTTP/1.0" if (protocol or "").lower() == "http/1.0" else "HTTP/1.1"


class Redactor:
    """Replaces secret header values and counts what it replaced, for the manifest."""

    def __init__(self, keep_secrets: bool) -> None:
        self.keep_secrets = keep_secrets
        self.counts: Counter[str] = Counter()

    def apply(self, headers: HeaderList, names: Sequence[str], kind: str) -> HeaderList:
        if self.keep_secrets:
            return headers
        out: HeaderList = []
        for name, value in headers:
            if name.lower() in names:
                self.counts[f"{kind} header {name.title()}"] += 1
                value = REDACTED
            out.append((name, value))
        return out

    def summary(self) -> list[str]:
        return [f"{what}: {count} value(s) replaced by '{REDACTED}'" for what, count in sorted(self.counts.items())]


def request_message(
    method: str,
    url: str,
    headers: HeaderList,
    protocol: str | None,
    body: bytes | None,
    redactor: Redactor,
) -> HttpMessage:
    if find(headers, "host") is None:
        headers = [("Host", _authority(url)), *headers]
    headers = redactor.apply(headers, REDACT_REQUEST, "request")
    start = f"{method} {request_target(url)} {http_version(protocol)}"
    return HttpMessage(start, headers, body)


def response_message(
    status: int,
    status_text: str | None,
    headers: HeaderList,
    protocol: str | None,
    body: Any,
    stored_length: int,
    redactor: Redactor,
    status_line: str | None = None,
) -> HttpMessage:
    """Response head consistent with the stored body of ``stored_length`` bytes (see module docstring)."""
    if not status_line or not status_line.upper().startswith("HTTP/"):
        reason = status_text or _reason(status)
        status_line = f"{http_version(protocol)} {status} {reason}".rstrip()
    encoded = any(name.lower() in RENAMED for name, _ in headers)
    out: HeaderList = []
    for name, value in headers:
        lowered = name.lower()
        if lowered in RENAMED:
            out.append((f"X-Orig-{name}", value))
        elif lowered == "content-length":
            if encoded or value.strip() != str(stored_length):
                out.append((f"X-Orig-{name}", value))
        else:
            out.append((name, value))
    if find(out, "content-length") is None:
        out.append(("Content-Length", str(stored_length)))
    out = redactor.apply(out, REDACT_RESPONSE, "response")
    return HttpMessage(status_line, out, body)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def warc_protocols(response: Mapping[str, Any] | None) -> list[str]:
    """WARC-Protocol values: the HTTP protocol (``http/1.1``, ``h2``) and the TLS version (``tls/1.3``)."""
    if not response:
        return []
    found = []
    protocol = str(response.get("protocol") or "").lower()
    if protocol and protocol not in ("data", "blob"):
        found.append(protocol)
    tls = str((response.get("securityDetails") or {}).get("protocol") or "")
    if tls:
        found.append(tls.lower().replace(" ", "/"))
    return found
