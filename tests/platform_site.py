"""Serve tests/fixtures/platform-site on a LocalServer: each platform's page at /NAME, its JSON where the page
fetches it (the file's "_path" key), so a real capture records the markup and the JSON as a platform serves them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.servers import LocalServer

SITE = Path(__file__).parent / "fixtures" / "platform-site"
PLATFORMS = ("facebook", "reddit", "telegram", "tiktok", "vk", "x", "youtube")


def serve_platforms(server: LocalServer) -> dict[str, str]:
    """Route every fixture; returns platform -> page URL."""
    for file in sorted(SITE.glob("*.json")):
        data = json.loads(file.read_text("utf-8"))
        path = data.pop("_path")
        server.route(path, json.dumps(data, ensure_ascii=False).encode("utf-8"), content_type="application/json")
    return {name: server.route(f"/{name}", (SITE / f"{name}.html").read_bytes()) for name in PLATFORMS}
