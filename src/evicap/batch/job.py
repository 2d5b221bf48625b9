"""The real capture behind the batch scheduler: one shared browser, one isolated context per target.

The browser is started once and shared by every capture (each gets a fresh context from ``capture_url``). If it
crashes, the next capture starts a new one, so one hostile page does not fail the rest of the list; the capture
that was running when it crashed fails with a ``CaptureError`` and is retried by the scheduler.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import threading
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from playwright.async_api import Browser

from evicap.batch.runner import CaptureFn
from evicap.batch.targets import Target
from evicap.bundle.model import CaptureResult
from evicap.bundle.staging import host_label, safe_component
from evicap.capture.browser import BrowserInfo, launch
from evicap.capture.options import CaptureOptions


class SharedBrowser:
    """One browser for the whole batch, (re)started on demand."""

    def __init__(self, info: BrowserInfo, *, no_sandbox: bool = False, browser_user: str | None = None) -> None:
        self.info = info
        self.no_sandbox, self.browser_user = no_sandbox, browser_user  # safety (issue 12)
        self.restarts = 0
        self._stack = AsyncExitStack()
        self._browser: Browser | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Browser:
        async with self._lock:
            if self._browser is not None and not self._browser.is_connected():
                self.restarts += 1
                await self._close_stack()
            if self._browser is None:
                self._browser = await self._launch()
            return self._browser

    async def _launch(self) -> Browser:
        """Start the browser with SIGINT ignored, so that the Playwright driver and the browser inherit "ignore".

        A terminal's Ctrl-C goes to the whole process group; without this the driver dies with it and every
        capture in flight fails, instead of finishing as a clean stop promises. Our own handler (installed by the
        caller on the event loop) is put back at once.
        """
        if threading.current_thread() is not threading.main_thread():
            return await self._stack.enter_async_context(self._launcher())
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return await self._stack.enter_async_context(self._launcher())
        finally:
            signal.signal(signal.SIGINT, previous)

    def _launcher(self) -> Any:
        return launch(self.info, handle_sigint=False, no_sandbox=self.no_sandbox, browser_user=self.browser_user)

    async def _close_stack(self) -> None:
        stack, self._stack, self._browser = self._stack, AsyncExitStack(), None
        try:
            await stack.aclose()
        except Exception:  # a crashed browser may fail to close cleanly; it is gone either way
            pass

    async def close(self) -> None:
        async with self._lock:
            await self._close_stack()


def target_options(base: CaptureOptions, target: Target) -> CaptureOptions:
    """The batch's options with this target's item id, profile and note."""
    extra: dict[str, Any] = dict(base.extra)
    if target.note:
        extra["note"] = target.note
    extra.update({f"target_{k}": v for k, v in target.extra.items()})
    extra["target_line"] = target.line
    return dataclasses.replace(base, item=target.item, profile=target.profile or base.profile, extra=extra,
                               description=target.description or base.description)


def staging_prefix(target: Target) -> str:
    """Start of the names ``capture_url`` gives this target's staging directories (see bundle.staging)."""
    return f"{safe_component(target.item, fallback='item')}_{host_label(target.url)}_"


HANG_GUARD = 120.0  # seconds past --timeout + SEAL_MARGIN before batch stops a capture that hangs


def batch_target_timeout(timeout: float) -> float:
    """The batch's default hang guard for one attempt. A capture holds --timeout (plus its sealing margin) by
    itself and seals what it has, partial if the deadline cut it; the guard only stops one that hangs."""
    from evicap.capture.session import SEAL_MARGIN

    return timeout + SEAL_MARGIN + HANG_GUARD


def browser_capture(shared: SharedBrowser, base: CaptureOptions, output: Path, sealing: Any) -> CaptureFn:
    """A CaptureFn running ``capture_url`` on the shared browser. A cancelled capture (second Ctrl-C, hang
    guard) keeps its staging directory: evidence is never deleted; the next run sets it aside (batch.case)."""
    from evicap.capture.session import capture_url
    from evicap.capture.staged import acquire

    async def capture(target: Target, attempt: int) -> CaptureResult:
        browser = await shared.get()
        options = target_options(base, target)
        staged = await capture_url(browser, target.url, options, output, browser_info=shared.info, sealing=sealing)
        return await acquire(staged, sealing)

    return capture
