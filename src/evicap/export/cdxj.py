"""A CDXJ index of WARC files (the index format ReplayWeb.page and pywb read), streamed record by record.

Each line: ``<SURT key> <14-digit timestamp> {json}`` with url, mime, status, digest, length, offset and filename,
sorted by key then timestamp. Only responses, revisits and resources at http(s) URLs are indexed: those are what
a replay tool looks up. Our attachments (``urn:evicap:`` resources) are reached through the bundle, not by URL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator

INDEXED = ("response", "revisit", "resource")
DEFAULT_PORTS = {"http": 80, "https": 443}


def surt(url: str) -> str:
    """SURT: 'https://www.Example.com:8443/A?b=2&a=1' -> 'com,example:8443)/a?a=1&b=2'.

    The form py-wacz's indexer (the ``surt`` package) and ReplayWeb.page (wabac.js) both compute: lower case,
    www. dropped, host labels reversed (IP addresses included), query parameters sorted. ReplayWeb.page looks
    records up by this key, so it must match theirs exactly.
    """
    parts = urlsplit(url)
    host = re.sub(r"^www\d*\.", "", (parts.hostname or "").lower())
    key = ",".join(reversed(host.split(".")))  # IPv4 addresses too: replay tools look them up reversed
    try:
        port = parts.port
    except ValueError:
        port = None
    if port and port != DEFAULT_PORTS.get(parts.scheme.lower()):
        key += f":{port}"
    path = (parts.path or "/").lower()
    query = "&".join(sorted(parts.query.lower().split("&"))) if parts.query else ""
    return f"{key}){path}" + (f"?{query}" if query else "")


def _timestamp(warc_date: str) -> str:
    digits = "".join(ch for ch in warc_date if ch.isdigit())
    return digits[:14].ljust(14, "0")


def index_lines(warc: Path, filename: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(key, timestamp, fields) of each indexable record of ``warc``, in file order."""
    with open(warc, "rb") as stream:
        iterator = ArchiveIterator(stream)
        for record in iterator:
            kind = record.rec_type
            uri = record.rec_headers.get_header("WARC-Target-URI") or ""
            if kind not in INDEXED or not uri.lower().startswith(("http://", "https://")):
                iterator.read_to_end(record)
                continue
            fields: dict[str, Any] = {"url": uri}
            if kind == "response" and record.http_headers is not None:
                fields["mime"] = (record.http_headers.get_header("Content-Type") or "").split(";")[0].strip()
                fields["status"] = str(record.http_headers.get_statuscode())
            elif kind == "revisit":
                fields["mime"] = "warc/revisit"
            else:
                fields["mime"] = (record.rec_headers.get_header("Content-Type") or "").split(";")[0].strip()
            digest = record.rec_headers.get_header("WARC-Payload-Digest")
            if digest:
                fields["digest"] = digest
            date = record.rec_headers.get_header("WARC-Date") or ""
            iterator.read_to_end(record)
            fields["length"] = str(iterator.get_record_length())
            fields["offset"] = str(iterator.get_record_offset())
            fields["filename"] = filename
            yield surt(uri), _timestamp(date), fields


def cdxj(entries: list[tuple[str, str, dict[str, Any]]]) -> bytes:
    entries.sort(key=lambda e: (e[0], e[1]))
    return b"".join(
        f"{key} {stamp} {json.dumps(fields, separators=(',', ':'), ensure_ascii=False)}\n".encode()
        for key, stamp, fields in entries
    )
