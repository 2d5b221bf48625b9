"""Keep the renderer that parses a hostile page inside Chromium's sandbox, and our secrets out of its reach.

Chromium refuses to start its sandbox as root, and a renderer exploit without a sandbox would run as the
investigator, next to the signing key, its passphrase and the saved sessions. So:

- as an ordinary user, Chromium's own sandbox (user namespaces, seccomp-bpf) is simply left on;
- as root (the usual CI and container set-up), the browser runs under an unprivileged account (``browser_user``
  in the config, else ``evicap-browser`` when it exists (``make browser-user`` creates it), else ``nobody``).
  Playwright starts a tiny wrapper we write into a root-only directory: it hands the browser's fresh profile
  directory to that account and ``exec``s the browser through ``setpriv`` with no groups, no capabilities and
  no_new_privs, so the sandbox can start;
- ``--no-sandbox`` only when the user asked for it (recorded in the manifest, with a warning).

Neither Playwright's driver (node) nor the browser inherits our environment: EVICAP_*, passphrases, tokens,
proxy settings and credentials are dropped (``scrub_environment``); the browser gets a short allow-list and a
private HOME. ``check_renderers`` reads /proc once per launch, when the first capture's page is open (or
``check_renderer`` opens a blank page for it): each renderer's uid, its command line (no ``--no-sandbox``), its
seccomp mode and, where readable, its user namespace.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evicap.config import cache_dir
from evicap.errors import EnvironmentProblem

DEFAULT_ACCOUNTS = ("evicap-browser", "nobody")
SETPRIV_PATHS = ("/usr/bin/setpriv", "/bin/setpriv")
# What the browser may inherit from us: locale, time zone, display. Nothing else.
BROWSER_ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "TZ", "DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "FONTCONFIG_PATH",
                    "FONTCONFIG_FILE")
# Never passed to the driver or the browser, whatever the name's case.
_SECRET_NAME = re.compile(r"(^EVICAP_)|PASS|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE|AUTH|COOKIE|SESSION|(^|_)PROXY$"
                          r"|^(HTTPS?|FTP|ALL|NO|SOCKS)_PROXY$|^AWS_|^GOOGLE_APPLICATION", re.IGNORECASE)
SANDBOX_HINT = (
    "as root evicap runs the browser as an unprivileged account: create it with `make browser-user` "
    "(useradd --system evicap-browser) or set browser_user in the config; `--no-sandbox` turns the sandbox off "
    "(recorded in the manifest)"
)


def scrub_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without anything of ours or anything that looks like a credential or a proxy setting."""
    return {k: v for k, v in env.items() if not _SECRET_NAME.search(k)}


def browser_environment(env: Mapping[str, str], home: Path) -> dict[str, str]:
    """The browser's whole environment: the allow-list and LC_*, plus a private HOME (NSS db, fontconfig cache)."""
    kept = {k: v for k, v in env.items() if k in BROWSER_ENV_KEEP or k.startswith("LC_")}
    kept.setdefault("PATH", "/usr/bin:/bin")
    kept.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    return kept


_guarded = False
# V8's young generation is collected more often when it is small: the driver relays every DevTools message (bodies
# read in 88 KiB pieces included), and with a 1 MiB semi-space its memory stays near its idle size instead of
# growing by tens of MB between collections (benchmarks/bench_large_body.py). It only sets how often garbage is
# collected, never a limit a large message could hit.
# --jitless: the driver's JavaScript runs in V8's interpreter, never compiled to machine code. The driver only
# relays messages; its optimizing compilers cost more than they save in a run this short, and their code and
# heaps are memory. Measured (benchmarks/, alternated): 256 MiB body, Python + driver at one moment 158-160 ->
# 145-146 MiB (the driver 115-117 -> 102); 100 demo pages at the default concurrency, three runs a side: 130-134
# pages/min against 131-141 without it, within the runs' spread; a single capture the same. Its cost is the
# driver's relaying of a huge body: about 0.25 s more CPU for 256 MiB. It also turns off WebAssembly
# in the driver, which Playwright uses only for WebKit's and WebP screenshot comparison, never here.
DRIVER_NODE_OPTIONS = "--max-semi-space-size=1 --jitless"
# glibc hands blocks of 64 KiB and more straight from (and back to) the kernel instead of keeping them in its heap
# once freed: each body piece the driver relays is one such block, so its heap no longer holds their high-water
# mark (256 MiB body: the driver 102 -> 99-100 MiB at the peak; benchmarks/bench_large_body.py).
DRIVER_GLIBC_TUNABLES = "glibc.malloc.mmap_threshold=65536"


def driver_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The driver's environment: ``env`` scrubbed, with our V8 and glibc settings added to any NODE_OPTIONS and
    GLIBC_TUNABLES already there, and
    Node's compile cache in evicap's cache directory unless one is set: the driver then loads Playwright's modules
    from V8 code cached by the last run instead of compiling them, 0.31 -> 0.25 s a start (measured; Node 22.1 and
    later, an older Node ignores it; an unwritable directory just turns the cache off)."""
    scrubbed = scrub_environment(env)
    scrubbed["NODE_OPTIONS"] = " ".join(filter(None, (scrubbed.get("NODE_OPTIONS"), DRIVER_NODE_OPTIONS)))
    scrubbed["GLIBC_TUNABLES"] = ":".join(filter(None, (scrubbed.get("GLIBC_TUNABLES"), DRIVER_GLIBC_TUNABLES)))
    scrubbed.setdefault("NODE_COMPILE_CACHE", str(cache_dir(env) / "node-compile-cache"))
    return scrubbed


def guard_driver_environment() -> None:
    """Make Playwright start its driver (node) with a scrubbed environment.

    Playwright builds the driver's environment from ``os.environ`` in ``_impl.transport.get_driver_env``; we wrap
    that one function rather than touch ``os.environ`` (other threads, later config reads). The tests check the
    driver's /proc/PID/environ, so a Playwright that renames the function is noticed.
    """
    global _guarded
    if _guarded:
        return
    from playwright._impl import transport

    original = transport.get_driver_env

    def scrubbed() -> dict[str, str]:
        return driver_environment(original())

    transport.get_driver_env = scrubbed
    _guarded = True


@dataclass(frozen=True)
class SandboxPlan:
    """How the browser will be started: with which sandbox, as whom."""

    mode: str
    """"chromium" (sandbox on, our own account), "chromium, unprivileged account" (root: dropped), "disabled"."""
    user: str
    uid: int
    gid: int
    dropped: bool
    """True when evicap runs as root and the browser runs under ``user`` instead."""
    requested_off: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "user": self.user, "uid": self.uid, "dropped_from_root": self.dropped,
                "disabled_by_user": self.requested_off}


def _setpriv() -> str | None:
    return shutil.which("setpriv") or next((p for p in SETPRIV_PATHS if os.access(p, os.X_OK)), None)


def plan(*, no_sandbox: bool = False, account: str | None = None) -> SandboxPlan:
    """Decide how to start the browser; EnvironmentProblem when root has no account to drop to."""
    uid = os.geteuid() if hasattr(os, "geteuid") else -1
    me = _name(uid)
    if uid != 0:
        mode = "disabled" if no_sandbox else "chromium"
        return SandboxPlan(mode, me, uid, os.getegid() if hasattr(os, "getegid") else -1, False, no_sandbox)
    if no_sandbox:
        return SandboxPlan("disabled", me, 0, 0, False, True)
    names = (account,) if account else DEFAULT_ACCOUNTS
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid == 0:
            raise EnvironmentProblem(f"browser account {name!r} is root: it cannot hold the sandbox", hint=SANDBOX_HINT)
        if _setpriv() is None:
            raise EnvironmentProblem("setpriv (util-linux) is needed to run the browser as an unprivileged account",
                                     hint="apt-get install -y util-linux; " + SANDBOX_HINT)
        return SandboxPlan("chromium, unprivileged account", name, entry.pw_uid, entry.pw_gid, True)
    wanted = account or " or ".join(DEFAULT_ACCOUNTS)
    raise EnvironmentProblem(f"running as root and no account {wanted} to run the browser as", hint=SANDBOX_HINT)


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return str(uid)


@dataclass(frozen=True)
class Prepared:
    """What Playwright is given: the executable to start (the browser, or our wrapper) and its environment."""

    executable: str
    env: dict[str, str]
    hint: str | None


# Features evicap turns off (one --disable-features switch: Chromium keeps only the last of several).
FEATURES_OFF = ("NetworkPrediction", "Prerender2", "NoStatePrefetch", "PreloadMediaEngagementData",
                "OptimizationHints", "MediaRouter", "Translate", "InterestFeedContentSuggestions")

# Chromium keeps only the last --disable-features (and --enable-features) of its command line and drops the
# others whole. Playwright passes lists of its own before ours, so the wrapper joins every list into one switch
# each: nothing anyone asked to turn off is silently left on.
WRAPPER = """#!/bin/sh
# Written by evicap for one browser launch.{why}
disabled=""
enabled=""
for arg in "$@"; do
  shift
  case "$arg" in
    --disable-features=*) disabled="${{disabled:+$disabled,}}${{arg#--disable-features=}}" ;;
    --enable-features=*) enabled="${{enabled:+$enabled,}}${{arg#--enable-features=}}" ;;
    *) set -- "$@" "$arg" ;;
  esac
done
[ -n "$disabled" ] && set -- "--disable-features=$disabled" "$@"
[ -n "$enabled" ] && set -- "--enable-features=$enabled" "$@"
{prepare}exec {run}{browser} "$@"
"""
DROP_WHY = """
# The browser runs as {user} (uid {uid}) so that Chromium's sandbox can start (it refuses to as root); its fresh
# profile directory is handed to that account first."""
DROP_PREPARE = """for arg in "$@"; do
  case "$arg" in
    --user-data-dir=*) chown -R {uid}:{gid} -- "${{arg#--user-data-dir=}}" ;;
  esac
done
"""
DROP_RUN = "{setpriv} --reuid={uid} --regid={gid} --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- "


def wrapper_script(plan: SandboxPlan, browser_path: str) -> str:
    """The shell script Playwright starts instead of the browser: joins the feature switches, and when dropping
    from root, hands the profile to the browser's account and starts the browser as that account."""
    if not plan.dropped:
        return WRAPPER.format(why="", prepare="", run="", browser=shlex.quote(browser_path))
    ids = {"uid": plan.uid, "gid": plan.gid}
    return WRAPPER.format(
        why=DROP_WHY.format(user=plan.user, **ids), prepare=DROP_PREPARE.format(**ids),
        run=DROP_RUN.format(setpriv=shlex.quote(_setpriv() or "setpriv"), **ids), browser=shlex.quote(browser_path))


@contextmanager
def prepared(plan: SandboxPlan, browser_path: str) -> Iterator[Prepared]:
    """A private HOME for the browser (and, when dropping from root, the wrapper); removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="evicap-browser-home-"))
    wrapper_dir: Path | None = None
    try:
        executable = browser_path
        hint = None
        if plan.dropped:
            os.chown(home, plan.uid, plan.gid)
            hint = (f"the browser runs as {plan.user}: it must be able to read and run {browser_path} "
                    "(a browser under /root is not reachable; install the system chromium) -- " + SANDBOX_HINT)
        if os.name == "posix":
            wrapper_dir = Path(tempfile.mkdtemp(prefix="evicap-launch-"))  # 0700, ours: the browser cannot edit it
            wrapper = wrapper_dir / "browser"
            wrapper.write_text(wrapper_script(plan, browser_path), encoding="utf-8")
            wrapper.chmod(0o700)
            executable = str(wrapper)
        yield Prepared(executable, browser_environment(os.environ, home), hint)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if wrapper_dir is not None:
            shutil.rmtree(wrapper_dir, ignore_errors=True)


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def descendants(root: int) -> list[int]:
    """Process ids below ``root`` (Linux /proc), children first."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        stat = _read(f"/proc/{entry}/stat")
        close = stat.rfind(")")
        fields = stat[close + 2:].split() if close > 0 else []
        if len(fields) > 1 and fields[1].isdigit():
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    queue = [root]
    while queue:
        for child in parents.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def process_facts(pid: int) -> dict[str, Any]:
    """uid, command line, seccomp mode and user namespace of one process (what /proc lets us read)."""
    status = _read(f"/proc/{pid}/status")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    try:
        userns: str | None = os.readlink(f"/proc/{pid}/ns/user")
    except OSError:
        userns = None
    uid = fields.get("Uid", "").split()
    return {
        "pid": pid,
        "uid": int(uid[1]) if len(uid) > 1 else None,  # effective uid
        # Chromium rewrites its children's titles into one space-joined string: split on both.
        "cmdline": _read(f"/proc/{pid}/cmdline").replace("\0", " ").split(),
        "seccomp": fields.get("Seccomp", "").strip() or None,
        "userns": userns,
    }


# A renderer Chromium forked a moment ago may not have entered its seccomp filter yet: problems are looked at again
# this many times, this far apart, before they are reported (one that stays unsandboxed is reported all the same).
RECHECKS = 3
RECHECK_SECONDS = 0.1


async def check_renderer(browser: Any, plan: SandboxPlan) -> dict[str, Any]:
    """Open a blank page and look at the renderer behind it: is it really sandboxed? (Linux only; elsewhere the
    result says "not checked".)"""
    if not os.path.isdir("/proc/self"):
        return {"verified": False, "reason": "no /proc on this system: not checked"}
    page = await browser.new_page()
    try:
        await page.goto("about:blank")
        return await check_renderers(plan)
    finally:
        await page.close()


def _renderers() -> list[dict[str, Any]]:
    return [f for f in (process_facts(p) for p in descendants(os.getpid())) if "--type=renderer" in f["cmdline"]]


async def check_renderers(plan: SandboxPlan) -> dict[str, Any]:
    """Look at the renderer processes under this process (a page of ours must be open): are they sandboxed?"""
    if not os.path.isdir("/proc/self"):
        return {"verified": False, "reason": "no /proc on this system: not checked"}
    renderers = _renderers()
    for _ in range(0 if plan.requested_off else RECHECKS):
        if not renderers or not _problems(renderers):
            break
        await asyncio.sleep(RECHECK_SECONDS)
        renderers = _renderers()
    if not renderers:
        return {"verified": False, "reason": "no renderer process found under this process"}
    own_ns = _own_userns()
    features, feature_problems = browser_features()
    result = _result(renderers, _problems(renderers, own_ns) + feature_problems, plan, own_ns)
    result["features_off"] = features
    return result


def browser_features() -> tuple[list[str], list[str]]:
    """The features the running browser really has turned off, read from its command line, and what is wrong
    with them: Chromium applies only the last --disable-features switch, so each of ours must be in it."""
    browsers = [f for f in (process_facts(p) for p in descendants(os.getpid()))
                if "--remote-debugging-pipe" in f["cmdline"] and not any(a.startswith("--type=") for a in f["cmdline"])]
    if not browsers:
        return [], ["the browser process was not found: its command line is not checked"]
    return features_off_in(browsers[0]["cmdline"])


def features_off_in(cmdline: list[str]) -> tuple[list[str], list[str]]:
    """What a browser command line really turns off (its last --disable-features), and what is wrong with it."""
    switches = [a.removeprefix("--disable-features=") for a in cmdline if a.startswith("--disable-features=")]
    effective = switches[-1].split(",") if switches else []
    problems = [f"feature {name} is not turned off in the browser" for name in FEATURES_OFF if name not in effective]
    if len(switches) > 1:
        problems.append(f"{len(switches)} --disable-features switches: Chromium applies only the last")
    return effective, problems


def _problems(renderers: list[dict[str, Any]], own_ns: str | None = None) -> list[str]:
    own_ns = own_ns or _own_userns()
    problems = []
    for facts in renderers:
        if facts["uid"] == 0:
            problems.append(f"renderer {facts['pid']} runs as root")
        if "--no-sandbox" in facts["cmdline"]:
            problems.append(f"renderer {facts['pid']} has --no-sandbox")
        if facts["seccomp"] != "2":
            problems.append(f"renderer {facts['pid']} has no seccomp-bpf filter")
        if facts["userns"] is not None and facts["userns"] == own_ns:
            problems.append(f"renderer {facts['pid']} shares our user namespace")
    return problems


def _result(renderers: list[dict[str, Any]], problems: list[str], plan: SandboxPlan, own_ns: str | None
            ) -> dict[str, Any]:
    first = renderers[0]
    result = {
        "verified": not problems,
        "renderer_uid": first["uid"],
        "seccomp_filter": first["seccomp"] == "2",
        "own_user_namespace": first["userns"] is not None and first["userns"] != own_ns
        if first["userns"] is not None else None,
        "no_sandbox_flag": any("--no-sandbox" in f["cmdline"] for f in renderers),
    }
    if problems:
        result["reason"] = "; ".join(problems)
    if plan.requested_off:
        result["reason"] = "sandbox turned off with --no-sandbox"
    return result


def _own_userns() -> str | None:
    try:
        return os.readlink("/proc/self/ns/user")
    except OSError:
        return None
