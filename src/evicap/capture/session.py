"""capture_url(): one URL in, one staged capture out (``staged.acquire`` seals and publishes it).

The order matters and is the record's order:
  1. check the URL, make a staging directory, open the WARC;
  2. fresh isolated browser context (no cache, no cookies, service workers blocked so every request is seen);
  3. recorder on before navigation; dialogs and pop-ups watched;
  4. navigate, wait for quiet within the time limit, run the site profile's steps;
  5. complete ranged media, write attachments (each also into the WARC), drain and close the WARC;
  6. the manifest's facts: a StagedCapture (staging directory, run, facts), neither sealed nor published.
Then ``staged.acquire`` (SHA256SUMS, manifest.json, seal, publish by rename) is the one step that turns any staged
capture into a sealed bundle: capture, batch, demo and watch all call it. Everything in 2-5 runs under one
deadline (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playwright.async_api import Browser, BrowserContext, CDPSession, Page
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from evicap import clock
from evicap.bundle import layout
from evicap.bundle.hashing import write_bytes
from evicap.bundle.model import Artifact, CaptureWarning
from evicap.bundle.staging import bundle_name, create_staging, ensure_output_dir
from evicap.capture import facts, safety
from evicap.capture.browser import BrowserInfo, check_sandbox, present_desktop, sandbox_state, sandbox_warnings
from evicap.capture.options import CaptureOptions
from evicap.capture.pagewatch import PageWatch
from evicap.capture.popups import EarlyRequests, popup_recorder
from evicap.capture.recorder import NetworkRecorder
from evicap.capture.staged import CaptureRun, Progress, Sealing, StagedCapture, acquire
from evicap.capture.target import normalize_target, proxy_failure
from evicap.capture.uris import evicap_uri
from evicap.capture.warc import WarcWriter
from evicap.detect import pdq, video
from evicap.errors import CaptureError, EvicapError, first_line

if TYPE_CHECKING:  # imported on first use (capture_url): the snapshot modules load Pillow
    from evicap.capture.ahead import Ahead
    from evicap.capture.attachments import Snapshots

__all__ = ["Sealing", "StagedCapture", "acquire", "capture_url", "describe_navigation_error"]

# Share of the time limit spent waiting for the load event; the rest goes to quiet-waiting and behaviors.
LOAD_SHARE = 0.6
# Video frames for media hashes are sampled in what is left before the deadline, at least this long.
MEDIA_MIN_SECONDS = 5.0
# One deadline: --timeout bounds loading, behaviors, media re-fetches and snapshots. The snapshots keep a share
# of it (SNAPSHOT_SHARE, between SNAPSHOT_MIN and SNAPSHOT_MAX seconds); past the deadline only the sealing
# work runs: each remaining snapshot step's minimum (attachments.MIN_STEP), manifest, signature, time-stamp and
# closing the browser context. SEAL_MARGIN is what that may take, documented in docs/architecture.md.
SNAPSHOT_SHARE = 0.3
SNAPSHOT_MIN = 4.0
SNAPSHOT_MAX = 30.0
SEAL_MARGIN = 20.0
TARGETS_RECORD = "targets.json"  # name of the metadata record linking exchanges to their targets and frames
NETWORK_QUIET_CAP = 10.0
AHEAD_DIR = ".ahead"  # snapshots taken during the quiet window, until judged (capture/ahead.py)
TLS_HINT = "the server's certificate is not trusted; use --ignore-tls-errors to capture it anyway (recorded)"


def _reason(error: BaseException) -> str:
    """An error's first line without Playwright's "Page.goto: " prefix."""
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


async def _new_context(
    browser: Browser, options: CaptureOptions, storage_state: Path | None, extra: dict[str, Any] | None = None
) -> BrowserContext:
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
    kwargs.update(extra or {})  # safety (issue 12): proxy credentials, the URL's HTTP credentials
    return await browser.new_context(**kwargs)


async def _navigate(
    run: CaptureRun, page: Page, recorder: NetworkRecorder, deadline: float, progress: Progress
) -> str | None:
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
        message = _reason(exc)
        if "net::ERR_ABORTED" in message:
            # A navigation that became a download, or was replaced by another one: not an error of the target.
            run.warnings.append(CaptureWarning("navigation-aborted", message, url=run.url))
        else:
            return describe_navigation_error(run.url, message)
    return None


async def _wait_quiet(
    run: CaptureRun, recorder: NetworkRecorder, deadline: float, ahead: Callable[[asyncio.Future[bool]], Any] | None
) -> Ahead | None:
    """Wait for quiet as the recorder sees it (every frame and worker, bodies read): ends as soon as nothing is in
    flight and nothing started for recorder.QUIET_WINDOW, not after Playwright's fixed 500 ms. Meanwhile
    ``ahead(quiet)`` may photograph the page (capture/ahead.py); its snapshots are returned."""
    remaining = deadline - time.monotonic()
    if remaining <= 0.5:
        return None
    quiet = asyncio.ensure_future(recorder.quiet(min(remaining, NETWORK_QUIET_CAP)))
    taking = asyncio.ensure_future(ahead(quiet)) if ahead is not None else None
    try:
        if not await quiet:
            run.warnings.append(
                CaptureWarning("network-busy", "network never went quiet (long-poll, streaming or polling page)")
            )
    finally:
        photographed = await taking if taking is not None else None
    return photographed


def _photographer(
    run: CaptureRun, page: Page, cdp: CDPSession, recorder: NetworkRecorder, staging: Path
) -> Callable[[asyncio.Future[bool]], Any]:
    """``photograph_ahead`` for this page, given the quiet wait it runs beside."""
    from evicap.capture.ahead import photograph_ahead
    from evicap.capture.attachments import AttachmentInputs

    inputs = AttachmentInputs(capture_id=run.capture_id, page_url=run.url, navigation=recorder.navigation,
                              options=run.options, scrubber=run.scrubber)
    return lambda quiet: photograph_ahead(page, cdp, recorder, staging / AHEAD_DIR, inputs, quiet)


async def _judge_ahead(ahead: Ahead | None, *, skip: bool) -> tuple[Snapshots | None, str | None]:
    """The snapshots taken during the quiet window if they still show the page (now stopped), else why not."""
    if ahead is None or skip:
        return None, None
    reason = await ahead.stale()
    if reason is not None:
        return None, reason
    await ahead.hashed()
    return ahead.snapshots, None


async def _write_json_artifact(
    run: CaptureRun, staging: Path, warc: WarcWriter, rel_path: str, role: str, data: Any, target: str | None
) -> Artifact:
    if run.scrubber is not None:  # safety (issue 12)
        data = run.scrubber.scrub_json(data, rel_path)
    body = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    digest = write_bytes(staging / rel_path, body)
    uri = evicap_uri(run.capture_id, rel_path)
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
) -> StagedCapture:
    """Capture one URL into a new staging directory under output_dir, under one deadline: everything the browser
    gives, the manifest's facts, not sealed, not published (``staged.acquire`` does that). Never raises for a
    capture that went wrong: the staged run says failed/partial with a one-line reason. Raises EvicapError for bad
    input or environment, CaptureError when the browser or the OS stopped the capture."""
    from evicap.capture.attachments import AttachmentInputs, ConsoleLog, collect_attachments

    say = progress or (lambda _msg: None)
    target = normalize_target(url)
    pdq.warm_up()  # once per process: the CLI's plan has usually done it while the browser started
    video.warm_up()  # and ffmpeg tells its version (the media-hashes document names it)
    ensure_output_dir(output_dir)
    run = CaptureRun(url=target, options=options)
    deadline = time.monotonic() + options.timeout
    snapshots_from = deadline - min(SNAPSHOT_MAX, max(SNAPSHOT_MIN, options.timeout * SNAPSHOT_SHARE))
    storage_state = _session_state(options)
    guard = safety.prepare(url, target, options, storage_state)  # safety (issue 12): egress gate, secrets
    options = run.options = guard.options
    run.scrubber = guard.scrubber
    run.warnings.extend(guard.warnings)
    profile = _resolve_profile(options, target)
    name = bundle_name(target, run.started, options.item)
    staging = create_staging(output_dir, name)
    try:
        context = await _new_context(browser, options, storage_state, safety.context_options(guard))
        try:
            page = await context.new_page()
            await check_sandbox(browser)  # its renderers, once per browser, now that a page of ours is open
            run.warnings.extend(sandbox_warnings(browser))  # safety (issue 12)
            cdp = await context.new_cdp_session(page)
            presented = await present_desktop(cdp, page, browser_info, options.user_agent)  # safety (issue 12)
            user_agent = await page.evaluate("navigator.userAgent")
            warc = WarcWriter(staging / layout.WARC, warcinfo=facts.warcinfo(run, browser_info, user_agent),
                              scrubber=guard.scrubber)
            run.warnings.extend(await safety.check_egress(guard, context, warc, run.capture_id))  # safety (issue 12)
            recorder = NetworkRecorder(cdp, warc, spool_dir=staging / ".spool", options=options, user_agent={
                "userAgent": presented["user_agent"], "userAgentMetadata": presented["client_hints"]})
            early = EarlyRequests(page, options.max_body_size)
            early.attach(context)
            watch = PageWatch(record_popup=popup_recorder(
                capture_id=run.capture_id, scrubber=run.scrubber, add_artifact=run.artifacts.append,
                recorder=recorder, early=early, staging=staging, warc=warc, until=snapshots_from))
            await watch.attach(context, page, cdp, ignore_tls_errors=options.ignore_tls_errors)
            console = ConsoleLog.attach(page)
            await recorder.start()

            nav_error = await _navigate(run, page, recorder, snapshots_from, say)
            profile_run = ahead = None
            if nav_error is None:
                ahead = await _wait_quiet(run, recorder, snapshots_from,
                                          None if profile.steps else _photographer(run, page, cdp, recorder, staging))
                profile_run = await _run_profile(run, page, profile, snapshots_from, staging, say)
                say("completing media")
                await recorder.complete_media(snapshots_from)
            await watch.settle(snapshots_from - time.monotonic())
            await recorder.drain(timeout=max(1.0, min(30.0, snapshots_from - time.monotonic())))
            media_ahead = await _hash_media_ahead(staging, warc, deadline)  # while the snapshots are taken
            hashing: list[asyncio.Future[Any]] = []
            navigation = recorder.navigation
            if nav_error is None and navigation.status is None:
                nav_error = describe_navigation_error(target, navigation.error or "no response received")
            if nav_error is not None:
                tls = "TLS error" in nav_error
                run.degrade("failed", nav_error + (f" ({TLS_HINT})" if tls and not options.ignore_tls_errors else ""))
            elif proxy_error := proxy_failure(options.proxy, navigation.status):  # safety (issue 12)
                run.degrade("failed", proxy_error)
            for attempt in watch.service_workers:
                run.warnings.append(CaptureWarning(
                    "service-worker-blocked",
                    f"the page tried to register service worker {attempt['script_url']}: blocked, recorded",
                    attempt["page_url"]))
            if watch.tls_errors:
                detail = ", ".join(watch.tls_errors)
                run.warnings.append(CaptureWarning("tls-error-ignored", f"certificate errors ignored: {detail}"))

            kept, discarded = await _judge_ahead(ahead, skip=nav_error is not None)
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
                    scrubber=guard.scrubber,
                    deadline=deadline,
                    on_screenshots=lambda shots: hashing.append(_hash_screenshots_ahead(media_ahead, staging, shots)),
                    ahead_discarded=discarded,
                ),
                ahead=kept,
            )
            if ahead is not None:
                ahead.discard()
            run.artifacts.extend(attachments.artifacts)
            # The screenshots were hashed while the DOM, MHTML and PDF were taken; without them, nothing more.
            media_ahead = hashing[0] if hashing else _hash_screenshots_ahead(media_ahead, staging, run.artifacts)
            if nav_error is None:  # safety (issue 12): a secret shown as text is in the screenshots and PDF too
                run.warnings.extend(await safety.visible_secret_warnings(page, guard.scrubber))
            run.warnings.extend(attachments.warnings)
            if nav_error is None and attachments.essential_missing:
                run.degrade("partial", "essential attachment missing: " + ", ".join(attachments.essential_missing))
            found_ids = await _identifiers(run, staging, warc, profile, navigation.final_url or target)
            if profile_run is not None:
                await _profile_artifacts(run, staging, warc, profile_run, navigation.final_url or target, found_ids)
            await recorder.drain(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
            await _targets_record(run, warc, recorder)
            run.warnings.extend(recorder.warnings)
            if recorder.cut_by_deadline and nav_error is None:
                run.degrade("partial", f"the capture reached its deadline (--timeout {options.timeout:g} s) before "
                            f"{len(recorder.cut_by_deadline)} whole-body re-fetch(es) ended; the rest is sealed")
            detection = await _detect(run, staging, warc, navigation.final_url or target, deadline, say,
                                      media_ahead)
            warc_digest = await warc.close()
        finally:
            await _close_quietly(context)

        run.artifacts.insert(
            0, Artifact(layout.WARC, "warc", "application/warc", warc_digest, description="WARC/1.1, gzip per record")
        )
        shutil.rmtree(staging / ".spool", ignore_errors=True)
        ended = clock.now()
        manifest = facts.manifest(
            run, ended, navigation, recorder, watch, browser_info, browser.version, user_agent, profile, profile_run,
            sealing.signer.fingerprint, tls_error=(watch.tls_errors[0] if watch.tls_errors else None),
            key_protection=sealing.signer.protection,
            detection=detection,
        )
        manifest["identifiers"] = found_ids
        manifest["environment"]["presented"] = presented  # safety (issue 12): UA, client hints, webdriver
        manifest = safety.finish_manifest(manifest, guard)
        manifest["environment"]["browser"]["sandbox"] = sandbox_state(browser)
    except (PlaywrightError, OSError, EvicapError) as exc:
        # The browser, Playwright or the OS failed (crash, unwritable bundle): keep what was written, say where.
        # Anything else is a bug of ours: it propagates (one line, traceback with --debug), never retried.
        reason = exc.one_line() if isinstance(exc, EvicapError) else _reason(exc)
        message = f"capture of {target} stopped: {reason}; partial work kept in {staging}"
        raise CaptureError(message, url=target) from exc
    return StagedCapture(target, run, staging, output_dir, name, manifest)


async def _targets_record(run: CaptureRun, warc: WarcWriter, recorder: NetworkRecorder) -> None:
    """Which target and frame each exchange came from, inside the WARC itself (docs/warc-records.md)."""
    exchanges = [
        {"url": x.url, "method": x.method, "target": x.target, "frame": x.frame,
         "request_record": x.request_record, "response_record": x.response_record,
         **({"detail": x.detail} if x.detail else {})}
        for x in recorder.exchanges if x.request_record
    ]
    facts_json = {"targets": [t.to_json() for t in recorder.targets], "exchanges": exchanges}
    body = (json.dumps(facts_json, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    await warc.write_metadata(evicap_uri(run.capture_id, TARGETS_RECORD), "application/json", body)


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


async def _run_profile(run: CaptureRun, page: Page, profile: Any, deadline: float, staging: Path, say: Progress) -> Any:
    from evicap.profiles import run_profile

    say(f"running profile {profile.name}")
    result = await run_profile(page, profile, deadline=deadline, artifacts_dir=staging / layout.ARTIFACTS_DIR)
    run.warnings.extend(result.warnings)
    if result.wall is not None:
        run.degrade("partial", f"{result.wall.kind} wall: {result.wall.reason}")
    return result


async def _profile_artifacts(
    run: CaptureRun, staging: Path, warc: WarcWriter, profile_run: Any, target: str, found_ids: list[dict[str, Any]]
) -> None:
    from evicap.profiles.identifiers import attach_to_items

    for artifact in profile_run.artifacts:
        uri = evicap_uri(run.capture_id, artifact.path)
        await warc.write_resource(uri, artifact.media_type, staging / artifact.path, refers_to_target=target)
        run.artifacts.append(
            Artifact(artifact.path, artifact.role, artifact.media_type, artifact.digest, uri, artifact.description)
        )
    if profile_run.items is not None:
        run.artifacts.append(
            await _write_json_artifact(run, staging, warc, layout.ITEMS, "items",
                                       attach_to_items(profile_run.items, found_ids), target)
        )


async def _identifiers(
    run: CaptureRun, staging: Path, warc: WarcWriter, profile: Any, target: str
) -> list[dict[str, Any]]:
    """Platform identifiers read back from the WARC written so far (see evicap.profiles.identifiers)."""
    from evicap.profiles.identifiers import from_warc

    try:
        written = await warc.flush()
        found = await asyncio.to_thread(from_warc, staging / layout.WARC, profile.name if profile else None,
                                        growing=True, members=warc.members_within(written))
    except EvicapError as error:  # an unreadable WARC fails its own checks; the capture keeps what it has
        run.warnings.append(CaptureWarning("identifiers-unread", error.one_line()))
        return []
    listed = [i.to_json() for i in found]
    data = {"identifiers": listed, "read_from": layout.WARC}
    run.artifacts.append(await _write_json_artifact(run, staging, warc, layout.IDENTIFIERS, "identifiers", data,
                                                    target))
    return listed



def _media_limits(deadline: float) -> Any:
    from evicap.detect.media import Limits

    budget = max(MEDIA_MIN_SECONDS, deadline - time.monotonic())
    return Limits(video_budget=budget, video_timeout=min(Limits().video_timeout, budget))


async def _hash_media_ahead(staging: Path, warc: WarcWriter, deadline: float) -> asyncio.Future[Any]:
    """Start hashing the media of the WARC written so far (the page's exchanges, the page now stopped) in a
    thread: it runs while the browser takes the snapshots, and _detect hashes only what came after."""
    from evicap.detect.media import hash_warc_media

    written = await warc.flush()
    return asyncio.ensure_future(asyncio.to_thread(
        hash_warc_media, staging / layout.WARC, written, limits=_media_limits(deadline), spool_dir=staging,
        members=warc.members_within(written)))


def _hash_screenshots_ahead(ahead: asyncio.Future[Any], staging: Path, artifacts: Sequence[Artifact]
                            ) -> asyncio.Future[Any]:
    """Once the WARC's media are hashed, hash the screenshots taken so far too, in a thread."""
    listed = [a.to_json() for a in artifacts]

    async def more() -> Any:
        return await asyncio.to_thread((await ahead).with_artifacts, staging, listed)

    return asyncio.ensure_future(more())


async def _detect(
    run: CaptureRun, staging: Path, warc: WarcWriter, target: str, deadline: float, say: Progress,
    ahead: asyncio.Future[Any] | None = None,
) -> dict[str, Any]:
    """media-hashes.json (an artifact, also in the WARC) and hash-list matches for the manifest: evicap.detect.

    Video frames are sampled only in the time left before the deadline (at least MEDIA_MIN_SECONDS, taken from the
    sealing margin), so the capture's one deadline holds; a video left unsampled is listed with the reason.
    ``ahead``: the media of the WARC's beginning, being hashed since the page was stopped (_hash_media_ahead)."""
    from evicap.detect.artifact import media_detection

    say("hashing media")
    hashed_ahead = await ahead if ahead is not None else None
    written = await warc.flush()
    document, detection = await asyncio.to_thread(
        media_detection, staging, written, [a.to_json() for a in run.artifacts], run.capture_id,
        run.options.match_lists, limits=_media_limits(deadline), ahead=hashed_ahead,
        members=warc.members_within(written),
    )
    run.artifacts.append(
        await _write_json_artifact(run, staging, warc, layout.MEDIA_HASHES, "media-hashes", document, target)
    )
    for match in detection["matches"]:
        where = match.get("target_uri") or match.get("artifact")
        kind, distance = match["signal_type"], match["distance"]
        say(f"hash-list match: {match['list']}: {match['label']} ({kind}, distance {distance}) {where}")
    return detection
