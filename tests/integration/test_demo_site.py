"""The built-in demo site renders completely in Chromium and loads more posts as the reader scrolls."""

from __future__ import annotations

import gzip
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import Browser

from evicap.demo.server import DemoServer

ALL_IMAGES_LOADED = "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoServer]:
    with DemoServer() as server:
        yield server


def _get(server: DemoServer, path: str, method: str = "GET", **headers: str) -> tuple[Any, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def test_feed_renders_with_images_and_scroll_loads_more_posts(run: Any, browser: Browser, demo: DemoServer) -> None:
    async def go() -> dict[str, Any]:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = await context.new_page()
            response = await page.goto(demo.url("/"), wait_until="load")
            assert response is not None
            facts: dict[str, Any] = {
                "status": response.status,
                "encoding": (await response.all_headers()).get("content-encoding"),
                "title": await page.title(),
                "canonical": await page.get_attribute("link[rel=canonical]", "href"),
                "og_image": await page.get_attribute("meta[property='og:image']", "content"),
                "posts_before": await page.locator("article.post").count(),
                "images_before": await page.evaluate("document.images.length"),
                "loaded_before": await page.evaluate(ALL_IMAGES_LOADED),
                "times": await page.locator("article.post time[datetime]").count(),
            }
            long_post = page.locator("#post-103")
            await long_post.locator(".see-more").click()
            facts["expanded"] = "Everyone welcome." in await long_post.locator(".post-text").inner_text()
            for _ in range(20):
                await page.mouse.wheel(0, 3000)
                if await page.inner_text("#feed-end") == "You're all caught up.":
                    break
                await page.wait_for_timeout(100)
            await page.wait_for_function(ALL_IMAGES_LOADED)
            facts["posts_after"] = await page.locator("article.post").count()
            facts["last_author"] = await page.inner_text("#post-114 .display-name")
            facts["bench_image"] = await page.evaluate(
                "document.querySelector('#post-111 img.post-image').naturalWidth"
            )
            return facts
        finally:
            await context.close()

    facts = run(go())
    assert facts["status"] == 200 and facts["encoding"] == "gzip"
    assert facts["title"] == "Larkfield Commons · Feed"
    assert facts["canonical"] == demo.url("/")
    assert facts["og_image"] == demo.url("/static/img/logo.png")
    assert facts["posts_before"] == 8 and facts["times"] == 8
    assert facts["images_before"] >= 14 and facts["loaded_before"]  # logo, 8 avatars, 5 post photos
    assert facts["expanded"]
    assert facts["posts_after"] == 14
    assert facts["last_author"] == "Juniper Vale"
    assert facts["bench_image"] == 640


def test_server_endpoints_and_confinement(demo: DemoServer) -> None:
    response, body = _get(demo, "/api/feed?page=2", **{"Accept-Encoding": "gzip"})
    assert response.getheader("Content-Type") == "application/json"
    data = json.loads(gzip.decompress(body))
    assert [p["id"] for p in data["posts"]] == [112, 113, 114] and data["next_page"] is None

    response, body = _get(demo, "/p/104")
    assert response.status == 200 and response.getheader("Content-Encoding") is None
    assert f'<link rel="canonical" href="{demo.url("/p/104")}">'.encode() in body

    response, body = _get(demo, "/static/img/cat.jpg", method="HEAD")
    assert response.getheader("Content-Type") == "image/jpeg" and int(response.getheader("Content-Length")) > 1000
    assert body == b""

    for escape in ("/../server.py", "/%2e%2e/server.py", "/static/../../server.py", "/u/nobody"):
        response, body = _get(demo, escape)
        assert response.status == 404, escape
