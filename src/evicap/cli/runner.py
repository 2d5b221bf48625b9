"""Turn CLI options into a capture plan (options, browser, sealing) and run captures. Shared by capture and demo."""

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
from evicap.capture.session import capture_url
from evicap.capture.staged import Sealing, acquire
from evicap.capture.target import without_userinfo
from evicap.errors import CaptureError

if TYPE_CHECKING:
    from playwright.async_api import Browser


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


def build_plan(params: dict[str, Any], *, item: str | None = None) -> Plan:
    """Resolve config + CLI into CaptureOptions and a loaded signer. CLI beats environment beats config file."""
    from evicap.config import load_config
    from evicap.seal.sealer import SealSettings, load_signer

    config = load_config()
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
    info = probe_version(find_browser(params.get("browser_path")))
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
    plan: Plan,
    urls: Sequence[str],
    items: Sequence[str | None],
    progress: Callable[[str], None],
    on_result: Callable[[CaptureResult], None],
    after: Callable[[Browser, list[CaptureResult]], Awaitable[None]] | None = None,
) -> list[CaptureResult]:
    """Capture URLs one after another with one browser; each in its own fresh context. ``after`` runs on the same
    browser before it closes (the default report's PDFs)."""
    results: list[CaptureResult] = []
    async with launch(plan.browser, no_sandbox=plan.options.no_sandbox, browser_user=plan.browser_user) as browser:
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
            await after(browser, results)
    return results


def run(coro: Any) -> Any:
    return asyncio.run(coro)
