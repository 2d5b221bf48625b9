"""Which documents the main frame showed, in order: the navigation the manifest's ``target`` describes.

Fed from the page's own session only (the main frame lives there): every main-frame document request, the frame
commits (``Page.frameNavigated``) and the reasons the page gave for moving itself on. ``settle()`` turns that into
the Navigation once the page is done; it is pure and may run more than once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evicap.capture.flows import Event, Flow, update_navigation
from evicap.capture.types import Navigation

MAX_LISTED_HOPS = 100  # redirect hops listed in the manifest; a refresh loop is cut in the middle


@dataclass
class NavigationTracker:
    main_frame: str | None = None
    navigation: Navigation = field(default_factory=lambda: Navigation(requested_url=""))
    first: Flow | None = None  # the first main-frame document: the URL asked for
    _documents: dict[str, Flow] = field(default_factory=dict)  # main-frame document flows by loader id
    _committed: list[str] = field(default_factory=list)  # loader ids the main frame showed, in order
    _reasons: dict[str, str] = field(default_factory=dict)  # URL the page moved itself to -> Chromium's reason

    def on_document(self, flow: Flow, event: Event) -> None:
        """A request of the page's session: kept when it is a main-frame document."""
        if event.get("type") != "Document" or event.get("frameId") != self.main_frame:
            return
        self._documents[str(event.get("loaderId") or flow.request_id)] = flow
        if self.first is None:
            self.first = flow
            self.navigation.requested_url = flow.hops[0].url

    def on_requested(self, event: Event) -> None:
        if event.get("frameId") == self.main_frame and event.get("url"):
            self._reasons.setdefault(str(event["url"]), str(event.get("reason") or "other"))

    def on_navigated(self, event: Event) -> None:
        frame = event.get("frame") or {}
        loader = frame.get("loaderId")
        main = frame.get("id") == self.main_frame and not frame.get("parentId")
        if main and isinstance(loader, str) and loader not in self._committed:
            self._committed.append(loader)

    def settle(self) -> int:
        """Fill ``navigation`` from what was shown; returns how many hops there were before any cut (a refresh
        loop is listed by its first and last hops)."""
        if self.first is None:
            return 0
        shown = [self._documents[loader] for loader in self._committed if loader in self._documents]
        if not shown or (shown[0] is not self.first and self.first.hops[-1].response is not None):
            shown = [self.first, *(doc for doc in shown if doc is not self.first)]
        update_navigation(self.navigation, shown, self._reasons)
        hops = self.navigation.redirects
        if len(hops) > MAX_LISTED_HOPS:
            keep = MAX_LISTED_HOPS // 2
            self.navigation.redirects = hops[:keep] + hops[-keep:]
        return len(hops)
