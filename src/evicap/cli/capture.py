"""`evicap capture`, `evicap demo` and `evicap doctor`."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from evicap import __version__
from evicap.bundle.model import CaptureResult
from evicap.capture.target import normalize_target
from evicap.cli.options import capture_options
from evicap.cli.output import Output
from evicap.cli.runner import Plan, capture_many, item_for, run
from evicap.errors import EvicapError, UsageError

STYLE = {"complete": "green", "partial": "yellow", "failed": "red"}


def show_result(out: Output, result: CaptureResult, as_json: bool) -> None:
    if as_json:
        out.json_line(result.to_json())
        return
    colour = STYLE[result.status]
    out.err.print(f"[{colour}]{result.status}[/] {escape(result.url)}")
    if result.bundle:
        out.err.print(f"  bundle: {escape(result.bundle)}")
    if result.error:
        out.err.print(f"  reason: {escape(result.error)}")
    for warning in result.warnings[:10]:
        out.err.print(f"  [yellow]warning[/] {escape(warning.code)}: {escape(warning.message)}")
    if len(result.warnings) > 10:
        out.err.print(f"  … and {len(result.warnings) - 10} more warnings in the manifest")


AfterCapture = Callable[[Any, Plan, list[CaptureResult]], Awaitable[None]]


def reporter(out: Output, langs: tuple[str, ...]) -> AfterCapture:
    """What runs on the capture's browser before it closes: the court report of every bundle made."""

    async def report(browser: Any, plan: Plan, results: list[CaptureResult]) -> None:
        from evicap.cli.report import write_after_capture_async

        bundles = [Path(r.bundle) for r in results if r.bundle]
        if bundles:
            await write_after_capture_async(out, browser, bundles, plan.sealing, langs)

    return report


def key_notice(out: Output, plan: Plan, *, demo: bool = False) -> None:
    """Say once, before the first capture, that a key was just made or that the key is not encrypted."""
    if plan.key_created and demo:
        out.info(f"created a signing key at {plan.key_created} (public key beside it)")
    elif plan.key_created:
        out.info(f"created a signing key for you at {plan.key_created} (public key beside it); back it up")
    if not plan.sealing.signer.encrypted and not demo:
        out.warn(f"signing key {plan.sealing.signer.path} is UNENCRYPTED (file mode 0600 only); "
                 f"manifests record key_protection {plan.sealing.signer.protection}")


def exit_code(results: list[CaptureResult]) -> int:
    return 0 if results and all(r.status == "complete" for r in results) else 1


@click.command()
@click.argument("urls", nargs=-1, required=True)
@click.option("--item", help="Exhibit / item id (with several URLs: ITEM-1, ITEM-2, ...).")
@click.option("--no-report", is_flag=True, help="Do not write the court report (BUNDLE/reports/report.<lang>.*).")
@click.option("--report-lang", "report_langs", multiple=True, default=("en",), show_default=True,
              help="Language(s) of the report written after the capture: en, fr, ar.")
@capture_options
def capture(urls: tuple[str, ...], item: str | None, no_report: bool, report_langs: tuple[str, ...],
            **params: Any) -> None:
    """Capture each URL into its own sealed evidence bundle, and write its court report (unless --no-report)."""
    from evicap.render import check_language

    out = Output()
    for url in urls:  # refuse bad input before anything starts: nothing half-done
        normalize_target(url)
    for lang in report_langs:
        check_language(lang)
    items = [item_for(item, i, len(urls)) for i in range(len(urls))]
    as_json = bool(params.get("as_json"))
    results = run(
        capture_many(
            params, list(urls), items,
            progress=lambda msg: None if as_json else out.err.print(f"[dim]… {escape(msg)}[/]"),
            on_result=lambda r: show_result(out, r, as_json),
            on_plan=lambda plan: key_notice(out, plan),
            after=None if no_report else reporter(out, report_langs),
        )
    )
    sys.exit(exit_code(results))


def describe_bundle(out: Output, bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text("utf-8"))
    table = Table(title=f"bundle {bundle}", title_justify="left")
    for column in ("role", "path", "size", "sha256"):
        table.add_column(column)
    for artifact in manifest["artifacts"]:
        table.add_row(artifact["role"], artifact["path"], f"{artifact['size']:,}", artifact["sha256"][:16] + "…")
    out.err.print(table)
    seal = sorted(p.name for p in bundle.iterdir() if p.is_file())
    out.err.print("seal and index files: " + ", ".join(seal))
    target = manifest["target"]
    out.err.print(
        f"final URL {target['final_url']} · HTTP {target['http_status']} · server {target['server_ip']} · "
        f"{manifest['network']['exchanges']} exchanges in the WARC"
    )
    out.err.print(f"check it: evicap verify {bundle}")


@click.command()
@click.option("--output", "-o", default="evidence-demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the capture result as JSON on stdout.")
@click.option("--browser", "browser_path", type=click.Path(dir_okay=False), help="Browser executable.")
def demo(output: str, as_json: bool, browser_path: str | None) -> None:
    """Serve the built-in demo site on 127.0.0.1 and capture it into ./evidence-demo."""
    from evicap.demo.server import DemoServer

    out = Output()
    params: dict[str, Any] = {
        "output": output, "case": "DEMO-0001", "authority": "demonstration capture of evicap's built-in site",
        "timeout": 60.0, "viewport": (1280, 900), "profile": "auto", "max_media_size": 64 * 1024 * 1024,
        "browser_path": browser_path, "investigator": os.environ.get("EVICAP_INVESTIGATOR") or "demo investigator",
    }
    with DemoServer() as server:
        url = server.url("/")
        out.info(f"demo site serving at {url}")
        results = run(
            capture_many(
                params, [url], ["DEMO-ITEM-1"],
                progress=lambda msg: out.err.print(f"[dim]… {escape(msg)}[/]"),
                on_result=lambda r: show_result(out, r, as_json),
                on_plan=lambda plan: key_notice(out, plan, demo=True),
                after=reporter(out, ("en",)),
            )
        )
    for result in results:
        if result.bundle:
            describe_bundle(out, Path(result.bundle))
    sys.exit(exit_code(results))


def _check_output(path: Path) -> tuple[bool, str]:
    probe = path if path.exists() else path.parent
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".evicap-doctor-"):
            pass
    except OSError as exc:
        return False, f"{path} is not writable: {exc.strerror}"
    return True, f"{path.resolve()} is writable"


def _key_row(key: Path) -> tuple[str, bool | None, str, str]:
    """doctor's line for the signing key: present, its protection, its file mode."""
    if not key.exists():
        return ("signing key", None, f"none yet: created at {key} on first capture",
                f"evicap keys generate --out {key}")
    try:
        mode = key.stat().st_mode & 0o777
        encrypted = b"ENCRYPTED PRIVATE KEY" in key.read_bytes()[:4096]
    except OSError as error:
        return ("signing key", False, f"{key}: unreadable ({error.strerror or error})", f"chmod 600 {key}")
    if mode & 0o077:
        return ("signing key", False, f"{key} is open to group or others (mode {mode:04o})", f"chmod 600 {key}")
    if not encrypted:
        return ("signing key", None, f"{key} is UNENCRYPTED (file mode 0600 only)",
                "evicap keys generate --out NEW.pem (with a passphrase) and set key: NEW.pem")
    return ("signing key", True, f"{key} (encrypted with a passphrase)", "")


def _sandbox_row(row: Any, info: Any) -> None:
    """Start the browser once and report its renderer sandbox, as every capture records it."""
    import asyncio

    from evicap.capture.browser import describe_sandbox, sandbox_probe
    from evicap.capture.sandbox import SANDBOX_HINT
    from evicap.config import load_config

    try:
        state = asyncio.run(sandbox_probe(info, browser_user=load_config().browser_user))
    except EvicapError as exc:
        row("sandbox", False, exc.message, exc.hint or SANDBOX_HINT)
        return
    ok, detail = describe_sandbox(state)
    row("sandbox", ok, detail, "" if ok else SANDBOX_HINT)
    if ok and state.get("user") == "nobody":
        row("browser account", None, "the browser runs as 'nobody', shared with other services",
            "make browser-user (creates the dedicated account evicap-browser)")


@click.command()
@click.option("--output", "-o", default=".", type=click.Path(file_okay=False), help="Output directory to check.")
@click.option("--browser", "browser_path", type=click.Path(dir_okay=False), help="Browser executable to check.")
def doctor(output: str, browser_path: str | None) -> None:
    """Show what evicap found on this machine and how to fix what is missing."""
    from evicap.capture.browser import INSTALL_HINT, find_browser, probe_version
    from evicap.config import config_dir, load_config

    out = Output()
    problems = 0

    def row(name: str, ok: bool | None, detail: str, fix: str = "") -> None:
        nonlocal problems
        mark = {True: "[green]ok     [/]", False: "[red]MISSING[/]", None: "[yellow]note   [/]"}[ok]
        problems += ok is False
        out.err.print(f"{mark} {name:<21} {escape(detail)}")
        if fix:
            out.err.print(f"        {'':<21} fix: {escape(fix)}")

    row("evicap", True, __version__)
    row("python", True, f"{platform.python_version()} ({sys.executable})")
    try:
        from importlib.metadata import version

        row("playwright", True, version("playwright"))
    except Exception:
        row("playwright", False, "not installed", "pip install playwright")
    try:
        info = probe_version(find_browser(browser_path))
        row("browser", True, f"{info.version} at {info.path} (found via {info.source}); used for captures")
        if not browser_path and not info.headless_only:
            row("headless shell", None, "not found: captures use the full browser, about 3x the CPU per page",
                "apt-get install -y chromium-headless-shell (or python -m playwright install chromium)")
        _sandbox_row(row, info)  # safety (issue 12)
    except EvicapError as exc:
        row("browser", False, exc.message, INSTALL_HINT)
    try:
        window = find_browser(browser_path, headless=False)
        usable = not window.headless_only
        row("login browser", True if usable else None,
            f"{window.path} (found via {window.source})" if usable else "none that can open a window",
            "" if usable else "apt-get install -y chromium (needed only for `evicap login`)")
    except EvicapError as exc:
        row("login browser", None, f"{exc.message} (needed only for `evicap login`)")
    ok, detail = _check_output(Path(output))
    row("output", ok, detail, "" if ok else f"choose a writable --output or run: mkdir -p {output}")
    openssl = shutil.which("openssl")
    row("openssl", True if openssl else None, openssl or "not found (only needed to verify without evicap)",
        "" if openssl else "apt-get install -y openssl")
    try:
        config = load_config()
        where = str(config.file) if config.file else f"none (defaults; would be {config_dir()}/config.yaml)"
        row("config", True, where)
        key = config.key or config.default_key_path
        row(*_key_row(key))
        row("time-stamp authority", True if config.tsa else None,
            ", ".join(config.tsa) if config.tsa else "none configured: bundles will be signed but untimestamped",
            "" if config.tsa else f"add `tsa: [https://your-tsa.example/tsr]` to {config_dir()}/config.yaml")
    except EvicapError as exc:
        row("config", False, exc.one_line(), "fix or move the config file named above")
    if problems:
        raise UsageError(f"{problems} required piece(s) missing; see the fix lines above")
