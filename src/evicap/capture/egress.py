"""Which networks a captured page may make the browser reach.

A hostile page (or a target list from someone else) can point the browser at the investigator's own network:
loopback services, the office LAN, a cloud instance's metadata endpoint (169.254.169.254 hands out credentials).
Whatever it found there would be sealed as evidence. So, by default, a request is refused when its host resolves
to a loopback, private (RFC 1918, RFC 4193), link-local, shared (RFC 6598), multicast or cloud-metadata address,
unless the capture's target itself is there (capturing an intranet page on purpose), or ``--allow-network CIDR``
(or ``allow_networks`` in the config) lets that range in.

``EgressPolicy.check(url)`` resolves the host off the event loop (``loop.getaddrinfo``) and decides on every
address it resolves to: one forbidden address blocks the request (a name that answers both a public and a private
address is how DNS rebinding starts). ``check_address`` re-checks the address the browser actually connected to
(``remoteIPAddress`` of a response), which closes the rebinding window between our lookup and the browser's.

Through a proxy, names are not resolved here: that lookup would go to the local resolver, around the proxy (and
with SOCKS5 the proxy resolves names itself). IP literals are still checked, and the proxy's own address, which
is what ``remoteIPAddress`` shows for proxied responses, is not held against the page.

For tests on a loopback-only machine, ``treat_as_private`` (config ``egress_test_private``) names loopback
addresses that count as forbidden even though the target is on loopback too: on Linux 127.0.0.1 and 127.0.0.2
are both usable, so a target on 127.0.0.1 and a "private" service on 127.0.0.2 behave as a public site and an
intranet service would.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from evicap.errors import UsageError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Checked in this order; the first that matches names the rule in the record.
METADATA = tuple(ipaddress.ip_network(n) for n in (
    "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack, DigitalOcean ...
    "169.254.170.2/32",  # AWS ECS task credentials
    "100.100.100.200/32",  # Alibaba Cloud
    "192.0.0.192/32",  # Oracle Cloud (legacy)
    "fd00:ec2::254/128",  # AWS over IPv6
))
RULES: tuple[tuple[str, tuple[Network, ...]], ...] = (
    ("cloud-metadata", METADATA),
    ("loopback", (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))),
    ("private", tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))),
    ("unique-local", (ipaddress.ip_network("fc00::/7"),)),
    ("link-local", (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))),
    ("shared-address-space", (ipaddress.ip_network("100.64.0.0/10"),)),
    ("unspecified", (ipaddress.ip_network("0.0.0.0/8"), ipaddress.ip_network("::/128"))),
    ("multicast", (ipaddress.ip_network("224.0.0.0/4"), ipaddress.ip_network("ff00::/8"))),
)


def parse_networks(values: Iterable[str], *, source: str = "--allow-network") -> tuple[Network, ...]:
    """CIDRs (or single addresses) to networks; UsageError naming the bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise UsageError(f"{source}: not an IP network: {value!r}", hint="write it as 10.1.0.0/16 or 192.0.2.7") \
                from None
    return tuple(networks)


def _unmapped(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=4096)
def classify(address: Address) -> str | None:
    """The rule that forbids ``address`` by default, or None for an ordinary public address (remembered: a
    capture asks about the same few addresses for every request, several times each)."""
    address = _unmapped(address)
    for rule, networks in RULES:
        if any(address.version == n.version and address in n for n in networks):
            return rule
    return None


@dataclass(frozen=True)
class EgressDecision:
    """The policy's answer for one request."""

    allowed: bool
    address: str | None
    """The address decided on (the forbidden one when blocked), None when the host did not resolve."""
    rule: str | None
    """Why: a rule name such as ``loopback`` or ``cloud-metadata`` when blocked; ``allow-network 10.0.0.0/8``,
    ``target-network`` or None when allowed."""


@dataclass
class EgressPolicy:
    """Default-deny for internal networks, decided per request (see module docstring)."""

    target_url: str
    allow: tuple[Network, ...] = ()
    treat_as_private: tuple[Address, ...] = ()
    proxied: bool = False
    """Traffic goes through a proxy: no local name resolution (see module docstring)."""
    proxy_host: str | None = None
    _target_addresses: set[Address] | None = field(default=None, init=False, repr=False)
    _cache: dict[str, list[Address]] = field(default_factory=dict, init=False, repr=False)

    async def check(self, url: str) -> EgressDecision:
        """Decide for a request URL. Only http(s)/ws(s) reach the network; data:, blob: and the like pass."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https", "ws", "wss") or not parts.hostname:
            return EgressDecision(True, None, None)
        literal = _literal(parts.hostname)
        if literal is None and self.proxied:
            return EgressDecision(True, None, "proxied: names resolved by the proxy, not checked here")
        try:
            addresses = [literal] if literal is not None else await self._resolve(parts.hostname, parts.port)
        except OSError:
            return EgressDecision(True, None, None)  # the browser's own lookup will fail the same way; recorded then
        return await self._decide(addresses)

    async def check_address(self, address: str) -> EgressDecision:
        """Decide for the address a response actually came from (``remoteIPAddress``): the DNS-rebinding check."""
        parsed = _literal(address)
        if parsed is None:
            return EgressDecision(True, None, None)
        if self.proxied and self.proxy_host is not None and _literal(self.proxy_host) == parsed:
            return EgressDecision(True, str(parsed), "proxy")
        if self.proxied and self.proxy_host is not None and _literal(self.proxy_host) is None:
            return EgressDecision(True, str(parsed), "proxy")  # a proxy named by host: its address is not ours to judge
        return await self._decide([parsed])

    async def _decide(self, addresses: list[Address]) -> EgressDecision:
        target = await self._target()
        for address in addresses:
            plain = _unmapped(address)
            rule = "test-private" if plain in self.treat_as_private else classify(plain)
            if rule is None:
                continue
            allowed_by = next((n for n in self.allow if plain.version == n.version and plain in n), None)
            if allowed_by is not None:
                continue
            if self._target_allows(plain, rule, target):
                continue
            return EgressDecision(False, str(plain), rule)
        first = str(_unmapped(addresses[0])) if addresses else None
        return EgressDecision(True, first, self._allowed_rule(addresses, target))

    def _allowed_rule(self, addresses: list[Address], target: set[Address]) -> str | None:
        for address in map(_unmapped, addresses):
            if classify(address) is None:
                continue
            allowed_by = next((n for n in self.allow if address.version == n.version and address in n), None)
            if allowed_by is not None:
                return f"allow-network {allowed_by}"
            if self._target_allows(address, classify(address), target):
                return "target-network"
        return None

    def _target_allows(self, address: Address, rule: str | None, target: set[Address]) -> bool:
        """A target inside a forbidden range opens that range (loopback: 127.0.0.0/8 and ::1 together), never
        the test-private addresses; a target on a metadata endpoint opens only that address."""
        if rule in (None, "test-private"):
            return False
        if rule == "cloud-metadata":
            return address in target
        if rule == "loopback":
            return any(classify(t) == "loopback" and t not in self.treat_as_private for t in target)
        networks = dict(RULES)[rule]
        return any(t.version == n.version and t in n and address in n for t in target for n in networks
                   if address.version == n.version)

    async def _target(self) -> set[Address]:
        if self._target_addresses is None:
            parts = urlsplit(self.target_url)
            literal = _literal(parts.hostname or "")
            try:
                if literal is not None:
                    found = [literal]
                else:
                    found = [] if self.proxied else await self._resolve(parts.hostname or "", parts.port)
            except OSError:
                found = []
            self._target_addresses = {_unmapped(a) for a in found}
        return self._target_addresses

    async def _resolve(self, host: str, port: int | None) -> list[Address]:
        host = host.strip("[]")
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        if host in self._cache:
            return self._cache[host]
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
        found: list[Address] = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if address not in found:
                found.append(address)
        self._cache[host] = found
        return found


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def policy_for(
    target_url: str, allow: Iterable[str] = (), treat_as_private: Iterable[str] = (), *, proxy: str | None = None
) -> EgressPolicy:
    """The policy of one capture: its target, the --allow-network / config CIDRs, the test switch, the proxy
    (``scheme://host:port``) when there is one."""
    private = []
    for value in treat_as_private:
        try:
            private.append(ipaddress.ip_address(value))
        except ValueError:
            raise UsageError(f"egress_test_private: not an IP address: {value!r}") from None
    proxy_host = urlsplit(proxy).hostname if proxy else None
    return EgressPolicy(target_url, parse_networks(allow), tuple(private), proxied=bool(proxy), proxy_host=proxy_host)
