"""Snapshots taken during the quiet window, kept only when the page did not change after they began.

After the load event the capture waits for the network to be quiet (``recorder.QUIET_WINDOW`` after the last
HTTP event) so that late images and XHR are in the WARC and in the screenshots; then it photographs the page.
Most pages are still by then, and waiting first and photographing after costs the window and the snapshots one
after the other. So, when the profile has no steps, the snapshots are taken as soon as nothing is in flight and
the page has stayed still for ``STILL_FOR``, into a directory of their own, while the window runs out. They are
kept only if, from the start of that still moment until the page is stopped (the recorder's drain):

- no HTTP event came, in any frame or worker (``NetworkRecorder.http_events``), and
- no DOM mutation happened in any frame, as MutationObservers in an isolated world of each frame count them
  (the page's own scripts cannot see or stop them).

A page with a frame in another renderer process (a cross-site iframe, with site isolation on) cannot be watched
whole from the page's DevTools session, so it is not photographed ahead. Snapshots that are not kept were never
in the WARC or the manifest; their directory is removed, the page is photographed after the window as before,
and page facts say why (``snapshots.ahead_discarded``). Kept ones are moved into the bundle and copied into the
WARC at the same point as snapshots taken after the window, so the record's order is the same either way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import CDPSession, Page

from evicap.bundle.model import Artifact
from evicap.capture.attachments import AttachmentInputs, Snapshots, take_snapshots
from evicap.capture.recorder import NetworkRecorder
from evicap.detect.media import remember_screenshots
from evicap.errors import first_line

# The page must stay still (no HTTP event, no DOM mutation) this long before it is photographed ahead.
STILL_FOR = 0.05
# Snapshots taken ahead give up after this long (each step still gets attachments.MIN_STEP); the page is then
# photographed after the window as before.
AHEAD_SECONDS = 5.0
WORLD = "evicap-changes"
# In an isolated world of one frame: count DOM mutations from now on. takeRecords() adds those not yet delivered.
_OBSERVE = """(() => {
  let seen = 0;
  const observer = new MutationObserver(records => { seen += records.length; });
  observer.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  globalThis.__evicapChanges = () => seen + observer.takeRecords().length;
  return true;
})()"""
_COUNT = "globalThis.__evicapChanges()"


class DomChanges:
    """DOM mutations in every frame of the page, counted from isolated worlds."""

    def __init__(self, cdp: CDPSession) -> None:
        self._cdp = cdp
        self._contexts: list[int] = []

    async def watch(self, page: Page) -> bool:
        """Start counting in each frame; False when a frame is out of reach (another renderer process)."""
        tree = await self._cdp.send("Page.getFrameTree")
        frame_ids = _frame_ids(tree["frameTree"])
        if len(frame_ids) != len(page.frames):
            return False
        for frame_id in frame_ids:
            world = await self._cdp.send("Page.createIsolatedWorld", {"frameId": frame_id, "worldName": WORLD})
            context = world["executionContextId"]
            await self._evaluate(context, _OBSERVE)
            self._contexts.append(context)
        return True

    async def count(self) -> int:
        """Mutations so far in all watched frames. Raises when a frame's document is gone (it navigated)."""
        counts = [await self._evaluate(context, _COUNT) for context in self._contexts]
        return sum(int(n) for n in counts)

    async def _evaluate(self, context: int, expression: str) -> Any:
        result = await self._cdp.send(
            "Runtime.evaluate", {"expression": expression, "contextId": context, "returnByValue": True}
        )
        if "exceptionDetails" in result:
            raise RuntimeError(str(result["exceptionDetails"].get("text") or "script error"))
        return result.get("result", {}).get("value")


def _frame_ids(node: dict[str, Any]) -> list[str]:
    ids = [node["frame"]["id"]]
    for child in node.get("childFrames") or ():
        ids.extend(_frame_ids(child))
    return ids


@dataclass
class Ahead:
    """Snapshots taken during the quiet window and the marks they are judged against."""

    snapshots: Snapshots
    recorder: NetworkRecorder
    http_mark: int
    dom: DomChanges
    dom_mark: int
    hashing: asyncio.Future[None] | None  # the screenshots' PDQ, computed while the window runs out

    async def hashed(self) -> None:
        """Wait for the screenshots' PDQ begun ahead, so that the capture's media hashes find it remembered."""
        if self.hashing is not None:
            try:
                await self.hashing
            except Exception:  # the capture's own hashing of the same files meets the error and reports it
                pass

    async def stale(self) -> str | None:
        """Why the snapshots no longer show the page, or None when they do. Call once the page is stopped."""
        if not self.snapshots.whole:
            return "a snapshot step failed or was abandoned: " + ", ".join(self.snapshots.failed)
        requests = self.recorder.http_events - self.http_mark
        if requests:
            return f"{requests} network event(s) after the snapshots began"
        try:
            mutations = await self.dom.count() - self.dom_mark
        except Exception as exc:  # a frame navigated or went away: the page is not the one photographed
            return f"the page's frames changed ({first_line(exc)})"
        if mutations:
            return f"{mutations} DOM change(s) after the snapshots began"
        return None

    def discard(self) -> None:
        """Remove the directory (after the snapshots were moved into the bundle, or instead of that)."""
        shutil.rmtree(self.snapshots.directory, ignore_errors=True)


async def photograph_ahead(
    page: Page, cdp: CDPSession, recorder: NetworkRecorder, directory: Path, inputs: AttachmentInputs,
    quiet: asyncio.Future[bool],
) -> Ahead | None:
    """While ``quiet`` (the quiet wait) runs: once nothing is in flight and the page stayed still for STILL_FOR,
    take the snapshots into ``directory``. None when the wait ended first, the page never stood still or a frame
    cannot be watched; the snapshots are then taken after the window."""
    while recorder.busy:
        if quiet.done():
            return None
        await asyncio.sleep(0.02)
    if quiet.done():
        return None
    http_mark = recorder.http_events
    dom = DomChanges(cdp)
    try:
        if not await dom.watch(page):
            return None
        dom_mark = await dom.count()
        await asyncio.sleep(STILL_FOR)
        if recorder.http_events != http_mark or await dom.count() != dom_mark:
            return None
    except Exception:  # a frame navigated or detached while watched: not a still page
        return None
    hashing: list[asyncio.Future[None]] = []

    def hash_screenshots(shots: Sequence[Artifact]) -> None:
        listed = [shot.to_json() for shot in shots]
        hashing.append(asyncio.ensure_future(asyncio.to_thread(remember_screenshots, directory, listed)))

    inputs = dataclasses.replace(inputs, deadline=time.monotonic() + AHEAD_SECONDS, on_screenshots=hash_screenshots)
    snapshots = await take_snapshots(page, cdp, directory, inputs, abandon=lambda: recorder.http_events != http_mark)
    return Ahead(snapshots, recorder, http_mark, dom, dom_mark, hashing[0] if hashing else None)
