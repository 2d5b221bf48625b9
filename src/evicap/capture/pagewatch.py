"""What the page does on its own during a capture: dialogs, pop-ups, TLS state. Recorded, never obeyed.

Dialogs (alert/confirm/prompt/beforeunload) are dismissed at once so a hostile page cannot stall the capture;
pop-up windows are recorded and closed, as their content is not the target.

Certificate errors, when the investigator chose to capture despite them (``--ignore-tls-errors``), are taken over
through ``Security.setOverrideCertificateErrors``: the browser asks about each one (``Security.certificateError``,
naming the net error and the URL) and we let it through after writing it down. Both the full browser and the
headless shell send these events, so the bundle names the exact error either way.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import BrowserContext, CDPSession, ConsoleMessage, Dialog, Page

from evicap.bundle.manifest import utc_now
from evicap.errors import first_line

MAX_EVENTS = 200
MAX_TEXT = 2000
POPUP_LOAD = 10.0  # seconds a pop-up may take to load before it is recorded as it stands and closed

SERVICE_WORKER_WATCH = """(() => {
  const container = self.ServiceWorkerContainer;
  if (!container) return;
  const blocked = container.prototype.register;
  const say = console.warn.bind(console);
  container.prototype.register = function (script, options) {
    try {
      const scope = options && options.scope ? String(options.scope) : null;
      say(TOKEN + JSON.stringify({ script: String(new URL(script, location.href)), scope, page: location.href }));
    } catch (error) {}
    return blocked.apply(this, arguments);
  };
})();"""

# Records a pop-up (its exchanges, its document) before it is closed; returns facts for its manifest entry.
RecordPopup = Callable[[Page], Awaitable[dict[str, Any]]]


@dataclass
class PageWatch:
    """Collects dialogs, pop-ups and TLS errors for the manifest and page facts."""

    dialogs: list[dict[str, Any]] = field(default_factory=list)
    popups: list[dict[str, Any]] = field(default_factory=list)
    tls_errors: list[str] = field(default_factory=list)  # distinct net errors, in order seen
    tls_error_urls: list[dict[str, Any]] = field(default_factory=list)  # each error with its URL and time
    record_popup: RecordPopup | None = None
    service_workers: list[dict[str, Any]] = field(default_factory=list)  # registrations refused
    _token: str = field(default_factory=lambda: "evicap-sw-" + secrets.token_hex(16) + ":")
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def attach(
        self, context: BrowserContext, page: Page, cdp: CDPSession, *, ignore_tls_errors: bool = False
    ) -> None:
        page.on("dialog", self._on_dialog)
        page.on("console", self._on_console)
        context.on("page", self._on_popup)
        # Service workers are blocked for the capture (Playwright's context option replaces register()); this
        # script, run after Playwright's in every frame, reports each attempt under a per-capture token the
        # page cannot read (it lives in a closure), so the attempt is recorded and not just refused.
        await context.add_init_script(SERVICE_WORKER_WATCH.replace("TOKEN", json.dumps(self._token)))
        if ignore_tls_errors:
            cdp.on("Security.certificateError", lambda params: self._on_certificate_error(cdp, params))
            await cdp.send("Security.enable")
            await cdp.send("Security.setOverrideCertificateErrors", {"override": True})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_dialog(self, dialog: Dialog) -> None:
        entry: dict[str, Any] = {
            "time": utc_now(),
            "type": dialog.type,
            "message": dialog.message[:MAX_TEXT],
            "default_value": dialog.default_value[:MAX_TEXT] if dialog.default_value else None,
            "action": "pending",
        }
        if len(self.dialogs) < MAX_EVENTS:
            self.dialogs.append(entry)

        async def answer() -> None:
            # beforeunload is accepted so it can never hold a navigation hostage; the others are dismissed.
            wanted = "accepted" if dialog.type == "beforeunload" else "dismissed"
            try:
                await (dialog.accept() if dialog.type == "beforeunload" else dialog.dismiss())
            except Exception as exc:  # the page or browser went away first: say what really happened
                entry["action"] = f"not {wanted}: {first_line(exc)}"
                return
            entry["action"] = wanted

        self._spawn(answer())

    def _on_console(self, message: ConsoleMessage) -> None:
        text = message.text
        if not text.startswith(self._token) or len(self.service_workers) >= MAX_EVENTS:
            return
        try:
            attempt = json.loads(text[len(self._token):])
        except ValueError:
            return
        if isinstance(attempt, dict):
            self.service_workers.append({
                "time": utc_now(),
                "script_url": str(attempt.get("script"))[:MAX_TEXT],
                "scope": str(attempt["scope"])[:MAX_TEXT] if attempt.get("scope") else None,
                "page_url": str(attempt.get("page"))[:MAX_TEXT],
                "action": "blocked (service workers are off for the capture)",
            })

    def _on_popup(self, popup: Page) -> None:
        popup.on("console", self._on_console)
        entry: dict[str, Any] = {"time": utc_now(), "url": popup.url, "action": "pending"}
        if len(self.popups) < MAX_EVENTS:
            self.popups.append(entry)

        async def record_and_close() -> None:
            recorded = False
            if self.record_popup is not None:
                try:
                    entry.update(await self.record_popup(popup))
                    recorded = True
                except Exception as exc:  # a pop-up that closed itself, a crashed renderer
                    entry["record_error"] = first_line(exc)
            else:
                try:
                    await popup.wait_for_load_state("domcontentloaded", timeout=3000)
                except Exception:
                    pass
            entry["url"] = popup.url
            done = "recorded" if recorded else "not recorded" if self.record_popup is not None else None
            if popup.is_closed():  # the page closed it (or itself) before we did: said as it happened
                entry["action"] = ", ".join(filter(None, [done, "closed by the page"]))
                return
            try:
                await popup.close()
            except Exception as exc:
                entry["action"] = ", ".join(filter(None, [done, f"close failed: {first_line(exc)}"]))
                return
            entry["action"] = f"{done} and closed" if done else "closed"
            entry["closed_at"] = utc_now()

        self._spawn(record_and_close())

    def _on_certificate_error(self, cdp: CDPSession, params: dict[str, Any]) -> None:
        code = str(params.get("errorType") or "unknown certificate error")
        error = code if code.startswith("net::") else f"net::{code}"
        if error not in self.tls_errors and len(self.tls_errors) < MAX_EVENTS:
            self.tls_errors.append(error)
        if len(self.tls_error_urls) < MAX_EVENTS:
            self.tls_error_urls.append({"time": utc_now(), "error": error, "url": str(params.get("requestURL"))})
        self._spawn(cdp.send("Security.handleCertificateError", {"eventId": params["eventId"], "action": "continue"}))

    async def settle(self, timeout: float = POPUP_LOAD + 5) -> None:
        """Let pending dialog answers and pop-up records finish (bounded)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=max(0.5, timeout))
