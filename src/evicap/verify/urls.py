"""URLs compared as the browser sees them.

The manifest keeps the URL the investigator gave (``http://LOCALHOST:8080/?q=ü``); the WARC keeps the one Chromium
requested after WHATWG URL parsing (``http://localhost:8080/?q=%C3%BC``): lower-cased host, IDNA (punycode) for a
non-ASCII host, default port dropped, non-ASCII and unsafe characters percent-encoded, no fragment (never sent).
Looking one up literally among the other fails a complete capture, so both sides are compared by ``url_key``: the
WHATWG serialisation by ada (the parser Node.js uses), without the fragment, percent-escapes in upper case
(RFC 3986: ``%3c`` and ``%3C`` are the same octet). What ada cannot parse is its own key.
"""

from __future__ import annotations

import re

import ada_url

_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def url_key(url: str) -> str:
    """The form two URLs share when a browser would request the same resource for both."""
    text = url.strip()
    if text.startswith("<") and text.endswith(">"):  # WARC 1.0 wrote some URIs in angle brackets
        text = text[1:-1]
    text = text.split("#", 1)[0]  # WHATWG: the fragment starts at the first "#", in every kind of URL
    try:
        href: str = ada_url.normalize_url(text)
    except ValueError:
        return text
    return _ESCAPE.sub(lambda match: match.group(0).upper(), href) if "%" in href else href
