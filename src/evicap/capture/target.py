"""Check a URL before anything is launched: only absolute http(s) URLs with a host are captured.

User information (``http://user:password@host/``) is never stored: ``normalize_target`` drops it, and
``url_credentials`` gives it to the caller to pass to the browser and to the secret scrubber, so the manifest can
say the URL carried credentials without repeating them. ``split_proxy`` does the same for ``--proxy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

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
    shown = without_userinfo(text)
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in text) or " " in text:
        raise UsageError(f"malformed URL (contains spaces or control characters): {shown!r}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"malformed URL {shown!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if not scheme:
        raise UsageError(f"malformed URL {shown!r}: no scheme", hint="write it as https://host/path")
    if scheme not in ALLOWED_SCHEMES:
        raise UsageError(
            f"refused URL scheme {scheme}: in {shown[:80]!r}",
            hint="evicap captures only http:// and https:// URLs",
        )
    if not parts.hostname:
        raise UsageError(f"malformed URL {shown!r}: no host")
    if port == 0:
        raise UsageError(f"malformed URL {shown!r}: port 0")
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, parts.fragment))


@dataclass(frozen=True)
class Credentials:
    """A user name and password found in a URL; never written anywhere (repr hides the password)."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>)"


def url_credentials(url: str) -> Credentials | None:
    """The user information of ``url`` (percent-decoded), or None when it has none."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if "@" not in parts.netloc:
        return None
    return Credentials(unquote(parts.username or ""), unquote(parts.password or ""))


PROXY_SCHEMES = ("http", "https", "socks5", "socks4")


def split_proxy(proxy: str) -> tuple[str, Credentials | None]:
    """``scheme://user:pass@host:port`` -> (``scheme://host:port``, credentials). The first part is what is
    recorded; the credentials go to the browser through Playwright's proxy settings only.

    SOCKS5 proxies are given to Chromium as ``socks5://``, which resolves names at the proxy (no local DNS)."""
    text = proxy.strip()
    try:
        parts = urlsplit(text if "://" in text else f"http://{text}")
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"malformed --proxy {without_userinfo(text)!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "socks5h":
        scheme = "socks5"
    if scheme not in PROXY_SCHEMES or not parts.hostname:
        raise UsageError(
            f"malformed --proxy {without_userinfo(text)!r}",
            hint="write it as http://host:port, https://host:port or socks5://host:port",
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    server = f"{scheme}://{host}" + (f":{port}" if port else "")
    return server, url_credentials(text if "://" in text else f"http://{text}")


def without_userinfo(text: str) -> str:
    head, sep, tail = text.partition("://")
    rest = tail if sep else head
    netloc, slash, path = rest.partition("/")
    clean = netloc.rpartition("@")[2] + slash + path
    return f"{head}{sep}{clean}" if sep else clean


PROXY_ERRORS = {407: "the proxy asks for credentials it did not get, or refused them (407)",
                502: "the proxy could not reach the target (502 Bad Gateway)",
                504: "the proxy timed out reaching the target (504 Gateway Timeout)"}


def proxy_failure(proxy: str | None, status: int | None) -> str | None:
    """Why a capture through ``proxy`` reached only the proxy's own error page, or None.

    407 only ever comes from a proxy. 502 and 504 are gateway errors: through a proxy the target's content was not
    reached either way, so the capture is failed rather than sealed as if the error page were the target."""
    if not proxy or status not in PROXY_ERRORS:
        return None
    return f"only the proxy's error page was reached: {PROXY_ERRORS[status]}"
