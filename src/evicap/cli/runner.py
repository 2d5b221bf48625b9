"""Turn CLI options into a capture plan (options, browser, sealing) and run captures. Shared by capture and demo.

``capture_many`` starts the browser first and resolves the rest of the plan (the signing key, the sealing and
capture code's imports) in a thread meanwhile: Playwright's driver and Chromium take about a second to start on
another core, which the plan's half second of work would otherwise come before (benchmarks/bench_process.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from evicap.bundle.model import CaptureResult
from evicap.capture.browser import BrowserInfo, find_browser, launch, probe_version
from evicap.capture.egress import parse_networks
from evicap.capture.options import CaptureOptions
from evicap.capture.target import without_userinfo
from evicap.errors import CaptureError

if TYPE_CHECKING:
    from playwright.async_api import Browser

    from evicap.capture.staged import Sealing
    from evicap.config import Config


@dataclass(frozen=True)
class Plan:
    """Everything needed to capture, resolved once before the browser starts (bad keys fail fast)."""

    options: CaptureOptions
    output: Path
    browser: BrowserInfo
    sealing: Sealing
    key_created: Path | None
    browser_user: str | None = None


def _prompt_passphrase() -> str:
    return str(click.prompt("Passphrase for the signing key", hide_input=True, err=True))


def _match_lists(paths: Sequence[str] | None) -> tuple[str, ...]:
    """--match-list files, parsed once now so a bad list fails before the browser starts (exit 2)."""
    from evicap.detect.lists import load_lists

    load_lists(paths or ())
    return tuple(str(Path(p).resolve()) for p in paths or ())


@dataclass(frozen=True)
class BrowserPlan:
    """What starting the browser needs: resolved in milliseconds, before the rest of the plan."""

    info: BrowserInfo
    no_sandbox: bool
    config: Config  # read once: build_plan takes the rest from it

    @property
    def browser_user(self) -> str | None:
        return self.config.browser_user


def browser_plan(params: dict[str, Any]) -> BrowserPlan:
    from evicap.config import load_config

    return BrowserPlan(info=probe_version(find_browser(params.get("browser_path"))),
                       no_sandbox=bool(params.get("no_sandbox")), config=load_config())


def build_plan(params: dict[str, Any], *, item: str | None = None, early: BrowserPlan | None = None) -> Plan:
    """Resolve config + CLI into CaptureOptions and a loaded signer. CLI beats environment beats config file.
    ``early``: the browser and config already resolved (capture_many starts the browser with them)."""
    from evicap.detect import pdq, video

    # The media hashing's libraries load, and ffmpeg tells its version, while the browser starts: later, during
    # the page's load, their half second of CPU would slow the page (2 cores) and hold up the event loop that
    # answers the browser's paused requests.
    pdq.warm_up()
    video.warm_up()
    from evicap.capture.staged import Sealing
    from evicap.config import load_config
    from evicap.seal.sealer import SealSettings, load_signer

    config = early.config if early is not None else load_config()
    proxy, proxy_auth = _proxy(params.get("proxy"))
    parse_networks([*config.allow_networks, *(params.get("allow_networks") or ())])  # a bad CIDR fails here
    options = CaptureOptions(
        case=params.get("case"),
        item=item,
        investigator=params.get("investigator") or config.investigator,
        organization=params.get("organization") or config.organization,
        authority=params.get("authority"),
        persona=params.get("persona"),
        description=params.get("description"),
        timeout=params["timeout"],
        viewport=params["viewport"],
        user_agent=params.get("user_agent"),
        proxy=proxy,
        proxy_auth=proxy_auth,
        no_sandbox=bool(params.get("no_sandbox")),
        allow_networks=(*config.allow_networks, *(params.get("allow_networks") or ())),
        egress_test_private=config.egress_test_private,
        egress_check_url=config.egress_check_url,
        ignore_tls_errors=bool(params.get("ignore_tls_errors")),
        profile=params.get("profile") or "auto",
        session=params.get("session"),
        keep_secrets=bool(params.get("keep_secrets")),
        max_media_size=params["max_media_size"],
        match_lists=_match_lists(params.get("match_list")),
    )
    settings = SealSettings.resolve(
        config,
        key=Path(params["key"]) if params.get("key") else None,
        tsa=list(params.get("tsa") or ()),
        tsa_ca=[Path(p) for p in params.get("tsa_ca") or ()],
        no_timestamp=bool(params.get("no_timestamp")),
        tsa_all=bool(params.get("tsa_all")),
    )
    signer = load_signer(settings, prompt=_prompt_passphrase, create=True)
    info = early.info if early is not None else probe_version(find_browser(params.get("browser_path")))
    return Plan(
        browser_user=config.browser_user,
        options=options,
        output=Path(params["output"]),
        browser=info,
        sealing=Sealing(signer=signer, settings=settings, actor_name=options.investigator),
        key_created=signer.path if signer.created else None,
    )


def _proxy(value: str | None) -> tuple[str | None, tuple[str, str] | None]:
    """--proxy split into what is recorded (scheme://host:port) and its credentials (never recorded)."""
    from evicap.capture.target import split_proxy

    if not value:
        return None, None
    server, credentials = split_proxy(value)
    return server, (credentials.username, credentials.password) if credentials else None


def item_for(base: str | None, index: int, count: int) -> str | None:
    """--item names one URL; with several URLs each gets base-1, base-2, ... so items stay distinct."""
    if base is None or count == 1:
        return base
    return f"{base}-{index + 1}"


async def capture_many(
    params: dict[str, Any],
    urls: Sequence[str],
    items: Sequence[str | None],
    progress: Callable[[str], None],
    on_result: Callable[[CaptureResult], None],
    on_plan: Callable[[Plan], None] = lambda _plan: None,
    after: Callable[[Browser, Plan, list[CaptureResult]], Awaitable[None]] | None = None,
) -> list[CaptureResult]:
    """Capture URLs one after another with one browser; each in its own fresh context. The browser starts while
    ``build_plan`` runs in a thread; a plan that fails (bad key, bad list) closes it again and is the error
    reported, before any capture. ``after`` runs on the same browser before it closes (the default report's PDFs)."""
    early = browser_plan(params)
    planning = asyncio.ensure_future(asyncio.to_thread(_plan_while_launching, params, early, urls[:1]))
    try:
        async with launch(early.info, no_sandbox=early.no_sandbox, browser_user=early.browser_user) as browser:
            plan = await planning
            on_plan(plan)
            return await _capture_each(browser, plan, urls, items, progress, on_result, after)
    except BaseException:
        if not planning.done():
            await asyncio.wait([planning])
        failed = None if planning.cancelled() else planning.exception()
        if failed is not None:
            raise failed from None  # the plan's error first: it is the user's to fix
        raise


def _plan_while_launching(params: dict[str, Any], early: BrowserPlan, first: Sequence[str]) -> Plan:
    plan = build_plan(params, early=early)
    import evicap.capture.attachments  # what the capture imports later, loaded while the browser still starts
    import evicap.capture.session
    from evicap.capture.target import normalize_target
    from evicap.profiles import resolve_profile

    for url in first:  # the first capture's profile, parsed now (profiles are parsed once per process)
        resolve_profile(plan.options.profile, normalize_target(url))

    if plan.sealing.settings.tsa:  # the RFC 3161 machinery, imported by the seal only when an authority is asked
        import evicap.seal.timestamp  # noqa: F401

    return plan


async def _capture_each(
    browser: Browser,
    plan: Plan,
    urls: Sequence[str],
    items: Sequence[str | None],
    progress: Callable[[str], None],
    on_result: Callable[[CaptureResult], None],
    after: Callable[[Browser, Plan, list[CaptureResult]], Awaitable[None]] | None,
) -> list[CaptureResult]:
    from evicap.capture.session import capture_url
    from evicap.capture.staged import acquire

    results: list[CaptureResult] = []
    for url, item in zip(urls, items, strict=True):
        options = CaptureOptions(**{**plan.options.__dict__, "item": item})
        try:
            staged = await capture_url(
                browser, url, options, plan.output, browser_info=plan.browser, sealing=plan.sealing,
                progress=progress,
            )
            result = await acquire(staged, plan.sealing, progress)
        except CaptureError as error:
            result = CaptureResult(url=without_userinfo(url), status="failed", bundle=None,
                                   error=error.one_line(), item=item)
        results.append(result)
        on_result(result)
    if after is not None:
        await after(browser, plan, results)
    return results


def run(coro: Any) -> Any:
    return asyncio.run(coro)
