"""The hook through which every request of every target passes before it leaves the browser.

The capture core does not decide where a page may connect: an ``EgressGate`` does (``evicap.capture.egress``
holds the policy). The recorder asks it at the Fetch request stage of each attached target and fails a refused
request before it reaches the network (``Fetch.failRequest`` with ``BlockedByClient``); each refusal is a warning
and an entry in the manifest. Without a gate, nothing is intercepted at the request stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Decision(Protocol):
    @property
    def allowed(self) -> bool: ...

    @property
    def address(self) -> str | None: ...

    @property
    def rule(self) -> str | None: ...


class EgressGate(Protocol):
    async def check(self, url: str) -> Decision: ...


@dataclass(frozen=True)
class Blocked:
    """One request the gate refused, for the warnings and the manifest."""

    url: str
    address: str | None
    rule: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"url": self.url, "address": self.address, "rule": self.rule}
