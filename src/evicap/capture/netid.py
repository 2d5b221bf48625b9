"""The capturing machine's network identity, as the Berkeley Protocol asks: its addresses and the way out.

Recorded in every manifest (``environment.network``):
- the machine's local addresses, per interface (Linux: ioctl and /proc/net/if_inet6; elsewhere the host name's
  addresses);
- the first hop the browser's traffic takes (the proxy, else the target), and the local address and interface the
  kernel routes it by. Finding that sends nothing: a UDP socket is "connected" and asked for its local name;
- the public egress address only when the user configured ``egress_check_url``; it is then fetched through the
  capture's own browser context, so through the same proxy, and kept with its response (``egress_check``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import struct
from typing import Any
from urllib.parse import urlsplit

SIOCGIFADDR = 0x8915
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6 = re.compile(r"\b[0-9a-fA-F:]{2,39}:[0-9a-fA-F]{1,4}\b")


def local_addresses() -> list[dict[str, str]]:
    """Every address of this machine with its interface and family."""
    found: list[dict[str, str]] = []
    if hasattr(socket, "if_nameindex") and os.path.exists("/proc/net/if_inet6"):
        try:
            import fcntl

            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                for _, name in socket.if_nameindex():
                    try:
                        raw = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
                    except OSError:
                        continue  # no IPv4 address on this interface
                    found.append({"interface": name, "address": socket.inet_ntoa(raw[20:24]), "family": "ipv4"})
        except (ImportError, OSError):
            pass
        try:
            with open("/proc/net/if_inet6", encoding="ascii") as handle:
                for line in handle:
                    fields = line.split()
                    if len(fields) >= 6:
                        address = str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
                        found.append({"interface": fields[5], "address": address, "family": "ipv6"})
        except OSError:
            pass
    if not found:
        try:
            for info in socket.getaddrinfo(socket.gethostname(), None):
                address = str(info[4][0])
                family = "ipv6" if info[0] == socket.AF_INET6 else "ipv4"
                entry = {"interface": "unknown", "address": address, "family": family}
                if entry not in found:
                    found.append(entry)
        except OSError:
            pass
    return found


def route(address: str, port: int, addresses: list[dict[str, str]]) -> dict[str, Any]:
    """Local address and interface the kernel would send to ``address`` from (nothing is sent)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((address, port))
            source = str(probe.getsockname()[0])
    except OSError as exc:
        return {"source_address": None, "interface": None, "error": str(exc)}
    interface = next((a["interface"] for a in addresses if a["address"] == source.split("%")[0]), None)
    return {"source_address": source, "interface": interface}


def network_identity(target_url: str, proxy: str | None, target_addresses: list[str]) -> dict[str, Any]:
    """``environment.network``: local addresses and how the browser's traffic left (see module docstring).

    ``target_addresses`` are the target's addresses as the egress policy resolved them (none through a proxy):
    this module resolves nothing but the proxy's host."""
    addresses = local_addresses()
    hop_url = proxy or target_url
    parts = urlsplit(hop_url)
    port = parts.port or (1080 if parts.scheme.startswith("socks") else 443 if parts.scheme == "https" else 80)
    host = (parts.hostname or "").strip("[]")
    candidates = target_addresses if not proxy else []
    if not candidates:
        try:
            ipaddress.ip_address(host)
            candidates = [host]
        except ValueError:
            if proxy:
                try:
                    candidates = [str(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])]
                except OSError:
                    candidates = []
    first_hop: dict[str, Any] = {"via": "proxy" if proxy else "direct", "host": host, "port": port}
    if candidates:
        first_hop["address"] = candidates[0]
        first_hop.update(route(candidates[0], port, addresses))
    else:
        first_hop["address"] = None
        first_hop["note"] = "not resolved here"
    return {"hostname": socket.gethostname(), "local_addresses": addresses, "first_hop": first_hop}


def public_address(text: str) -> str | None:
    """The first IP address in an egress-check answer (plain text or JSON such as {"ip": "..."})."""
    for pattern in (_IPV4, _IPV6):
        for match in pattern.finditer(text):
            try:
                return str(ipaddress.ip_address(match.group(0)))
            except ValueError:
                continue
    return None
