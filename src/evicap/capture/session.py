"""capture_url(): one URL in, one sealed evidence bundle out.

The order matters and is the record's order:
  1. check the URL, make a staging directory, open the WARC;
  2. fresh isolated browser context (no cache, no cookies, service workers blocked so every request is seen);
  3. recorder on before navigation; dialogs and pop-ups watched;
  4. navigate, wait for quiet within the time limit, run the site profile's steps;
  5. complete ranged media, write attachments (each also into the WARC), drain and close the WARC;
  6. SHA256SUMS, manifest.json (schema-checked), seal (signature, timestamp, custody log);
  7. publish by rename. A capture that could not be sealed is never reported complete.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from evicap.bundle import layout
from evicap.bundle.hashing import write_bytes
from evicap.bundle.manifest import (
    write_checksums,
    write_manifest,
)
from evicap.bundle.model import Artifact, CaptureResult, CaptureWarning, Status
from evicap.bundle.staging import bundle_name, create_staging, ensure_output_dir, publish
from evicap.capture import facts
from evicap.capture.browser import BrowserInfo
from evicap.capture.options import CaptureOptions
from evicap.capture.pagewatch import PageWatch
from evicap.capture.target import normalize_target
from evicap.errors import CaptureError, EvicapError, first_line

Progress = Callable[[str], None]

# Share of the time limit spent waiting for the load event; the rest goes to quiet-waiting and behaviors.
LOAD_SHARE = 0.6
NETWORK_QUIET_CAP = 10.0
TLS_HINT = "the server's certificate is not trusted; use --ignore-tls-errors to capture it anyway (recorded)"


@dataclass(frozen=True)
class Sealing:
    """How to seal: a loaded signer and the seal settings (see evicap.seal)."""

    signer: Any
    settings: Any
    actor_name: str | None = None


@dataclass
class _Run:
    """Mutable state of one capture while it runs."""

    url: str
    options: CaptureOptions
    capture_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    warnings: list[CaptureWarning] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    status: Status = "complete"
    reason: str | None = None

    def degrade(self, status: Status, reason: str) -> None:
        """Lower the status (complete > partial > failed); the first reason for the worst status wins."""
        rank = {"complete": 0, "partial": 1, "failed": 2}
        if rank[status] > rank[self.status]:
            self.status, self.reason = status, reason


def _first_line(error: BaseException) -> str:
    return first_line(error).replace("Page.goto: ", "").strip()


def _net_error(text: str) -> str | None:
    for token in text.replace(",", " ").split():
        if token.startswith("net::ERR_"):
            return token
    return None


def describe_navigation_error(url: str, message: str) -> str:
    """One line an investigator understands, from Chromium's net::ERR_* codes."""
    code = _net_error(message) or ""
    plain = {
        "net::ERR_NAME_NOT_RESOLVED": "DNS lookup failed: host not found",
        "net::ERR_CONNECTION_REFUSED": "connection refused by the server",
        "net::ERR_CONNECTION_RESET": "connection reset by the server",
        "net::ERR_CONNECTION_CLOSED": "connection closed by the server",
        "net::ERR_CONNECTION_TIMED_OUT": "connection timed out",
        "net::ERR_ADDRESS_UNREACHABLE": "address unreachable",
        "net::ERR_INTERNET_DISCONNECTED": "no network connection",
        "net::ERR_PROXY_CONNECTION_FAILED": "proxy connection failed",
        "net::ERR_TOO_MANY_REDIRECTS": "too many redirects",
        "net::ERR_EMPTY_RESPONSE": "server sent an empty response",
        "net::ERR_INVALID_RESPONSE": "server sent an invalid response",
        "net::ERR_ABORTED": "navigation aborted",
    }
    if code.startswith("net::ERR_CERT_") or code.startswith("net::ERR_SSL_"):
        return f"TLS error {code} for {url}"
    if code in plain:
        return f"{plain[code]} ({code}) for {url}"
    return f"navigation failed for {url}: {code or message}"


async def _new_context(browser: Browser, options: CaptureOptions, storage_state: Path | None) -> BrowserContext:
    kwargs: dict[str, Any] = {
        "viewport": {"width": options.viewport[0], "height": options.viewport[1]},
        # --ignore-tls-errors is carried out per page by PageWatch, which records each error it lets through.
        "ignore_https_errors": False,
        "service_workers": "block",
        "accept_downloads": False,
    }
    if options.user_agent:
        kwargs["user_agent"] = options.user_agent
    if options.proxy:
        kwargs["proxy"] = {"server": options.proxy}
    if storage_state is not None:
        kwargs["storage_state"] = str(storage_state)
    return await browser.new_context(**kwargs)




async def _navigate(run: _Run, page: Any, deadline: float, progress: Progress) -> str | None:
    """Go to the URL within the time limit. Returns a navigation error line, or None when a response arrived."""
    budget = max(1.0, (deadline - time.monotonic()) * LOAD_SHARE)
    progress(f"loading {run.url}")
    try:
        await page.goto(run.url, wait_until="load", timeout=budget * 1000)
    except PlaywrightTimeout:
        run.warnings.append(
            CaptureWarning("load-timeout", f"load event not reached within {budget:.0f} s; captured what loaded")
        )
    except PlaywrightError as exc:
        message = _first_line(exc)
        if "net::ERR_ABORTED" in message:
            # A navigation that became a download, or was replaced by another one: not an error of the target.
            run.warnings.append(CaptureWarning("navigation-aborted", message, url=run.url))
        else:
            return describe_navigation_error(run.url, message)
    remaining = deadline - time.monotonic()
    if remaining > 0.5:
        try:
            await page.wait_for_load_state("networkidle", timeout=min(remaining, NETWORK_QUIET_CAP) * 1000)
        except PlaywrightTimeout:
            run.warnings.append(
                CaptureWarning("network-busy", "network never went quiet (long-poll, streaming or polling page)")
            )
        except PlaywrightError:
            pass
    return None


async def _write_json_artifact(
    run: _Run, staging: Path, warc: Any, rel_path: str, role: str, data: Any, target: str | None
) -> Artifact:
    body = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    digest = write_bytes(staging / rel_path, body)
    uri = f"urn:evicap:{run.capture_id}:{Path(rel_path).name}"
    await warc.write_metadata(uri, "application/json", body, refers_to_target=target)
    return Artifact(rel_path, role, "application/json", digest, warc_record_uri=uri)


async def capture_url(
    browser: Browser,
    url: str,
    options: CaptureOptions,
    output_dir: Path,
    *,
    browser_info: BrowserInfo,
    sealing: Sealing,
    progress: Progress | None = None,
) -> CaptureResult:
    """Capture one URL into a sealed bundle under output_dir. Never raises for a capture that went wrong:
    the result says failed/partial with a one-line reason. Raises EvicapError only for bad input or environment."""
    from evicap.capture.attachments import AttachmentInputs, ConsoleLog, collect_attachments
    from evicap.capture.recorder import NetworkRecorder
    from evicap.capture.warc import WarcWriter

    say = progress or (lambda _msg: None)
    target = normalize_target(url)
    ensure_output_dir(output_dir)
    run = _Run(url=target, options=options)
    deadline = time.monotonic() + options.timeout
    storage_state = _session_state(options)
    profile = _resolve_profile(options, target)
    name = bundle_name(target, run.started, options.item)
    staging = create_staging(output_dir, name)
    try:
        context = await _new_context(browser, options, storage_state)
        try:
            page = await context.new_page()
            cdp = await context.new_cdp_session(page)
            user_agent = await page.evaluate("navigator.userAgent")
            warc = WarcWriter(staging / layout.WARC, warcinfo=facts.warcinfo(run, browser_info, user_agent))
            recorder = NetworkRecorder(cdp, warc, spool_dir=staging / ".spool", options=options)
            watch = PageWatch()
            await watch.attach(context, page, cdp, ignore_tls_errors=options.ignore_tls_errors)
            console = ConsoleLog.attach(page)
            await recorder.start()

            nav_error = await _navigate(run, page, deadline, say)
            profile_run = None
            if nav_error is None:
                profile_run = await _run_profile(run, page, profile, deadline, staging, say)
                say("completing media")
                await recorder.complete_media(page)
            await watch.settle()
            await recorder.drain(timeout=max(5.0, min(30.0, options.timeout / 2)))
            navigation = recorder.navigation
            if nav_error is None and navigation.status is None:
                nav_error = describe_navigation_error(target, navigation.error or "no response received")
            if nav_error is not None:
                tls = "TLS error" in nav_error
                run.degrade("failed", nav_error + (f" ({TLS_HINT})" if tls and not options.ignore_tls_errors else ""))
            if watch.tls_errors:
                detail = ", ".join(watch.tls_errors)
                run.warnings.append(CaptureWarning("tls-error-ignored", f"certificate errors ignored: {detail}"))

            say("writing attachments")
            attachments = await collect_attachments(
                page,
                cdp,
                staging,
                warc,
                AttachmentInputs(
                    capture_id=run.capture_id,
                    page_url=target,
                    navigation=navigation,
                    certificates=recorder.certificates,
                    console=console.messages,
                    console_dropped=console.dropped,
                    dialogs=watch.dialogs,
                    popups=watch.popups,
                    options=options,
                    skip_rendering=nav_error is not None,
                ),
            )
            run.artifacts.extend(attachments.artifacts)
            run.warnings.extend(attachments.warnings)
            if nav_error is None and attachments.essential_missing:
                run.degrade("partial", "essential attachment missing: " + ", ".join(attachments.essential_missing))
            if profile_run is not None:
                await _profile_artifacts(run, staging, warc, profile_run, navigation.final_url or target)
            await recorder.drain(timeout=5.0)
            run.warnings.extend(recorder.warnings)
            detection = await _detect(run, staging, warc, navigation.final_url or target, say)
            warc_digest = await warc.close()
        finally:
            await _close_quietly(context)

        run.artifacts.insert(
            0, Artifact(layout.WARC, "warc", "application/warc", warc_digest, description="WARC/1.1, gzip per record")
        )
        shutil.rmtree(staging / ".spool", ignore_errors=True)
        ended = datetime.now(timezone.utc)
        manifest = facts.manifest(
            run, ended, navigation, recorder, watch, browser_info, browser.version, user_agent, profile, profile_run,
            sealing.signer.fingerprint, tls_error=(watch.tls_errors[0] if watch.tls_errors else None),
            detection=detection,
        )
        checksums = write_checksums(staging, run.artifacts)
        manifest["checksums"] = {"path": layout.CHECKSUMS, "sha256": checksums.sha256}
        manifest_digest = write_manifest(staging, manifest)
        error = await _seal(run, staging, sealing, say)
        final = publish(staging, output_dir, name)
    except Exception as exc:  # browser crash, unwritable bundle, or our bug: keep what was written, say where
        reason = exc.one_line() if isinstance(exc, EvicapError) else _first_line(exc)
        message = f"capture of {target} stopped: {reason}; partial work kept in {staging}"
        raise CaptureError(message, url=target) from exc
    status: Status = "failed" if error else run.status
    return CaptureResult(
        url=target,
        status=status,
        bundle=str(final),
        error=error or run.reason,
        manifest_sha256=manifest_digest.sha256,
        item=options.item,
        warnings=run.warnings,
    )


async def _close_quietly(context: BrowserContext) -> None:
    try:
        await asyncio.wait_for(context.close(), timeout=15)
    except Exception:
        pass


def _session_state(options: CaptureOptions) -> Path | None:
    if not options.session:
        return None
    from evicap.sessions import session_path

    return session_path(options.session)


def _resolve_profile(options: CaptureOptions, url: str) -> Any:
    from evicap.profiles import resolve_profile

    return resolve_profile(options.profile, url)


async def _run_profile(run: _Run, page: Any, profile: Any, deadline: float, staging: Path, say: Progress) -> Any:
    from evicap.profiles import run_profile

    say(f"running profile {profile.name}")
    result = await run_profile(page, profile, deadline=deadline, artifacts_dir=staging / layout.ARTIFACTS_DIR)
    run.warnings.extend(result.warnings)
    if result.wall is not None:
        run.degrade("partial", f"{result.wall.kind} wall: {result.wall.reason}")
    return result


async def _profile_artifacts(run: _Run, staging: Path, warc: Any, profile_run: Any, target: str) -> None:
    for artifact in profile_run.artifacts:
        uri = f"urn:evicap:{run.capture_id}:{Path(artifact.path).name}"
        await warc.write_resource(uri, artifact.media_type, staging / artifact.path, refers_to_target=target)
        run.artifacts.append(
            Artifact(artifact.path, artifact.role, artifact.media_type, artifact.digest, uri, artifact.description)
        )
    if profile_run.items is not None:
        run.artifacts.append(
            await _write_json_artifact(run, staging, warc, layout.ITEMS, "items", profile_run.items, target)
        )






async def _detect(run: _Run, staging: Path, warc: Any, target: str, say: Progress) -> dict[str, Any]:
    """media-hashes.json (an artifact, also in the WARC) and hash-list matches for the manifest: evicap.detect."""
    from evicap.detect.artifact import media_detection

    say("hashing media")
    written = await warc.flush()
    document, detection = await asyncio.to_thread(
        media_detection, staging, written, [a.to_json() for a in run.artifacts], run.capture_id,
        run.options.match_lists,
    )
    run.artifacts.append(
        await _write_json_artifact(run, staging, warc, layout.MEDIA_HASHES, "media-hashes", document, target)
    )
    for match in detection["matches"]:
        where = match.get("target_uri") or match.get("artifact")
        kind, distance = match["signal_type"], match["distance"]
        say(f"hash-list match: {match['list']}: {match['label']} ({kind}, distance {distance}) {where}")
    return detection


async def _seal(run: _Run, staging: Path, sealing: Sealing, say: Progress) -> str | None:
    """Seal the staged bundle. Returns None when sealed, else the one-line reason it is not complete."""
    from evicap.seal.sealer import Actor, seal_bundle

    say("sealing")
    try:
        # Off the event loop: a time-stamp authority may take seconds, and batch runs other captures meanwhile.
        result = await asyncio.to_thread(
            seal_bundle,
            staging,
            sealing.signer,
            sealing.settings,
            actor=Actor(sealing.actor_name or run.options.investigator or "unknown", sealing.signer.fingerprint),
            acquired={
                "capture_id": run.capture_id,
                "url": run.url,
                "status": run.status,
                "case": run.options.case,
                "item": run.options.item,
            },
        )
    except EvicapError as exc:
        return f"not sealed: {exc.one_line()}"
    run.warnings.extend(result.warnings)
    return None

