"""Capture options shared by `evicap capture`, `evicap batch` and `evicap demo`, and their parsing."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?[bB])?\s*$")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_viewport(_ctx: Any, _param: Any, value: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*", value or "")
    if not match:
        raise click.BadParameter(f"expected WIDTHxHEIGHT such as 1280x900, got {value!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if not (100 <= width <= 10000 and 100 <= height <= 10000):
        raise click.BadParameter(f"viewport {width}x{height} out of range (100..10000 per side)")
    return width, height


def parse_size(_ctx: Any, _param: Any, value: str) -> int:
    match = _SIZE.match(str(value))
    if not match:
        raise click.BadParameter(f"expected a size such as 512M or 2G, got {value!r}")
    number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise click.BadParameter("size must be positive")
    return size


def parse_timeout(_ctx: Any, _param: Any, value: float) -> float:
    if not (1 <= value <= 24 * 3600):
        raise click.BadParameter(f"timeout must be between 1 and 86400 seconds, got {value}")
    return value


def capture_options(func: F) -> F:
    """Decorate a click command with every option that changes how a page is captured and sealed."""
    decorators = [
        click.option("--output", "-o", "output", type=click.Path(file_okay=False), default="evidence",
                     show_default=True, help="Directory that receives one bundle per URL."),
        click.option("--case", help="Case or operation identifier."),
        click.option("--investigator", help="Who collects (default from config)."),
        click.option("--organization", help="Collecting organization (default from config)."),
        click.option("--authority", help="Legal authority or purpose of the collection."),
        click.option("--persona", help="Virtual identity / investigation account used, if any."),
        click.option("--description", help="What this exhibit is (goes into the manifest and the report)."),
        click.option("--timeout", type=float, default=60.0, show_default=True, callback=parse_timeout,
                     help="Seconds for loading the page and its behaviors."),
        click.option("--viewport", default="1280x900", show_default=True, callback=parse_viewport,
                     help="Browser window size WIDTHxHEIGHT."),
        click.option("--user-agent", help="User-Agent to send (default: the browser's own)."),
        click.option("--proxy", help="Proxy URL, e.g. http://user:pass@127.0.0.1:8080 or socks5://host:1080 (names "
                     "resolved by the proxy; credentials never recorded)."),
        click.option("--ignore-tls-errors", is_flag=True, help="Capture despite certificate errors (recorded)."),
        click.option("--allow-network", "allow_networks", multiple=True, metavar="CIDR",
                     help="Let pages reach this internal network (repeatable; loopback, private, link-local and "
                          "cloud-metadata addresses are refused otherwise, unless the target is there)."),
        click.option("--no-sandbox", is_flag=True,
                     help="Run the browser without Chromium's sandbox (unsafe with hostile pages; warned and "
                          "recorded)."),
        click.option("--profile", default="auto", show_default=True,
                     help="Site profile name; auto picks by domain, falls back to generic."),
        click.option("--session", help="Saved login session to use (see `evicap login`); never bundled."),
        click.option("--keep-secrets", is_flag=True,
                     help="Keep the session's cookies, tokens and credentials in the bundle (scrubbed by default; "
                          "recorded)."),
        click.option("--max-media-size", default="512M", show_default=True, callback=parse_size,
                     help="Cap for re-fetching a whole video/audio file seen only as ranges."),
        click.option("--browser", "browser_path", type=click.Path(dir_okay=False),
                     help="Browser executable (default: found automatically; EVICAP_BROWSER)."),
        click.option("--key", type=click.Path(dir_okay=False), help="Signing key (PKCS#8 PEM, Ed25519)."),
        click.option("--tsa", multiple=True, help="RFC 3161 time-stamp authority URL (repeatable, tried in order)."),
        click.option("--tsa-ca", multiple=True, type=click.Path(dir_okay=False),
                     help="Trust anchor PEM for time-stamp authorities (repeatable)."),
        click.option("--tsa-all", is_flag=True,
                     help="Ask every time-stamp authority and keep every valid token (default: the first)."),
        click.option("--no-timestamp", is_flag=True, help="Do not request a trusted timestamp now."),
        click.option("--match-list", "match_list", multiple=True, type=click.Path(dir_okay=False),
                     help="Hash list (CSV/JSON) to match media against at capture time (repeatable; never bundled)."),
        click.option("--json", "as_json", is_flag=True, help="One JSON object per URL on stdout."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func
