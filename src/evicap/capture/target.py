"""Check a URL before anything is launched: only absolute http(s) URLs with a host are captured."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from evicap.errors import UsageError

ALLOWED_SCHEMES = ("http", "https")


def normalize_target(url: str) -> str:
    """Return the URL to navigate to, or raise UsageError saying why it is refused.

    Unicode hosts are kept as typed (the browser applies IDNA); spaces and control characters are refused rather
    than guessed at, because the manifest must show exactly what was requested.
    """
    text = url.strip()
    if not text:
        raise UsageError("empty URL")
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in text) or " " in text:
        raise UsageError(f"malformed URL (contains spaces or control characters): {text!r}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"malformed URL {text!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if not scheme:
        raise UsageError(f"malformed URL {text!r}: no scheme", hint="write it as https://host/path")
    if scheme not in ALLOWED_SCHEMES:
        raise UsageError(
            f"refused URL scheme {scheme}: in {text[:80]!r}",
            hint="evicap captures only http:// and https:// URLs",
        )
    if not parts.hostname:
        raise UsageError(f"malformed URL {text!r}: no host")
    if port == 0:
        raise UsageError(f"malformed URL {text!r}: port 0")
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, parts.fragment))
