"""What one bundle says about its target, reduced to what a watch compares."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from evicap.bundle import layout

MAX_DOM_BYTES = 64 * 1024 * 1024  # a DOM bigger than this is not read for its text


@dataclass(frozen=True)
class Snapshot:
    bundle: str | None
    status: str  # complete / partial / failed (or failed when there is no bundle)
    http_status: int | None
    error: str | None
    wall: dict[str, Any] | None
    items: dict[str, dict[str, Any]] | None  # post id -> item; None when the profile extracted none
    media: dict[str, str] = field(default_factory=dict)  # sha256 -> target URI (images and videos the page loaded)
    text: tuple[str, ...] = ()  # visible page text, one entry per non-empty line
    started_at: str | None = None  # the capture's own start (manifest capture.started_at)
    matches: tuple[dict[str, Any], ...] = ()  # hash-list matches at capture time (manifest detection.matches)


class _Text(HTMLParser):
    """Visible text of a DOM snapshot: everything outside script, style, template and noscript."""

    SKIP = frozenset({"script", "style", "template", "noscript", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self.depth += 1
        elif tag in ("p", "div", "li", "br", "article", "section", "h1", "h2", "h3", "tr"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.parts.append(data)


def page_text(path: Path) -> tuple[str, ...]:
    if not path.is_file() or path.stat().st_size > MAX_DOM_BYTES:
        return ()
    parser = _Text()
    parser.feed(path.read_text("utf-8", errors="replace"))
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return tuple(line for line in lines if line)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _items(data: Any) -> dict[str, dict[str, Any]] | None:
    rows = data.get("items") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows:
        return None
    found: dict[str, dict[str, Any]] = {}
    for position, item in enumerate(rows):
        if isinstance(item, dict):
            key = str(item.get("post_id") or item.get("url") or f"#{position + 1}")
            found.setdefault(key, item)
    return found or None


def read_snapshot(bundle: Path | None, *, status: str = "failed", error: str | None = None) -> Snapshot:
    """The snapshot of a published bundle; without one (the capture failed before publishing), a failed one."""
    if bundle is None or not (bundle / layout.MANIFEST).is_file():
        return Snapshot(None, status, None, error, None, None)
    manifest = _json(bundle / layout.MANIFEST) or {}
    capture = manifest.get("capture") or {}
    target = manifest.get("target") or {}
    profile = manifest.get("profile") or {}
    media: dict[str, str] = {}
    hashes = _json(bundle / layout.MEDIA_HASHES) or {}
    for entry in hashes.get("media", []) if isinstance(hashes, dict) else []:
        if entry.get("source") == "warc" and entry.get("sha256"):
            media.setdefault(entry["sha256"], entry.get("target_uri") or "")
    return Snapshot(
        bundle=str(bundle),
        status=str(capture.get("status") or status),
        http_status=target.get("http_status"),
        error=capture.get("reason") or target.get("error"),
        wall=profile.get("wall"),
        items=_items(_json(bundle / layout.ITEMS)),
        media=media,
        text=page_text(bundle / layout.DOM),
        started_at=capture.get("started_at"),
        matches=tuple(m for m in (manifest.get("detection") or {}).get("matches", []) if isinstance(m, dict)),
    )
