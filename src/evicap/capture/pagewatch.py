"""What the page does on its own during a capture: dialogs, pop-ups, TLS state. Recorded, never obeyed.

Dialogs (alert/confirm/prompt/beforeunload) are dismissed at once so a hostile page cannot stall the capture;
pop-up windows are recorded and closed, as their content is not the target.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import BrowserContext, CDPSession, Dialog, Page

from evicap.bundle.manifest import utc_now

MAX_EVENTS = 200
MAX_TEXT = 2000




@dataclass
class PageWatch:
    """Collects dialogs, pop-ups and TLS errors for the manifest and page facts."""

    dialogs: list[dict[str, Any]] = field(default_factory=list)
    popups: list[dict[str, Any]] = field(default_factory=list)
    tls_errors: list[str] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def attach(self, context: BrowserContext, page: Page, cdp: CDPSession) -> None:
        page.on("dialog", self._on_dialog)
        context.on("page", self._on_popup)
        cdp.on("Security.visibleSecurityStateChanged", self._on_security)
        try:
            await cdp.send("Security.enable")
        except Exception:  # older browsers: TLS errors are still visible through navigation errors
            pass

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_dialog(self, dialog: Dialog) -> None:
        if len(self.dialogs) < MAX_EVENTS:
            self.dialogs.append(
                {
                    "time": utc_now(),
                    "type": dialog.type,
                    "message": dialog.message[:MAX_TEXT],
                    "default_value": dialog.default_value[:MAX_TEXT] if dialog.default_value else None,
                    "action": "dismissed" if dialog.type != "beforeunload" else "accepted",
                }
            )
        # beforeunload is accepted so it can never hold a navigation hostage; the others are dismissed.
        self._spawn(dialog.accept() if dialog.type == "beforeunload" else dialog.dismiss())

    def _on_popup(self, popup: Page) -> None:
        entry: dict[str, Any] = {"time": utc_now(), "url": popup.url, "action": "closed"}
        if len(self.popups) < MAX_EVENTS:
            self.popups.append(entry)

        async def settle_and_close() -> None:
            try:
                await popup.wait_for_load_state("domcontentloaded", timeout=3000)
            except Exception:
                pass
            entry["url"] = popup.url
            try:
                await popup.close()
            except Exception:
                pass

        self._spawn(settle_and_close())

    def _on_security(self, params: dict[str, Any]) -> None:
        state = params.get("visibleSecurityState", {})
        cert_state = state.get("certificateSecurityState") or {}
        error = cert_state.get("certificateNetworkError")
        if error and error not in self.tls_errors and len(self.tls_errors) < MAX_EVENTS:
            self.tls_errors.append(str(error))

    async def settle(self) -> None:
        """Let pending dialog dismissals and pop-up closes finish (bounded)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
