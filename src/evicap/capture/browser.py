"""Find a Chromium to drive and launch it through Playwright.

Order: ``--browser PATH``, then ``EVICAP_BROWSER``; otherwise, for headless captures, Chromium's headless shell
(Playwright's download, then the system's ``chromium-headless-shell``), then the full browser (Playwright's, then a
system Chromium or Chrome on PATH / in the usual places). A visible window (``evicap login``) needs the full browser.

Why the headless shell first: it is the same Blink, V8 and network stack without the desktop browser's UI layer,
and on a 2-core machine it spends about a third of the CPU per captured page (docs/architecture.md). What was
found, and from where, goes into every manifest.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Browser, async_playwright

from evicap.errors import EnvironmentProblem

SYSTEM_CANDIDATES = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
)
HEADLESS_SHELL_CANDIDATES = ("chromium-headless-shell", "chrome-headless-shell")
HEADLESS_SHELL_PATHS = ("/usr/lib/chromium/chromium-headless-shell",)
# Inside Playwright's browser cache: chromium_headless_shell-<revision>/<platform dir>/<executable>
PLAYWRIGHT_SHELL_GLOBS = (
    "chromium_headless_shell-*/*/chrome-headless-shell",
    "chromium_headless_shell-*/*/headless_shell",
    "chromium_headless_shell-*/*/chrome-headless-shell.exe",
    "chromium_headless_shell-*/*/headless_shell.exe",
)
PLAYWRIGHT_CACHES = (".cache/ms-playwright", "Library/Caches/ms-playwright", "AppData/Local/ms-playwright")
SYSTEM_PATHS = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/opt/google/chrome/chrome",
    "/snap/bin/chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
)

# Flags that keep the capture to the target alone and in one renderer process:
# - no background traffic to Google services (it would pollute the WARC and fails offline);
# - site isolation stays on (Chromium's default): the recorder attaches to every out-of-process frame and worker;
# - QUIC off so every exchange is HTTP/1.1 or HTTP/2 over TCP, with a server IP and TLS details to record.
CAPTURE_ARGS = (
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-quic",
    "--disable-features=OptimizationHints,MediaRouter,Translate",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
)

INSTALL_HINT = (
    "install one: `apt-get install -y chromium chromium-headless-shell` (Debian/Ubuntu) or "
    "`python -m playwright install chromium`"
)


@dataclass(frozen=True)
class BrowserInfo:
    """A browser executable evicap can drive."""

    path: str
    source: str  # "--browser", "EVICAP_BROWSER", "playwright", "system", "playwright headless shell", ...
    version: str | None = None  # filled in by probe_version() or after launch

    @property
    def headless_only(self) -> bool:
        """True for Chromium's headless shell, which cannot open a window."""
        return "headless shell" in self.source or "headless" in Path(self.path).name


def _executable(path: str | Path | None) -> str | None:
    return str(path) if path and os.path.isfile(path) and os.access(path, os.X_OK) else None


def _playwright_chromium() -> str | None:
    """Path of Playwright's own downloaded Chromium, if it is installed."""
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            path = p.chromium.executable_path
    except Exception:  # playwright's driver missing or broken: treat as not installed
        return None
    return _executable(path)


def _playwright_headless_shell(chromium_path: str | None) -> str | None:
    """Playwright's headless shell, installed next to its Chromium (``playwright install chromium`` fetches both)."""
    roots = [os.environ.get("PLAYWRIGHT_BROWSERS_PATH", ""), *(str(Path.home() / c) for c in PLAYWRIGHT_CACHES)]
    if chromium_path:  # <cache>/chromium-<revision>/<platform dir>/.../chrome
        revision_dir = next((d for d in Path(chromium_path).parents if d.name.startswith("chromium-")), None)
        if revision_dir is not None:
            roots.insert(0, str(revision_dir.parent))
    for root in filter(None, roots):
        for pattern in PLAYWRIGHT_SHELL_GLOBS:
            for found in sorted(Path(root).glob(pattern), reverse=True):
                if _executable(found):
                    return str(found)
    return None


def _on_system(names: tuple[str, ...], paths: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    for path in paths:
        if _executable(path):
            return path
    return None


def find_browser(explicit: str | None = None, *, headless: bool = True) -> BrowserInfo:
    """Locate a Chromium executable, or raise EnvironmentProblem with the command that fixes it.

    ``headless=False`` is for a visible window: the headless shell is then never chosen by itself.
    """
    for source, value in (("--browser", explicit), ("EVICAP_BROWSER", os.environ.get("EVICAP_BROWSER"))):
        if value:
            path = shutil.which(value) or value
            if not (Path(path).is_file() and os.access(path, os.X_OK)):
                raise EnvironmentProblem(f"browser given by {source} is not an executable file: {value}")
            return BrowserInfo(path=str(Path(path).resolve()), source=source)
    bundled = _playwright_chromium()
    found: list[tuple[str, str | None]] = []
    if headless:
        found += [
            ("playwright headless shell", _playwright_headless_shell(bundled)),
            ("system headless shell", _on_system(HEADLESS_SHELL_CANDIDATES, HEADLESS_SHELL_PATHS)),
        ]
    found += [("playwright", bundled), ("system", _on_system(SYSTEM_CANDIDATES, SYSTEM_PATHS))]
    for source, candidate in found:
        if candidate:
            return BrowserInfo(path=candidate, source=source)
    raise EnvironmentProblem("no Chromium or Chrome browser found", hint=INSTALL_HINT)


def probe_version(info: BrowserInfo, timeout: float = 20.0) -> BrowserInfo:
    """Ask the executable for its version string (e.g. 'Chromium 156.0.8078.108')."""
    try:
        out = subprocess.run(
            [info.path, "--version"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"browser at {info.path} does not run: {exc}", hint=INSTALL_HINT) from exc
    version = (out.stdout or out.stderr).strip().splitlines()
    return BrowserInfo(info.path, info.source, version[0].strip() if version else None)


def extra_args() -> list[str]:
    """Additional browser flags from EVICAP_BROWSER_ARGS (advanced; recorded in the manifest)."""
    return shlex.split(os.environ.get("EVICAP_BROWSER_ARGS", ""))


def launch_args() -> list[str]:
    args = list(CAPTURE_ARGS)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to start its sandbox as root
    return args + extra_args()


@asynccontextmanager
async def launch(info: BrowserInfo, *, headless: bool = True, handle_sigint: bool = True) -> AsyncIterator[Browser]:
    """Start the browser; yields a Playwright Browser and closes it (and the driver) on exit.

    ``handle_sigint=False`` keeps the driver from closing the browser on Ctrl-C: batch stops cleanly itself.
    """
    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(
                executable_path=info.path,
                headless=headless,
                args=launch_args(),
                ignore_default_args=["--enable-automation"] if not headless else None,
                handle_sigint=handle_sigint,
            )
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EnvironmentProblem(f"could not start browser {info.path}: {first}", hint=INSTALL_HINT) from exc
        try:
            yield browser
        finally:
            await browser.close()
