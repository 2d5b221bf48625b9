"""Find a Chromium to drive and launch it through Playwright.

Order: ``--browser PATH``, then ``EVICAP_BROWSER``; otherwise, for headless captures, Chromium's headless shell
(Playwright's download, then the system's ``chromium-headless-shell``), then the full browser (Playwright's, then a
system Chromium or Chrome on PATH / in the usual places). A visible window (``evicap login``) needs the full browser.

Why the headless shell first: it is the same Blink, V8 and network stack without the desktop browser's UI layer,
and on a 2-core machine it spends about a third of the CPU per captured page (docs/architecture.md). What was
found, and from where, goes into every manifest.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, async_playwright

from evicap.bundle.model import CaptureWarning
from evicap.capture import sandbox
from evicap.capture.sandbox import SandboxPlan
from evicap.errors import EnvironmentProblem, first_line

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
    "--site-per-process",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--enforce-webrtc-ip-permission-check",
    "--dns-prefetch-disable",
    "--disable-features=" + ",".join(sandbox.FEATURES_OFF),
    "--disable-blink-features=AutomationControlled",
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


# Inside Playwright's cache: chromium-<revision>/<platform dir>/<executable> (Linux, Windows) or an app bundle (macOS).
PLAYWRIGHT_CHROMIUM_GLOBS = ("*/chrome", "*/chrome.exe", "*/*.app/Contents/MacOS/*")


def _playwright_cache_roots() -> list[Path]:
    """Where Playwright keeps its browsers, as its driver computes it (PLAYWRIGHT_BROWSERS_PATH, else the user's
    cache directory; "0" means inside the installed package)."""
    configured = os.environ.get("PLAYWRIGHT_BROWSERS_PATH", "")
    if configured == "0":
        return [p / "driver" / "package" / ".local-browsers" for p in _playwright_package()]
    if configured:
        return [Path(configured)]
    roots = [Path(os.environ["XDG_CACHE_HOME"]) / "ms-playwright"] if os.environ.get("XDG_CACHE_HOME") else []
    return roots + [Path.home() / c for c in PLAYWRIGHT_CACHES]


def _playwright_package() -> list[Path]:
    import importlib.util

    spec = importlib.util.find_spec("playwright")
    return [Path(spec.origin).parent] if spec and spec.origin else []


def _playwright_revision() -> str | None:
    """The Chromium revision this Playwright drives, from its package's browsers.json (no driver started)."""
    import json

    for package in _playwright_package():
        try:
            listed = json.loads((package / "driver" / "package" / "browsers.json").read_text("utf-8"))
        except (OSError, ValueError):
            continue
        for entry in listed.get("browsers", []):
            if isinstance(entry, dict) and entry.get("name") == "chromium" and entry.get("revision"):
                return str(entry["revision"])
    return None


def _playwright_chromium() -> str | None:
    """Path of Playwright's own downloaded Chromium, if it is installed.

    Read from the file system (the revision in the package's browsers.json, then its directory in the cache)
    rather than by starting Playwright's driver: a driver costs a node process start (about half a second on a
    loaded 2-core machine), and the capture starts its own anyway."""
    revision = _playwright_revision()
    if revision is None:
        return None
    for root in _playwright_cache_roots():
        folder = root / f"chromium-{revision}"
        for pattern in PLAYWRIGHT_CHROMIUM_GLOBS:
            for found in sorted(folder.glob(pattern)):
                if _executable(found):
                    return str(found)
    return None


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
        out = subprocess.run(  # nothing of ours in its environment either (Debian's launcher is a shell script)
            [info.path, "--version"], capture_output=True, text=True, timeout=timeout, check=False,
            env=sandbox.scrub_environment(os.environ),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"browser at {info.path} does not run: {exc}", hint=INSTALL_HINT) from exc
    version = (out.stdout or out.stderr).strip().splitlines()
    return BrowserInfo(info.path, info.source, version[0].strip() if version else None)


def extra_args() -> list[str]:
    """Additional browser flags from EVICAP_BROWSER_ARGS (advanced; recorded in the manifest)."""
    return shlex.split(os.environ.get("EVICAP_BROWSER_ARGS", ""))


def launch_args(*, no_sandbox: bool = False, user_agent: str | None = None) -> list[str]:
    """The flags evicap adds (recorded in the manifest). ``--no-sandbox`` only when the user asked for it."""
    args = list(CAPTURE_ARGS)
    if user_agent:
        args.append(f"--user-agent={user_agent}")
    if no_sandbox:
        args.append("--no-sandbox")
    return args + extra_args()


def desktop_user_agent(version: str | None) -> str | None:
    """The user agent of an ordinary desktop Chrome of this version on this OS ("Chrome/156.0.0.0": reduced, as
    Chrome itself sends it), or None when the version is unknown."""
    number = presented_major(version)
    if number is None:
        return None
    engine = "AppleWebKit/537.36 (KHTML, like Gecko)"
    return f"Mozilla/5.0 ({_platform_token()}) {engine} Chrome/{number}.0.0.0 Safari/537.36"


def presented_major(version: str | None) -> str | None:
    for word in (version or "").split():
        head = word.split(".")[0]
        if head.isdigit() and "." in word:
            return head
    return None


def _platform_token() -> str:
    import platform

    system = platform.system()
    if system == "Darwin":
        return "Macintosh; Intel Mac OS X 10_15_7"
    if system == "Windows":
        return "Windows NT 10.0; Win64; x64"
    return "X11; Linux x86_64"


def client_hints(user_agent: str, version: str | None) -> dict[str, Any]:
    """userAgentMetadata for Emulation.setUserAgentOverride, consistent with ``user_agent``: the brands of a
    desktop Chromium (without the headless shell's "HeadlessChrome" brand), of the version and on the platform
    the user agent names (a --user-agent of another Chrome version or OS is followed), else of this browser."""
    import platform
    import re

    named = re.search(r"Chrome/(\d+)((?:\.\d+){3})?", user_agent)
    major = named.group(1) if named else presented_major(version) or "0"
    full = next((w for w in (version or "").split() if w[:1].isdigit()), f"{major}.0.0.0")
    if not full.startswith(f"{major}."):
        full = f"{major}.0.0.0"
    system = {"Darwin": "macOS", "Windows": "Windows"}.get(platform.system(), "Linux")
    for token, name in (("Windows", "Windows"), ("Mac OS X", "macOS"), ("Android", "Android"), ("CrOS", "Chrome OS"),
                        ("Linux", "Linux")):
        if token in user_agent:
            system = name
            break
    return {
        "brands": [{"brand": "Chromium", "version": major}, {"brand": "Not_A Brand", "version": "24"}],
        "fullVersionList": [{"brand": "Chromium", "version": full}, {"brand": "Not_A Brand", "version": "24.0.0.0"}],
        "fullVersion": full,
        "platform": system,
        "platformVersion": "",
        "architecture": "arm" if platform.machine().lower() in ("arm64", "aarch64") else "x86",
        "model": "",
        "mobile": False,
        "bitness": "64",
        "wow64": False,
    }


async def present_desktop(cdp: Any, page: Any, info: BrowserInfo, explicit: str | None) -> dict[str, Any]:
    """Make the page (through its DevTools session) see one ordinary desktop Chrome in the UA string, the client
    hints (Sec-CH-UA*, navigator.userAgentData) and navigator.webdriver. ``explicit`` is the user's --user-agent.
    Returns what was presented, for the manifest."""
    user_agent = explicit or desktop_user_agent(info.version)
    if user_agent is None:  # version unknown: the browser's own string, without the headless marker
        user_agent = str(await page.evaluate("navigator.userAgent")).replace("HeadlessChrome/", "Chrome/")
    metadata = client_hints(user_agent, info.version or user_agent)
    await cdp.send("Emulation.setUserAgentOverride", {"userAgent": user_agent, "userAgentMetadata": metadata})
    webdriver = bool(await page.evaluate("navigator.webdriver"))
    return {"user_agent": user_agent, "client_hints": metadata, "webdriver": webdriver}


NAMESPACE_HINT = (
    "Chromium's sandbox needs user namespaces: enable them (sysctl kernel.unprivileged_userns_clone=1; in a container "
    "allow them, e.g. docker --security-opt seccomp=unconfined), or run with --no-sandbox (unsafe; recorded)"
)


def _launch_hint(message: str, prepared_hint: str | None, no_sandbox: bool) -> str:
    if not no_sandbox and ("sandbox" in message.lower() or "namespace" in message.lower()):
        return NAMESPACE_HINT
    return prepared_hint or INSTALL_HINT


@dataclass
class _Launched:
    sandbox: dict[str, Any]
    plan: SandboxPlan
    checking: asyncio.Future[dict[str, Any]] | None = None


_LAUNCHED: weakref.WeakKeyDictionary[Browser, _Launched] = weakref.WeakKeyDictionary()


async def check_sandbox(browser: Browser) -> None:
    """Check the renderers of a browser evicap launched, once: call it with a page of ours open in the browser
    (the first capture's). The check then costs a look at /proc, not a page of its own before the first capture;
    concurrent captures share the one check. ``sandbox_state`` and ``sandbox_warnings`` say what it found."""
    launched = _LAUNCHED.get(browser)
    if launched is None:
        return
    if launched.checking is None:
        launched.checking = asyncio.ensure_future(sandbox.check_renderers(launched.plan))
    launched.sandbox["checked"] = await asyncio.shield(launched.checking)


def sandbox_state(browser: Browser) -> dict[str, Any] | None:
    """What the manifest says about the sandbox of this browser (mode, account, what was checked), or None for a
    browser evicap did not launch. Its renderers are checked by ``check_sandbox``."""
    launched = _LAUNCHED.get(browser)
    return dict(launched.sandbox) if launched else None


def sandbox_warnings(browser: Browser) -> list[CaptureWarning]:
    """A warning for each capture whose renderer is not (verifiably) sandboxed."""
    state = sandbox_state(browser)
    if state is None:
        return []
    if state.get("disabled_by_user"):
        return [CaptureWarning("sandbox-off", "browser sandbox turned off with --no-sandbox: a hostile page that "
                               "exploits the renderer runs with the investigator's rights")]
    checked = state.get("checked") or {}
    if not checked.get("verified"):
        return [CaptureWarning("sandbox-unverified", f"renderer sandbox not verified: {checked.get('reason')}")]
    return []


@asynccontextmanager
async def launch(
    info: BrowserInfo,
    *,
    headless: bool = True,
    handle_sigint: bool = True,
    no_sandbox: bool = False,
    browser_user: str | None = None,
) -> AsyncIterator[Browser]:
    """Start the browser; yields a Playwright Browser and closes it (and the driver) on exit.

    The renderer runs in Chromium's sandbox: as an ordinary user directly, as root under an unprivileged account
    (``sandbox.plan``). ``no_sandbox=True`` (the user's explicit ``--no-sandbox``) is the only way to turn it off.
    Neither the driver nor the browser inherits our environment (no EVICAP_*, passphrase or proxy credentials).
    ``handle_sigint=False`` keeps the driver from closing the browser on Ctrl-C: batch stops cleanly itself.
    """
    sandbox.guard_driver_environment()
    plan = sandbox.plan(no_sandbox=no_sandbox, account=browser_user)
    with sandbox.prepared(plan, info.path) as prepared:
        user_agent = desktop_user_agent(info.version)
        async with async_playwright() as playwright:
            try:
                browser = await playwright.chromium.launch(
                    executable_path=prepared.executable,
                    headless=headless,
                    args=launch_args(no_sandbox=no_sandbox, user_agent=user_agent),
                    ignore_default_args=["--enable-automation"] + ([] if no_sandbox else ["--no-sandbox"]),
                    chromium_sandbox=not no_sandbox,
                    env=dict[str, str | float | bool](prepared.env),
                    handle_sigint=handle_sigint,
                )
            except Exception as exc:
                first = first_line(exc)
                hint = _launch_hint(str(exc), prepared.hint, no_sandbox)
                raise EnvironmentProblem(f"could not start browser {info.path}: {first}", hint=hint) from exc
            try:
                state = plan.to_json()
                state["checked"] = {"verified": False, "reason": "not checked yet: no page was opened"}
                _LAUNCHED[browser] = _Launched(state, plan)
                yield browser
            finally:
                await browser.close()


async def sandbox_probe(info: BrowserInfo, *, browser_user: str | None = None) -> dict[str, Any]:
    """Launch the browser once and say what its sandbox is (``evicap doctor``); EnvironmentProblem when it does
    not start."""
    async with launch(info, browser_user=browser_user) as browser:
        page = await browser.new_page()
        try:
            await page.goto("about:blank")
            await check_sandbox(browser)
        finally:
            await page.close()
        return sandbox_state(browser) or {}


def describe_sandbox(state: dict[str, Any]) -> tuple[bool, str]:
    """(verified, one line) for doctor."""
    checked = state.get("checked") or {}
    who = f"browser runs as {state.get('user')} (uid {state.get('uid')})"
    if state.get("dropped_from_root"):
        who += ", evicap itself is root"
    if not checked.get("verified"):
        return False, f"NOT verified: {checked.get('reason')}; {who}"
    parts = [f"renderer uid {checked.get('renderer_uid')}", "seccomp-bpf filter" if checked.get("seccomp_filter")
             else "no seccomp", "own user namespace" if checked.get("own_user_namespace") else "namespace unknown"]
    return True, f"on: {', '.join(parts)}; {who}"
