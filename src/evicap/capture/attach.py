"""Every target the page creates, attached before it runs: out-of-process frames, dedicated and shared workers.

With site isolation on, a cross-site frame runs in its own renderer and its traffic is reported only to a DevTools
session attached to that frame's target; the same holds for workers. ``TargetTree`` asks each session for
``Target.setAutoAttach`` with ``waitForDebuggerOnStart``, so a new target waits until we have enabled what we need
in it (``on_attach``: Network, Fetch) and only then runs (``Runtime.runIfWaitingForDebugger``), and it does the
same inside every target it attaches to (a worker started by a cross-site frame is attached too).

Why child sessions travel inside ``Target.sendMessageToTarget`` / ``Target.receivedMessageFromTarget`` (the
"non-flat" protocol) and not as flat sessions: Playwright's DevTools connection drops every message whose
``sessionId`` it did not create itself, so a flat child session of ours would never hear back. Wrapping costs one
JSON encode per message and changes nothing in what the browser does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from playwright.async_api import CDPSession
from playwright.async_api import Error as PlaywrightError

from evicap.errors import first_line

Event = dict[str, Any]
Handler = Callable[[Event], Any]
# Target types we attach to and record. Service workers are blocked for the capture (every request must be
# seen as the page made it); "other" and browser-internal types carry no page traffic.
RECORDED_TYPES = ("iframe", "worker", "shared_worker", "page")
AUTO_ATTACH = {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": False}
# How long a shared worker's script is held in its page's Fetch, at most, for the worker's session to be handed
# its commands.
SHARED_WORKER_HOLD = 3.0


class Channel(Protocol):
    """One DevTools session: the page's own, or a child target's."""

    key: str  # "page" for the page's session, else the child session id

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]: ...

    def on(self, event: str, handler: Handler) -> None: ...


class TargetGone(PlaywrightError):
    """A command to a target that detached (closed frame, ended worker) before it answered."""


class PageChannel:
    """A page's own Playwright CDP session (the captured page's, or a pop-up's)."""

    def __init__(self, cdp: CDPSession, key: str = "page") -> None:
        self.key = key
        self._cdp = cdp

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._cdp.send(method, params or {})
        return result

    def on(self, event: str, handler: Handler) -> None:
        self._cdp.on(event, handler)


class ChildChannel:
    """A child target's session, spoken through its parent's Target.sendMessageToTarget."""

    _ids = itertools.count(1)

    def __init__(self, parent: Channel, session_id: str) -> None:
        self.key = session_id
        self._parent = parent
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._handlers: dict[str, list[Handler]] = {}
        self.closed = False
        self.sent: set[str] = set()  # methods handed to the target (answered or not)
        self.sending = asyncio.Event()  # set at each hand-over

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.closed:
            raise TargetGone(f"{method}: target closed")
        call_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        message = json.dumps({"id": call_id, "method": method, "params": params or {}})
        try:
            await self._parent.send("Target.sendMessageToTarget", {"sessionId": self.key, "message": message})
            self.sent.add(method)
            self.sending.set()
            return await future
        finally:
            self._pending.pop(call_id, None)

    def on(self, event: str, handler: Handler) -> None:
        self._handlers.setdefault(event, []).append(handler)

    def dispatch(self, message: Event) -> None:
        """A message from the target: the answer to one of our calls, or an event."""
        call_id = message.get("id")
        if call_id is not None:
            future = self._pending.get(int(call_id))
            if future is not None and not future.done():
                error = message.get("error")
                if error:
                    future.set_exception(PlaywrightError(str(error.get("message") or error)))
                else:
                    future.set_result(message.get("result") or {})
            return
        for handler in self._handlers.get(str(message.get("method")), ()):
            handler(message.get("params") or {})

    def close(self) -> None:
        self.closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(TargetGone("target closed before it answered"))


@dataclass
class TargetRecord:
    """One target of the capture, as the manifest lists it."""

    target_id: str
    type: str
    url: str
    parent: str | None  # target id of the target that created it ("page" for the page's own session)
    session: str
    attached: bool = False
    error: str | None = None
    late: bool = False  # attached after it started (a pop-up; a shared worker not held): first requests may be missing

    def to_json(self) -> dict[str, Any]:
        return {
            "target_id": self.target_id,
            "type": self.type,
            "url": self.url,
            "parent": self.parent,
            "attached": self.attached,
            "attached_late": self.late,
            "error": self.error,
        }


OnAttach = Callable[[Channel, TargetRecord], Awaitable[None]]
Warn = Callable[[str, str, "str | None"], None]


@dataclass
class TargetTree:
    """Attaches recursively to every target below the page; ``on_attach`` prepares each before it runs."""

    on_attach: OnAttach
    warn: Warn
    spawn: Callable[[Awaitable[Any]], None]
    targets: list[TargetRecord] = field(default_factory=list)
    _children: dict[str, ChildChannel] = field(default_factory=dict)
    _context_id: str | None = None  # browser context of the capture
    _asked: set[str] = field(default_factory=set)
    _worker_urls: dict[str, str] = field(default_factory=dict)  # shared worker target id -> its script URL
    _worker_sessions: dict[str, ChildChannel] = field(default_factory=dict)  # script URL -> the worker's session
    _workers_gone: set[str] = field(default_factory=set)  # script URLs of shared workers we could not attach to

    async def discover(self, channel: Channel, context_id: str) -> None:
        """Attach to the context's pop-ups and shared workers as soon as the browser creates them.

        They are no child targets of the page, so auto-attach does not bring them; they can only be held before
        they run by a browser-level auto-attach, and that does not hold them for us. Tried (Chromium 156): a
        browser session (``new_browser_cdp_session``) with ``Target.setAutoAttach`` (flat, as the browser level
        requires; ``waitForDebuggerOnStart``; filter page + shared_worker) does report each new pop-up and shared
        worker as waiting, and a second, non-flat ``Target.attachToTarget`` session can be prepared in it; but
        the target does not wait for us: a ``window.open`` page is held on the renderer side and runs when the
        first session releases it, which is Playwright's (it holds every new page for its own set-up), and a
        shared worker ran its first fetch while our flat session still held it. (Holding it longer does not
        help, and the flat session's ``Runtime.runIfWaitingForDebugger`` cannot even be sent: Playwright drops
        every message of a flat session it did not create, see above.)

        So they are attached on ``Target.targetCreated``. A shared worker is held all the same: its script
        response passes its page's Fetch, which keeps it paused until the worker's session has been handed its
        commands (``shared_worker_ready``); such a worker is not listed late. A pop-up is listed attached late:
        its document and first requests may leave before its session is ready, and are recorded from
        Playwright's own session of the pop-up (popups.py), which is ready before the pop-up runs."""
        self._context_id = context_id
        channel.on("Target.targetCreated", lambda e: self._created(channel, e))
        await channel.send("Target.setDiscoverTargets", {"discover": True})

    def _created(self, channel: Channel, event: Event) -> None:
        info = event.get("targetInfo") or {}
        target_id = str(info.get("targetId"))
        if info.get("browserContextId") != self._context_id or target_id in self._asked:
            return
        if not (info.get("type") == "shared_worker" or (info.get("type") == "page" and info.get("openerId"))):
            return
        self._asked.add(target_id)
        if info.get("type") == "shared_worker":
            self._worker_urls[target_id] = str(info.get("url") or "")
        self.spawn(self._attach_late(channel, target_id, info))

    async def shared_worker_ready(self, url: str) -> None:
        """Called while a shared worker's script response is held in its page's Fetch: returns once the worker's
        session has been handed ``Network.enable`` (bounded by SHARED_WORKER_HOLD). The worker answers nothing
        before it runs, and it cannot run before it has its script; the commands it was handed are carried out
        first when it starts (tested: with our attach delayed by 1 s, its first fetches are recorded only with
        this hold). A worker handed them in time is attached before it ran: it is not listed late."""
        loop = asyncio.get_running_loop()
        until = loop.time() + SHARED_WORKER_HOLD
        appear_by = loop.time() + SHARED_WORKER_HOLD / 3  # the browser reports the target as its script is fetched
        while loop.time() < until:
            child = self._worker_sessions.get(url)
            if url in self._workers_gone or (child is not None and child.closed):
                return
            if child is None:
                if url not in self._worker_urls.values() and loop.time() > appear_by:
                    return
                await asyncio.sleep(0.01)
                continue
            if "Network.enable" in child.sent:
                for record in self.targets:
                    if record.session == child.key:
                        record.late = False
                return
            child.sending.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(child.sending.wait(), max(0.0, until - loop.time()))

    async def _attach_late(self, channel: Channel, target_id: str, info: Event) -> None:
        try:
            await channel.send("Target.attachToTarget", {"targetId": target_id, "flatten": False})
        except PlaywrightError as exc:
            url = str(info.get("url") or "") or None
            self.targets.append(TargetRecord(target_id, str(info.get("type")), url or "", "page", "",
                                             error=first_line(exc)))
            self.warn("target-unattached", f"could not record {info.get('type')} {url}: {first_line(exc)}", url)
            if target_id in self._worker_urls:
                self._workers_gone.add(self._worker_urls[target_id])

    async def watch(self, channel: Channel, parent_id: str | None = None) -> None:
        """Listen for targets below ``channel`` and switch auto-attach on there."""
        channel.on("Target.attachedToTarget", lambda e: self._attached(channel, parent_id, e))
        channel.on("Target.detachedFromTarget", self._detached)
        channel.on("Target.receivedMessageFromTarget", self._message)
        await channel.send("Target.setAutoAttach", AUTO_ATTACH)

    def _message(self, event: Event) -> None:
        child = self._children.get(str(event.get("sessionId")))
        if child is not None:
            child.dispatch(json.loads(event.get("message") or "{}"))

    def _detached(self, event: Event) -> None:
        child = self._children.pop(str(event.get("sessionId")), None)
        if child is not None:
            child.close()

    def _attached(self, parent: Channel, parent_id: str | None, event: Event) -> None:
        info = event.get("targetInfo") or {}
        session_id = str(event["sessionId"])
        child = ChildChannel(parent, session_id)
        self._children[session_id] = child
        if str(info.get("targetId")) in self._worker_urls:
            self._worker_sessions[self._worker_urls[str(info.get("targetId"))]] = child
        record = TargetRecord(
            target_id=str(info.get("targetId")),
            type=str(info.get("type")),
            url=str(info.get("url") or ""),
            parent=parent_id or str(info.get("openerId") or "page"),
            late=str(info.get("targetId")) in self._asked,
            session=session_id,
        )
        self.targets.append(record)
        self.spawn(self._prepare(child, record, bool(event.get("waitingForDebugger"))))

    async def _prepare(self, child: ChildChannel, record: TargetRecord, waiting: bool) -> None:
        try:
            if record.type in RECORDED_TYPES:
                await self.on_attach(child, record)
                await self._watch_below(child, record)
            record.attached = record.type in RECORDED_TYPES
            if not record.attached:
                record.error = f"not recorded ({record.type} targets carry no page traffic)"
        except PlaywrightError as exc:
            record.error = first_line(exc)
            # A target that ended before we were ready is named too: what it did in its moment is not recorded.
            why = "it ended before its session was ready" if child.closed else record.error
            self.warn("target-unattached", f"could not record {record.type} {record.url or '(no URL yet)'}: {why}",
                      record.url or None)
        finally:
            if waiting and not child.closed:
                try:
                    await child.send("Runtime.runIfWaitingForDebugger")
                except PlaywrightError:
                    pass

    async def _watch_below(self, child: ChildChannel, record: TargetRecord) -> None:
        try:
            await self.watch(child, record.target_id)
        except TargetGone:
            raise
        except PlaywrightError:
            pass  # a target type without the Target domain (some workers) has no targets below it
