"""Each platform profile against a local page that follows the platform's public markup.

The domain of 127.0.0.1 matches no platform, so the profile is chosen by name, as `--profile NAME` does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from evicap.profiles import load_profile, run_profile

FIXTURES = Path(__file__).parent.parent / "fixtures" / "platforms"
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")

# name -> facts the first item must carry (a subset; every value must match exactly)
EXPECTED: dict[str, dict[str, Any]] = {
    "telegram": {
        "post_id": "examplenews/1201",
        "author": "Example News",
        "handle": "examplenews",
        "published": "2024-03-05T06:45:12.000Z",
        "counts": {"views": 12400},
    },
    "reddit": {
        "post_id": "t3_1abcde",
        "author": "rain_watcher",
        "handle": "u/rain_watcher",
        "title": "Flooding downtown",
        "community": "r/examplecity",
        "published": "2024-04-01T10:15:30.000Z",
        "counts": {"score": 1532, "comments": 214},
        "text": "Water is up to the second step on Main St.",
    },
    "x": {
        "post_id": "1765000000000000001",
        "author": "Jane Reporter",
        "handle": "@janereporter",
        "published": "2024-03-05T14:03:11.000Z",
        "counts": {"replies": 52, "reposts": 340, "likes": 1203, "views": 95000},
    },
    "facebook": {
        "post_id": "10160012345678901",
        "author": "Example City Council",
        "author_id": "100064123456789",
        "handle": "examplecitycouncil",
        "published": "2024-03-05T15:00:00.000Z",
        "text": "Road closures this weekend on Main St between 1st and 4th Ave.",
        "counts": {"reactions": 245, "comments": 31, "shares": 12},
    },
    "instagram": {
        "post_id": "C4xYz12AbCd",
        "author": "Ana Photo",
        "handle": "@ana.photo",
        "published": "2024-03-06T19:22:05.000Z",
        "text": "Protest in the square tonight #city",
        "counts": {"likes": 1024, "comments": 58},
    },
    "youtube": {
        "post_id": "dQw4w9WgXcQ",
        "author": "River Watch",
        "handle": "@riverwatch",
        "author_id": "UCabcdefghijklmnopqrstuv",
        "title": "Flood footage, March 2024",
        "published": "2024-03-07T17:00:00.000Z",
        "duration": "PT2M31S",
        "counts": {"views": 48213, "likes": 1290},
    },
    "tiktok": {
        "post_id": "7340000000000000001",
        "author": "City Witness",
        "handle": "@citywitness",
        "author_id": "6800000000000000000",
        "published": "2024-03-07T08:26:40.000Z",
        "text": "Market fire downtown #news",
        "counts": {"likes": 20500, "comments": 870, "shares": 1300, "views": 412000},
        "url": "https://www.tiktok.com/@citywitness/video/7340000000000000001",
    },
    "vk": {
        "post_id": "-123456_7890",
        "author": "Городские новости",
        "handle": "citynews",
        "author_id": "-123456",
        "published": "2024-03-07T14:00:00.000Z",
        "text": "На проспекте Мира перекрыто движение. Подробности позже.",
        "counts": {"likes": 312, "comments": 45, "reposts": 27, "views": 15000},
        "url": "https://vk.com/wall-123456_7890",
    },
}
# name -> (a media URL fragment, a comment text or None, the number of items)
MORE: dict[str, tuple[str, str | None, int]] = {
    "telegram": ("/media/photo1201.jpg", None, 2),
    "reddit": ("i.redd.it/flood123.jpg", "Crews are on the way.", 1),
    "x": ("/media/GHx1.jpg", None, 2),
    "facebook": ("/media/scontent-road.jpg", "What about the bus routes?", 1),
    "instagram": ("/media/ig-C4xyz.jpg", "Stay safe!", 1),
    "youtube": ("hqdefault.jpg", "Is this the north bank?", 1),
    "tiktok": ("cover.jpeg", None, 1),
    "vk": ("/media/vk-photo457.jpg", "Спасибо за информацию", 1),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_platform_profile_extracts_the_posts_facts(
    name: str, run: Any, browser: Any, http_server: Any, tmp_path: Path
) -> None:
    url = http_server.route(f"/{name}", (FIXTURES / f"{name}.html").read_bytes())
    for media in ("photo1201.jpg", "flood123.jpg", "GHx1.jpg", "scontent-road.jpg", "ig-C4xyz.jpg", "vk-photo457.jpg"):
        http_server.route(f"/media/{media}", JPEG, content_type="image/jpeg")
    profile = load_profile(name)

    async def go() -> Any:
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.goto(url)
            return await run_profile(page, profile, deadline=time.monotonic() + 40, artifacts_dir=tmp_path)
        finally:
            await context.close()

    result = run(go())
    assert result.items, [s.to_json() for s in result.steps]
    first = result.items[0]
    for key, value in EXPECTED[name].items():
        assert first.get(key) == value or (key == "counts" and value.items() <= first[key].items()), (key, first)
    assert first["platform"] == name
    media, comment, count = MORE[name]
    assert any(media in m for m in first["media"]), first["media"]
    if comment:
        assert comment in [c.get("text") for c in first["comments"]]
    assert len(result.items) == count
    assert result.wall is None, result.wall
    failed = [s for s in result.steps if s.outcome in ("failed", "timeout")]
    assert not failed, failed
    for artifact in result.artifacts:  # element screenshots were written and hashed
        assert (tmp_path / Path(artifact.path).name).stat().st_size == artifact.digest.size > 0
