"""Saved login sessions: Playwright storage state (cookies + local storage) of an investigation account.

A session file holds live credentials, so it is written with mode 0600 in a 0700 directory, atomically
(never half-written), and it never goes into a bundle: captures load it by name through ``session_path``.
``record_login`` opens a browser at the site's sign-in page, lets the investigator sign in, and saves the
state when they are done (window closed, or whatever ``done`` waits for).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page

from evicap.bundle.staging import atomic_write
from evicap.capture.browser import BrowserInfo, launch
from evicap.config import load_config
from evicap.errors import ConfigError, UsageError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SNAPSHOT_EVERY = 2.0  # seconds; the state is re-read while the investigator works, in case the browser dies


def sessions_dir() -> Path:
    """``sessions_dir`` from the config (file or EVICAP_SESSIONS_DIR), else ``<config dir>/sessions``."""
    config = load_config()
    return config.sessions_dir or config.config_dir / "sessions"


def _check_name(name: str) -> str:
    if not NAME.match(name):
        raise UsageError(
            f"bad session name {name!r}",
            hint="use letters, digits, '.', '_' or '-' (e.g. investigation-account-1)",
        )
    return name


def session_path(name: str) -> Path:
    """The storage-state file of a saved session; ConfigError when there is none, or it is readable by others."""
    path = sessions_dir() / f"{_check_name(name)}.json"
    if not path.is_file():
        raise ConfigError(
            f"no saved session named {name!r} (looked for {path})", hint=f"run `evicap login {name} --url URL`"
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(
            f"session file {path} is readable by other users (mode {mode:04o})", hint=f"run `chmod 600 {path}`"
        )
    return path


def list_sessions() -> list[str]:
    directory = sessions_dir()
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.json") if NAME.match(p.stem))


def session_summary(name: str) -> dict[str, Any]:
    """What ``session list`` shows: counts and domains, never a value."""
    state = load_session(name)
    cookies = [c for c in state.get("cookies") or () if isinstance(c, dict)]
    origins = [o for o in state.get("origins") or () if isinstance(o, dict)]
    return {
        "name": name,
        "cookies": len(cookies),
        "domains": sorted({str(c.get("domain", "")).lstrip(".") for c in cookies if c.get("domain")}),
        "storage_items": sum(len(o.get("localStorage") or ()) + len(o.get("sessionStorage") or ()) for o in origins),
    }


def import_session(name: str, source: Path) -> Path:
    """Save a session exported from the investigator's own browser: a Playwright storage-state JSON or a Netscape
    ``cookies.txt``. The source must not be readable by others (it holds live credentials)."""
    _check_name(name)
    try:
        mode = source.stat().st_mode & 0o777
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read session file {source}: {exc}") from None
    if mode & 0o077:
        raise ConfigError(
            f"session file {source} is readable by other users (mode {mode:04o}): it holds live credentials",
            hint=f"run `chmod 600 {source}` first",
        )
    state = parse_state(text, source)
    return save_session(name, state)


def parse_state(text: str, source: Path) -> dict[str, Any]:
    """A storage state from JSON (``{"cookies": [...], "origins": [...]}``) or Netscape cookies.txt lines."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{source}: not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("cookies", []), list) \
                or not isinstance(data.get("origins", []), list):
            raise UsageError(f"{source}: not a Playwright storage state (expected cookies and origins lists)")
        for index, cookie in enumerate(data.get("cookies", [])):
            if not isinstance(cookie, dict) or not {"name", "value", "domain"} <= cookie.keys():
                raise UsageError(f"{source}: cookie {index + 1} lacks name, value or domain")
        return {"cookies": data.get("cookies", []), "origins": data.get("origins", [])}
    return {"cookies": _netscape_cookies(text, source), "origins": []}


def _netscape_cookies(text: str, source: Path) -> list[dict[str, Any]]:
    cookies = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        http_only = line.startswith("#HttpOnly_")
        if http_only:
            line = line[len("#HttpOnly_"):]
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 7:
            raise UsageError(f"{source} line {number}: expected 7 tab-separated fields of a cookies.txt line")
        domain, _subdomains, path, secure, expires, name, value = fields
        try:
            expiry = float(expires)
        except ValueError:
            raise UsageError(f"{source} line {number}: expiry {expires!r} is not a number") from None
        cookies.append({
            "name": name, "value": value, "domain": domain, "path": path or "/",
            "expires": expiry if expiry > 0 else -1, "httpOnly": http_only,
            "secure": secure.upper() == "TRUE", "sameSite": "Lax",
        })
    if not cookies:
        raise UsageError(f"{source}: no cookies found (expected a storage-state JSON or a cookies.txt)")
    return cookies


def save_session(name: str, state: dict[str, Any]) -> Path:
    """Write ``state`` as sessions/NAME.json, mode 0600, directory 0700, replacing any earlier one atomically."""
    directory = sessions_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    path = directory / f"{_check_name(name)}.json"
    atomic_write(path, json.dumps(state, indent=1).encode("utf-8"), mode=0o600)
    return path


def delete_session(name: str) -> None:
    path = sessions_dir() / f"{_check_name(name)}.json"
    if not path.exists():
        raise ConfigError(f"no saved session named {name!r}")
    path.unlink()


def load_session(name: str) -> dict[str, Any]:
    """The storage state of a saved session, for ``browser.new_context(storage_state=...)``."""
    path = session_path(name)
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"session file {path} is unreadable: {exc}", hint=f"run `evicap login {name}` again") from exc
    return state


async def _wait_closed(page: Page) -> None:
    await page.wait_for_event("close", timeout=0)


async def record_login(
    info: BrowserInfo,
    name: str,
    url: str,
    *,
    headless: bool = False,
    done: Callable[[Page], Awaitable[object]] | None = None,
) -> Path:
    """Open ``url`` in a fresh browser context, wait for ``done(page)`` (default: the window is closed), save state.

    The state is also snapshotted every few seconds, so closing the whole browser window still keeps the
    sign-in that happened before it.
    """
    _check_name(name)
    if not re.match(r"^https?://", url):
        raise UsageError(f"not an http(s) URL: {url}")
    async with launch(info, headless=headless) as browser:
        context: BrowserContext = await browser.new_context(no_viewport=not headless)
        page = await context.new_page()
        await page.goto(url)
        last: dict[str, Any] | None = None
        waiter = asyncio.ensure_future((done or _wait_closed)(page))
        try:
            while not waiter.done():
                with contextlib.suppress(Exception):
                    last = dict(await context.storage_state())
                await asyncio.wait({waiter}, timeout=SNAPSHOT_EVERY)
            waiter.result()
            with contextlib.suppress(Exception):  # the context is gone when the whole browser was closed
                last = dict(await context.storage_state())
        finally:
            if not waiter.done():
                waiter.cancel()
        if last is None:
            raise ConfigError(f"could not read the browser's session state for {name!r}; nothing saved")
        return save_session(name, last)
