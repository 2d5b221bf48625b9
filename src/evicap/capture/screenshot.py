"""Full-page screenshots of any height, stitched from tiles into one PNG; and the viewport screenshot.

Why tiles: a single full-page capture makes Chromium paint the whole page into one surface. Past the GPU
texture limit (16,384 px) some Chromium builds and GPUs repeat or blank the lower part; the Chromium 156 we
test on paints a 120,000 px page correctly, but its processes then peak at about 2.6 GB for a 1280 px wide
page against about 1.1 GB with tiles (benchmarks/bench_tall_screenshot.py). Tiles of at most
``TILE_PIXELS`` keep the browser's surface and our decoded pixels bounded by one tile, whatever the height.

Why clipped captures instead of scrolling: each tile is ``Page.captureScreenshot`` with a ``clip`` in page
coordinates and ``captureBeyondViewport``. Chromium paints that slice of the laid-out document without moving
the scroll position, so ``position: fixed`` headers and cookie bars appear once, where they sit at the top,
instead of in every tile as a scroll-and-shoot loop would show them; ``100vh`` sections keep the height the
user saw; scroll-driven scripts (infinite feeds, "load more" on scroll) are not triggered a second time, so
the page is not changed by the act of photographing it.

Fixed elements are painted where they sit for the current scroll position, so ``scroll_to_top`` is called
first (by attachments): the header then appears once, at the top, as a visitor first sees it.

The document height is read once before the first tile: content that grows while we shoot is not chased.
Tiles are requested at clip scale 1, so the PNG is in CSS pixels whatever the device scale factor.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.async_api import CDPSession

from evicap.bundle.hashing import FileDigest, HashingWriter
from evicap.capture.png import PngWriter

# Upper bound of pixels (device px) per tile: 16 Mpx is 64 MB of RGBA in the renderer, 48 MB of RGB here.
TILE_PIXELS = 16 * 1024 * 1024
# Tile height in CSS px for ordinary widths; below Chromium's 16,384 px texture limit. Each tile costs Chromium a
# fixed ~0.25 s (the beyond-viewport capture lays the page out again) besides its painting: 8192 px tiles take a
# 40,000 px page in 5 captures instead of 10 (benchmarks/bench_tall_screenshot.py --text).
TILE_HEIGHT = 8192
MIN_TILE_HEIGHT = 64
# Pages wider than this (CSS px) are cut at the right edge; the cut is reported.
MAX_WIDTH = 16_384
# Up to this height (and TILE_PIXELS in area) one capture is taken and stored as Chromium encoded it.
SINGLE_SHOT_MAX_HEIGHT = 16_384
# zlib level of the stitched PNG. Still lossless; on a screenshot of text and images level 3 deflates about three
# times as fast as the default 6 for files about 15 % larger (measured on the demo feed; docs/architecture.md).
STITCH_LEVEL = 3
BAND_ROWS = 256  # rows handed to the compressor at once (about 1 MB at 1280 px)


@dataclass(frozen=True)
class FullPageShot:
    """What the full-page screenshot holds, for page facts and warnings."""

    digest: FileDigest
    width: int  # PNG width in device pixels
    height: int  # PNG height in device pixels
    document_width: int  # CSS px, as laid out when the capture started
    document_height: int  # CSS px, as laid out when the capture started
    captured_height: int  # CSS px actually in the PNG (document_height unless cut at max_height)
    captured_width: int  # CSS px actually in the PNG
    scale: float  # device pixels per CSS px
    tiles: int

    @property
    def truncated(self) -> bool:
        return self.captured_height < self.document_height or self.captured_width < self.document_width


async def layout_size(cdp: CDPSession) -> tuple[int, int, int, int]:
    """Width and height of the laid-out document in CSS px (at least the viewport), then the viewport's."""
    metrics = await cdp.send("Page.getLayoutMetrics")
    content = metrics.get("cssContentSize") or metrics["contentSize"]
    viewport = metrics.get("cssLayoutViewport") or metrics["layoutViewport"]
    view_width, view_height = int(viewport["clientWidth"]), int(viewport["clientHeight"])
    return (max(math.ceil(content["width"]), view_width), max(math.ceil(content["height"]), view_height),
            view_width, view_height)


async def document_size(cdp: CDPSession) -> tuple[int, int]:
    """Width and height of the laid-out document in CSS px (at least the viewport)."""
    width, height, _, _ = await layout_size(cdp)
    return width, height


async def evaluate_isolated(cdp: CDPSession, expression: str) -> Any:
    """Evaluate ``expression`` in a fresh isolated world of the main frame and return its JSON value.

    The isolated world shares the page's DOM but none of its JavaScript: a page that redefines
    ``scrollTo``, ``String`` or a ``document.title`` getter cannot change what we read or do.
    """
    tree = await cdp.send("Page.getFrameTree")
    world = await cdp.send(
        "Page.createIsolatedWorld", {"frameId": tree["frameTree"]["frame"]["id"], "worldName": "evicap"}
    )
    result = await cdp.send(
        "Runtime.evaluate",
        {"expression": expression, "contextId": world["executionContextId"], "returnByValue": True},
    )
    if "exceptionDetails" in result:
        details = result["exceptionDetails"]
        text = (details.get("exception") or {}).get("description") or details.get("text") or "script error"
        raise RuntimeError(str(text).splitlines()[0])
    return result.get("result", {}).get("value")


async def scroll_to_top(cdp: CDPSession) -> tuple[int, int]:
    """Scroll the main frame to its top-left corner; returns where it was (CSS px), for the page facts."""
    at = await evaluate_isolated(cdp, "(() => { const at = [scrollX, scrollY]; scrollTo(0, 0); return at; })()")
    return int(at[0]), int(at[1])


async def _tile(cdp: CDPSession, x: int, y: int, width: int, height: int) -> bytes:
    """One slice of the page as PNG bytes, painted by Chromium without scrolling."""
    params: dict[str, Any] = {
        "format": "png",
        "clip": {"x": x, "y": y, "width": width, "height": height, "scale": 1},
        "captureBeyondViewport": True,
        "fromSurface": True,
        "optimizeForSpeed": True,  # fast zlib: tiles are re-encoded anyway; a single shot is kept a little larger
    }
    shot = await cdp.send("Page.captureScreenshot", params)
    return base64.b64decode(shot["data"])


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    return image.convert("RGB") if image.mode != "RGB" else image


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Crop or pad (white) a tile to exactly the rows and columns the PNG header promised.

    Rounding of device-pixel boundaries can make a tile one pixel off; padding is never more than that.
    """
    if image.size == (width, height):
        return image
    fitted = Image.new("RGB", (width, height), (255, 255, 255))
    fitted.paste(image.crop((0, 0, min(width, image.width), min(height, image.height))), (0, 0))
    return fitted


async def full_page_png(cdp: CDPSession, path: Path, *, max_height: int,
                        viewport_shot: Path | None = None) -> FullPageShot:
    """Write the whole page (cut at ``max_height`` CSS px) as one PNG at ``path``, one tile in memory at a time.

    While one tile is decoded and compressed in a worker thread, Chromium already paints the next one; at most
    two tiles are alive at once. The file is written through a HashingWriter, so its digest is known when this
    returns. On failure the partial file is removed.

    ``viewport_shot``: the viewport screenshot just taken. When the whole document fits the window it shows, it
    is the whole page, and it is copied byte for byte rather than painted again (``tiles`` 0): Chromium's paint of
    the same pixels costs a capture about 0.05 s of CPU, and two shots taken a moment apart would differ only in
    what moved meanwhile (an animation).
    """
    doc_width, doc_height, view_width, view_height = await layout_size(cdp)
    if viewport_shot is not None and (doc_width, doc_height) == (view_width, view_height):
        copied = await asyncio.to_thread(_copy_viewport, viewport_shot, path, view_width, view_height)
        if copied is not None:
            return copied
    width = min(doc_width, MAX_WIDTH)
    height = min(doc_height, max(1, max_height))
    tile_height = max(MIN_TILE_HEIGHT, min(TILE_HEIGHT, TILE_PIXELS // max(1, width)))
    bounds = [(top, min(top + tile_height, height)) for top in range(0, height, tile_height)]
    if width * height <= TILE_PIXELS and height <= SINGLE_SHOT_MAX_HEIGHT:
        return await _single_shot(cdp, path, width, height, doc_width, doc_height)

    first = await asyncio.to_thread(_decode, await _tile(cdp, 0, 0, width, bounds[0][1]))
    scale = first.width / width
    px_width = first.width
    px_height = round(height * scale)

    def encode(png: PngWriter, image: Image.Image | bytes, top: int, bottom: int) -> None:
        tile = image if isinstance(image, Image.Image) else _decode(image)
        rows = round(bottom * scale) - round(top * scale)
        fitted = _fit(tile, px_width, rows)
        for band in range(0, rows, BAND_ROWS):  # raw rows a band at a time: no second copy of the whole tile
            png.write_rows(fitted.crop((0, band, px_width, min(rows, band + BAND_ROWS))).tobytes())

    pending: asyncio.Future[bytes] | None = None
    try:
        with HashingWriter(path) as out:
            png = PngWriter(out, px_width, px_height, level=STITCH_LEVEL)
            current: Image.Image | bytes = first
            for index, (top, bottom) in enumerate(bounds):
                if index + 1 < len(bounds):
                    following = bounds[index + 1]
                    pending = asyncio.ensure_future(_tile(cdp, 0, following[0], width, following[1] - following[0]))
                await asyncio.to_thread(encode, png, current, top, bottom)
                if pending is not None:
                    current, pending = await pending, None
            png.close()
    except BaseException:
        if pending is not None:
            pending.cancel()
        path.unlink(missing_ok=True)
        raise
    assert out.digest is not None
    return FullPageShot(
        digest=out.digest,
        width=px_width,
        height=px_height,
        document_width=doc_width,
        document_height=doc_height,
        captured_height=height,
        captured_width=width,
        scale=scale,
        tiles=len(bounds),
    )


async def _single_shot(
    cdp: CDPSession, path: Path, width: int, height: int, doc_width: int, doc_height: int
) -> FullPageShot:
    """A page that fits in one tile: Chromium's own PNG is written as it came, with no decode and re-encode.

    Most pages are this size; it saves the tile pipeline's pixel work. Only the PNG header is read, to record the
    pixel size.
    """
    data = await _tile(cdp, 0, 0, width, height)
    with Image.open(io.BytesIO(data)) as image:  # header only: size and format, pixels are never decoded
        if image.format != "PNG":
            raise ValueError(f"browser returned {image.format} instead of PNG")
        px_width, px_height = image.size
    return FullPageShot(
        digest=_write_png(path, data),
        width=px_width,
        height=px_height,
        document_width=doc_width,
        document_height=doc_height,
        captured_height=height,
        captured_width=width,
        scale=px_width / max(1, width),
        tiles=1,
    )


def _copy_viewport(viewport_shot: Path, path: Path, width: int, height: int) -> FullPageShot | None:
    """The viewport screenshot written again as the full-page one, if it is exactly ``width`` x ``height`` pixels
    (one device pixel per CSS px, as the full-page screenshot is): else None, and the page is painted."""
    data = viewport_shot.read_bytes()
    with Image.open(io.BytesIO(data)) as image:  # header only
        if image.format != "PNG" or image.size != (width, height):
            return None
    return FullPageShot(digest=_write_png(path, data), width=width, height=height, document_width=width,
                        document_height=height, captured_height=height, captured_width=width, scale=1.0, tiles=0)


async def viewport_png(cdp: CDPSession, path: Path) -> FileDigest:
    """What the user would see in the window right now (the viewport at its current scroll position)."""
    # optimizeForSpeed only picks a faster zlib level: the same pixels (PNG is lossless), half the encoding time.
    params = {"format": "png", "fromSurface": True, "optimizeForSpeed": True}
    shot = await cdp.send("Page.captureScreenshot", params)
    return _write_png(path, base64.b64decode(shot["data"]))


def _write_png(path: Path, data: bytes) -> FileDigest:
    """``data`` written to ``path`` through a HashingWriter; on failure no partial file is left."""
    try:
        with HashingWriter(path) as out:
            out.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    assert out.digest is not None
    return out.digest
