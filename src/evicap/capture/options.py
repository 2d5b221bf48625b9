"""Options of one capture, as the user set them. Recorded whole in the manifest and the warcinfo record."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evicap.capture.egress_gate import EgressGate

# Fields that change the capture but are not recorded as options (objects, or secrets).
NOT_RECORDED = ("egress", "proxy_auth")


@dataclass(frozen=True)
class CaptureOptions:
    """Everything that changes how a page is captured. Frozen: one value per capture."""

    case: str | None = None
    item: str | None = None
    investigator: str | None = None
    organization: str | None = None
    authority: str | None = None  # legal authority or purpose of the collection
    persona: str | None = None  # virtual identity / investigation account used, if any
    description: str | None = None  # what the exhibit is, in the investigator's words (shown in the report)
    timeout: float = 60.0  # seconds for the whole page load + behaviors; the capture ends within it
    viewport: tuple[int, int] = (1280, 900)
    user_agent: str | None = None  # None: the browser's own
    proxy: str | None = None
    ignore_tls_errors: bool = False
    profile: str = "auto"
    session: str | None = None  # name of a saved login session (storage state), never bundled
    keep_secrets: bool = False  # keep Cookie/Authorization headers in WARC request records
    max_media_size: int = 512 * 1024 * 1024  # bytes; cap for a re-fetched whole media file
    max_body_size: int | None = None  # None: no cap on any single response body
    full_page_max_height: int = 200_000  # CSS px; taller pages are cut and the cut is recorded
    match_lists: tuple[str, ...] = ()  # hash-list files matched at capture time (read, never bundled)
    extra: dict[str, Any] = field(default_factory=dict)
    egress: EgressGate | None = field(default=None, compare=False)  # asked before each request; None: no gate
    # Safety (issue 12). proxy is scheme://host:port only; its user name and password travel in proxy_auth,
    # which is never recorded (target.split_proxy).
    proxy_auth: tuple[str, str] | None = field(default=None, repr=False, compare=False)
    no_sandbox: bool = False  # the user's explicit --no-sandbox: recorded, with a warning
    allow_networks: tuple[str, ...] = ()  # --allow-network CIDRs that widen the egress policy
    egress_test_private: tuple[str, ...] = ()  # tests only: loopback addresses the egress policy treats as private
    egress_check_url: str | None = None  # asked for our public address through the proxy; None: offline, not asked

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in NOT_RECORDED}
        data["extra"] = dict(self.extra)
        data["viewport"] = {"width": self.viewport[0], "height": self.viewport[1]}
        return data
