"""The investigator's secrets, and scrubbing them out of everything a bundle holds.

With ``--session`` the browser carries the investigation account's cookies and storage; with
``http://user:pass@host`` or an authenticating proxy it carries passwords. A page may echo any of them anywhere:
into URLs, headers, bodies, the DOM, the console. ``SecretSet`` collects every value evicap knows to be secret
(each cookie value and each localStorage/sessionStorage value of the session, at least ``MIN_LENGTH`` characters;
URL and proxy credentials), in the forms a page or a protocol turns them into (percent-encoded, JSON- and
HTML-escaped, base64 for Basic authentication). ``Scrubber`` replaces each occurrence by a marker of exactly the
same byte length (``[redacted----]``), so lengths, offsets and Content-Length stay true and a body can be scrubbed
as it streams; it counts every replacement by where it was (artifact, record) and which secret (by name, never
the value) for the manifest.

Known token fields in bodies (``fb_dtsg``, ``authenticity_token``, ``csrf...``) are scrubbed too when a session
is used: their values are the account's even though the session file does not list them.
MHTML is scrubbed part by part after decoding its transfer encoding (quoted-printable lines may split a value).
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote, quote_plus

MIN_LENGTH = 8
TOKEN_FIELDS = (
    "fb_dtsg", "fb_dtsg_ag", "jazoest", "lsd", "authenticity_token", "csrf_token", "csrftoken", "csrf-token",
    "csrfmiddlewaretoken", "_csrf", "_token", "xsrf_token", "xsrf-token", "__requestverificationtoken",
    "x-csrf-token", "csrf", "access_token", "refresh_token", "id_token", "session_token",
)
_FIELD = "|".join(re.escape(f) for f in sorted(TOKEN_FIELDS, key=len, reverse=True))
_NAME = rb"[\"'](?:" + _FIELD.encode() + rb")[\"']"
_VALUE = rb"(?:value|content)=[\"']([^\"']{6,2000})[\"']"
# name=value (forms, query strings), "name":"value" (JSON), name="..." value="..." / content="..." (HTML inputs, meta)
# Every token field name contains one of these; bytes.find on the lowered body is far faster than a
# case-insensitive regex alternation over it (which ran at a few MB/s).
_HOOKS = (b"csrf", b"xsrf", b"dtsg", b"token", b"jazoest", b"lsd")
# Bytes before and after a hook that the patterns below may need: a value before its name (HTML attributes in
# either order, at most 2,000 bytes) and a long value after it (a JWT access token: a few KB).
_BEFORE, _AFTER = 2300, 8192


def _field_windows(data: bytes) -> Iterator[tuple[int, int]]:
    """Merged [lo, hi) windows around each place a token field name may start."""
    lowered = data.lower()
    hits: list[int] = []
    for hook in _HOOKS:
        at = lowered.find(hook)
        while at >= 0:
            hits.append(at)
            at = lowered.find(hook, at + 1)
    hits.sort()
    lo = hi = -1
    for at in hits:
        start, end = max(0, at - _BEFORE), min(len(data), at + _AFTER)
        if start <= hi:
            hi = max(hi, end)
            continue
        if hi > lo:
            yield lo, hi
        lo, hi = start, end
    if hi > lo:
        yield lo, hi
TOKEN_PATTERNS = (
    re.compile(rb"(?i)(?:^|[?&;\s\"'])(?:" + _FIELD.encode() + rb")=([^&\s\"'<>;]{6,})"),
    re.compile(rb"(?i)[\"'](?:" + _FIELD.encode() + rb")[\"']\s*:\s*[\"']([^\"'\\]{6,})[\"']"),
    re.compile(rb"(?i)name=" + _NAME + rb"[^>]{0,200}?" + _VALUE),
    re.compile(rb"(?i)" + _VALUE + rb"[^>]{0,200}?name=" + _NAME),
)


@dataclass(frozen=True)
class Secret:
    """One secret value and what to call it in the manifest."""

    name: str
    """e.g. ``cookie sid (example.org)``, ``localStorage token``, ``URL password``, ``proxy password``."""
    value: str

    def __repr__(self) -> str:
        return f"Secret({self.name!r}, <{len(self.value)} chars>)"


def marker(length: int) -> bytes:
    """A replacement of exactly ``length`` bytes that says what it is."""
    if length >= 10:
        return b"[redacted" + b"-" * (length - 10) + b"]"
    return b"[redacted]"[:length] if length >= 8 else b"*" * length


def forms(value: str) -> set[bytes]:
    """The byte strings under which ``value`` may appear in a record or a page."""
    found = {value, quote(value, safe=""), quote_plus(value, safe=""), quote(value, safe="/:=+"),
             json.dumps(value)[1:-1], html.escape(value, quote=True), html.escape(value, quote=False)}
    return {f.encode("utf-8") for f in found if f}


class SecretSet:
    """Every secret of one capture. Empty when there is nothing to hide."""

    def __init__(self) -> None:
        self._secrets: list[Secret] = []

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __iter__(self) -> Iterator[Secret]:
        return iter(self._secrets)

    def add(self, name: str, value: str | None, *, min_length: int = MIN_LENGTH) -> None:
        if value and len(value) >= min_length and all(s.value != value for s in self._secrets):
            self._secrets.append(Secret(name, value))

    def add_credentials(self, what: str, username: str, password: str) -> None:
        """URL or proxy credentials: the password (any length), the user name, and their Basic-auth form."""
        self.add(f"{what} password", password, min_length=1)
        self.add(f"{what} user name", username)  # only a long one: a short name would hit ordinary words
        if password:
            token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            self.add(f"{what} (Basic authorization)", token)

    @classmethod
    def from_storage_state(cls, state: Mapping[str, Any], *, min_length: int = MIN_LENGTH) -> SecretSet:
        """Cookie values and local/session storage values of a Playwright storage state."""
        found = cls()
        for cookie in state.get("cookies") or ():
            if isinstance(cookie, Mapping):
                found.add(f"cookie {cookie.get('name')} ({cookie.get('domain')})", str(cookie.get("value") or ""),
                          min_length=min_length)
        for origin in state.get("origins") or ():
            if not isinstance(origin, Mapping):
                continue
            for area in ("localStorage", "sessionStorage"):
                for item in origin.get(area) or ():
                    if isinstance(item, Mapping):
                        found.add(f"{area} {item.get('name')} ({origin.get('origin')})", str(item.get("value") or ""),
                                  min_length=min_length)
        return found


class Scrubber:
    """Replaces secrets in bytes, text, JSON and MHTML and counts what it replaced (see module docstring)."""

    def __init__(self, secrets: SecretSet, *, token_fields: bool = False, keep: bool = False) -> None:
        self.keep = keep
        self.token_fields = token_fields
        pairs = [(form, s.name) for s in secrets for form in forms(s.value)]
        pairs.sort(key=lambda p: len(p[0]), reverse=True)  # longest first: an escaped form before its raw part
        self._names = dict(pairs)
        self.secret_names = {s.name for s in secrets}
        self._pattern = re.compile(b"|".join(re.escape(f) for f, _ in pairs)) if pairs else None
        self.longest = max((len(f) for f, _ in pairs), default=0)
        self.counts: Counter[tuple[str, str | None, str]] = Counter()

    @property
    def active(self) -> bool:
        return not self.keep and (self._pattern is not None or self.token_fields)

    def scrub_bytes(self, data: bytes, artifact: str, record: str | None = None, *, count: bool = True) -> bytes:
        if not self.active or not data:
            return data
        if self._pattern is not None:
            def known(match: re.Match[bytes]) -> bytes:
                if count:
                    self.counts[(artifact, record, self._names[match.group(0)])] += 1
                return marker(len(match.group(0)))

            data = self._pattern.sub(known, data)
        if self.token_fields:
            data = self._scrub_fields(data, artifact, record, count)
        return data

    def _scrub_fields(self, data: bytes, artifact: str, record: str | None, count: bool) -> bytes:
        """Token fields: the patterns run only on a window around each field name (a plain search finds those),
        not over the whole body. A value already replaced is skipped, so overlapping windows count it once."""
        out: bytearray | None = None
        for lo, hi in _field_windows(data):
            before = data[lo:hi] if out is None else bytes(out[lo:hi])
            window = before
            for pattern in TOKEN_PATTERNS:
                window = pattern.sub(lambda m: self._field(m, artifact, record, count), window)
            if window != before:
                if out is None:
                    out = bytearray(data)
                out[lo:hi] = window
        return data if out is None else bytes(out)

    def _field(self, match: re.Match[bytes], artifact: str, record: str | None, count: bool) -> bytes:
        value = match.group(1)
        if value.startswith(b"[redacted") or set(value) == {ord("*")}:
            return match.group(0)
        whole = match.group(0)
        start, end = match.start(1) - match.start(0), match.end(1) - match.start(0)
        if count:
            name = re.search(rb"(?i)" + _FIELD.encode(), whole)
            label = name.group(0).decode("ascii", "replace").lower() if name else "token"
            self.counts[(artifact, record, f"body token field {label}")] += 1
        return whole[:start] + marker(end - start) + whole[end:]

    def scrub_text(self, text: str, artifact: str, record: str | None = None) -> str:
        if not self.active or not text:
            return text
        return self.scrub_bytes(text.encode("utf-8", "surrogatepass"), artifact, record).decode("utf-8", "replace")

    def scrub_json(self, value: Any, artifact: str) -> Any:
        """Every string value of a JSON-like structure (keys are ours: field names, never scrubbed)."""
        if isinstance(value, str):
            return self.scrub_text(value, artifact)
        if isinstance(value, Mapping):
            out = {k: self.scrub_json(v, artifact) for k, v in value.items()}
            if self.token_fields and not self.keep:
                self._token_entries(out, artifact)
            return out
        if isinstance(value, list | tuple):
            return [self.scrub_json(v, artifact) for v in value]
        return value

    def _token_entries(self, entry: dict[str, Any], artifact: str) -> None:
        """Token fields already taken apart into JSON: ``{"fb_dtsg": "..."}`` and ``{"name": "csrf-token",
        "content": "..."}`` (meta tags and form inputs as page facts list them)."""
        for key, item in list(entry.items()):
            if str(key).lower() in TOKEN_FIELDS and isinstance(item, str) and len(item) >= 6 \
                    and not item.startswith("[redacted"):
                entry[key] = marker(len(item.encode())).decode()
                self.counts[(artifact, None, f"body token field {str(key).lower()}")] += 1
        label = next((str(entry[k]).lower() for k in ("name", "property", "id") if isinstance(entry.get(k), str)
                      and str(entry[k]).lower() in TOKEN_FIELDS), None)
        if label is None:
            return
        for key in ("content", "value"):
            item = entry.get(key)
            if isinstance(item, str) and len(item) >= 6 and not item.startswith("[redacted"):
                entry[key] = marker(len(item.encode())).decode()
                self.counts[(artifact, None, f"body token field {label}")] += 1

    def scrub_chunks(self, chunks: Iterable[bytes], artifact: str, record: str | None = None, *,
                     count: bool = True) -> Iterator[bytes]:
        """Scrub a stream: the tail of each chunk is held back until the next one, so a value split across two
        chunks is still found. Output length equals input length."""
        if not self.active:
            yield from chunks
            return
        # A match never spans more than this: the longest secret form, or a token field with its value.
        keep_back = max(self.longest, _AFTER if self.token_fields else 0, 256) - 1
        carry = b""
        for chunk in chunks:
            window = carry + chunk
            if len(window) < 2 * keep_back:
                carry = window
                continue
            # Same-length replacement: positions line up. Every value that starts before ``cut`` ends inside the
            # window, so it is replaced now; the held tail is already scrubbed and is searched again with the next
            # chunk for values that continue into it.
            scrubbed = self.scrub_bytes(window, artifact, record, count=count)
            cut = len(window) - keep_back
            yield scrubbed[:cut]
            carry = scrubbed[cut:]
        if carry:
            yield self.scrub_bytes(carry, artifact, record, count=count)

    def scrub_mhtml(self, data: bytes, artifact: str) -> bytes:
        """Each MIME part decoded (quoted-printable, base64), scrubbed, and encoded again the same way."""
        if not self.active:
            return data
        message = message_from_bytes(data, policy=policy.default)
        changed = False
        for part in message.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            where = f"{artifact} part {part.get('Content-Location', '?')}"
            clean = self.scrub_bytes(payload, artifact, where)
            location = part.get("Content-Location")
            if location:
                new_location = self.scrub_text(str(location), artifact, where)
                if new_location != location:
                    part.replace_header("Content-Location", new_location)
                    changed = True
            if clean != payload:
                _set_payload(part, clean)
                changed = True
        out = message.as_bytes(policy=policy.SMTP) if changed else data
        return self.scrub_bytes(out, artifact, "headers")  # part headers, boundaries, anything left encoded

    def visible(self, text: str) -> list[str]:
        """Names of the secrets that appear in page text (so in the screenshot and PDF too): for a warning."""
        if self._pattern is None or not text:
            return []
        return sorted({self._names[m.group(0)] for m in self._pattern.finditer(text.encode("utf-8", "replace"))})

    def redactions(self) -> list[dict[str, Any]]:
        """The manifest's list: where, which secret (by name), how many times."""
        return [{"artifact": a, "record": r, "secret": name, "count": n}
                for (a, r, name), n in sorted(self.counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2]))]


def _set_payload(part: Any, data: bytes) -> None:
    encoding = str(part.get("Content-Transfer-Encoding", "")).lower()
    if isinstance(part, EmailMessage):
        del part["Content-Transfer-Encoding"]
    if encoding == "base64":
        part.set_payload(base64.encodebytes(data).decode("ascii"))
        part["Content-Transfer-Encoding"] = "base64"
    elif encoding == "quoted-printable":
        import quopri

        part.set_payload(quopri.encodestring(data).decode("ascii"))
        part["Content-Transfer-Encoding"] = "quoted-printable"
    else:
        part.set_payload(data.decode("utf-8", "replace"))
        if encoding:
            part["Content-Transfer-Encoding"] = encoding


def capture_scrubber(
    state: Mapping[str, Any] | None,
    *,
    url_credentials: tuple[str, str] | None = None,
    proxy_credentials: tuple[str, str] | None = None,
    keep: bool = False,
) -> Scrubber:
    """The scrubber of one capture: the session's values (and token fields when a session is used), the URL's
    and the proxy's credentials."""
    secrets = SecretSet.from_storage_state(state) if state else SecretSet()
    if url_credentials:
        secrets.add_credentials("URL", *url_credentials)
    if proxy_credentials:
        secrets.add_credentials("proxy", *proxy_credentials)
    return Scrubber(secrets, token_fields=bool(state), keep=keep)


def manifest_section(scrubber: Scrubber, *, url_had_credentials: bool) -> dict[str, Any]:
    """``network.secrets`` of the manifest: what was known to be secret (by name), what was done with it."""
    return {
        "kept": scrubber.keep,
        "known": sorted(scrubber.secret_names),
        "token_fields": scrubber.token_fields,
        "url_had_credentials": url_had_credentials,
        "redactions": scrubber.redactions(),
        "not_scrubbed": ["screenshots (PNG)", "PDF"],
    }
