"""The TLS certificate chain of every https origin a capture reached, asked of the browser once per origin.

The recorder hands each response to ``ChainCollector.seen``; the chain is asked (``Network.getCertificate``) in the
background, of the session that saw the response first and then of the other sessions that reached the origin: a
cross-site frame's own session knows the chain when its parent's does not (site isolation keeps it in the frame's
process). A chain the browser does not give is a ``certificate-missing`` warning, never a silent gap.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError

from evicap.capture.attach import Channel
from evicap.capture.flows import Event
from evicap.capture.types import CertificateChain
from evicap.errors import first_line

ATTEMPTS = 3  # a frame's session knows the chain once the frame's document has finished loading


class ChainCollector:
    """Chains by origin (``chains``), filled in the background as responses are seen."""

    def __init__(
        self,
        spawn: Callable[[Awaitable[Any]], None],
        warn: Callable[[str, str], None],
        channels_for: Callable[[Channel, str], list[Channel]],
    ) -> None:
        self.chains: dict[str, CertificateChain] = {}
        self._spawn = spawn
        self._warn = warn
        self._channels_for = channels_for  # the sessions to ask for an origin, the one that saw it first
        self._origins: set[str] = set()

    def seen(self, channel: Channel, response: Event) -> None:
        """A response arrived in ``channel``: ask for its origin's chain if it is https and not asked yet."""
        parts = urlsplit(response.get("url", ""))
        if parts.scheme != "https" or not response.get("securityDetails"):
            return
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        if origin in self._origins:
            return
        self._origins.add(origin)
        self._spawn(self._fetch(channel, origin, response))

    async def _fetch(self, channel: Channel, origin: str, response: Event) -> None:
        chain: tuple[bytes, ...] = ()
        error: str | None = None
        for attempt in range(ATTEMPTS):
            for asked in self._channels_for(channel, origin):
                try:
                    result = await asked.send("Network.getCertificate", {"origin": origin})
                except PlaywrightError as exc:
                    error = first_line(exc)
                    continue
                chain = tuple(base64.b64decode(item) for item in result.get("tableNames", []))
                if chain:
                    break
            if chain:
                break
            await asyncio.sleep(0.3 * (attempt + 1))
        if not chain:
            reason = f"not available: {error}" if error else "not reported by the browser"
            self._warn("certificate-missing", f"certificate chain of {origin} {reason}")
            return
        self.chains[origin] = CertificateChain(
            origin, chain, dict(response["securityDetails"]), response.get("remoteIPAddress")
        )
