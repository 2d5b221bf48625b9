"""Tall-page screenshots: evicap's tiled stitcher against Playwright's one-shot full_page, time and memory.

Prints wall time, the growth of this process's peak resident memory, and the peak summed resident memory of
the browser's processes (sampled every 50 ms) for each method and page height.
Run: .venv/bin/python benchmarks/bench_tall_screenshot.py [--text] [HEIGHT ...]   (default 40000 120000)
``--text``: a page of paragraphs and coloured boxes instead of eight flat bands, so that encoding the PNG costs
what it does on a real feed (flat bands deflate to almost nothing).

Each method runs in a fresh child process so one's peak does not hide the other's.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BANDS = ["#c00", "#0a0", "#00c", "#cc0", "#0cc", "#c0c", "#630", "#000"]


def _text_page(height: int) -> str:
    words = ["evidence", "capture", "page", "feed", "post", "comment", "reply", "share", "like", "timestamp",
             "profile", "image", "link"]
    blocks, n = [], 0
    while n * 120 < height:
        text = " ".join(words[(n * 7 + i * 3) % len(words)] for i in range(60))
        colour = BANDS[n % len(BANDS)]
        blocks.append(f'<div style="height:120px;overflow:hidden;font:15px sans-serif"><b style="color:{colour}">'
                      f'post {n}</b> {text} <span style="display:inline-block;width:{40 + n % 90}px;height:30px;'
                      f'background:{colour}"></span></div>')
        n += 1
    return f"<!doctype html><body style='margin:0'>{''.join(blocks)}<div style='height:{height - n * 120}px'></div>"


def _page(height: int) -> str:
    if TEXT[0]:
        return _text_page(height)
    band = height // len(BANDS)
    rows = "".join(f'<div style="height:{band}px;background:{c}">band {i}</div>' for i, c in enumerate(BANDS))
    return f"<!doctype html><body style='margin:0'>{rows}</body>"


BROWSER_PEAK = [0]
TEXT = [False]


async def _browser_peak() -> None:
    import psutil

    me = psutil.Process()
    while True:
        total = 0
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        BROWSER_PEAK[0] = max(BROWSER_PEAK[0], total)
        await asyncio.sleep(0.05)


async def _measure(method: str, height: int) -> None:
    from PIL import Image

    from evicap.capture.browser import find_browser, launch
    from evicap.capture.screenshot import full_page_png

    Image.MAX_IMAGE_PIXELS = None
    async with launch(find_browser()) as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await page.set_content(_page(height))
        cdp = await context.new_cdp_session(page)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        sampler = asyncio.ensure_future(_browser_peak())
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "shot.png"
            if method == "evicap":
                await full_page_png(cdp, out, max_height=10**7)
            else:
                out.write_bytes(await page.screenshot(full_page=True))
            elapsed = time.perf_counter() - started
            sampler.cancel()
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            with Image.open(out) as image:
                size = image.size
            print(
                f"{method:10s} height {height:>7,} px: {elapsed:6.2f} s, png {size[0]}x{size[1]}, "
                f"{out.stat().st_size / 1e6:6.2f} MB, python peak RSS +{(peak - before) / 1024:4.0f} MB, "
                f"browser peak RSS {BROWSER_PEAK[0] / 1e6:5.0f} MB"
            )
        await context.close()


def main() -> None:
    args = sys.argv[1:]
    TEXT[0] = "--text" in args
    args = [a for a in args if a != "--text"]
    if len(args) == 2 and args[0] in ("evicap", "playwright"):
        asyncio.run(_measure(args[0], int(args[1])))
        return
    heights = [int(h) for h in args] or [40_000, 120_000]
    for height in heights:
        for method in ("evicap", "playwright"):
            subprocess.run([sys.executable, __file__, method, str(height), *(["--text"] if TEXT[0] else [])],
                           check=False)


if __name__ == "__main__":
    main()
