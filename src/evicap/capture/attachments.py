"""Everything the capture keeps besides the network record: screenshots, DOM, MHTML, PDF, page facts, certificates.

Each attachment is written into the staging directory through a HashingWriter (so its hashes are known the
moment it is complete) and then copied into the WARC as a ``resource`` record (files) or a ``metadata``
record (JSON facts) under ``urn:evicap:<capture id>:<file name>``, so the WARC alone holds the whole capture.

Attachments are independent: one that fails (a crashed renderer cannot print a PDF) becomes a warning and the
others are still written. The browser side of each step is bounded by ``step_timeout`` so a hostile page
cannot hold the capture; the WARC side is never cancelled half-way, so the WARC never holds half a record.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from playwright.async_api import CDPSession, Page
from playwright.async_api import ConsoleMessage as PlaywrightConsoleMessage
from playwright.async_api import Error as PlaywrightError

from evicap.bundle import layout
from evicap.bundle.hashing import FileDigest, HashingWriter, write_bytes
from evicap.bundle.manifest import utc_now
from evicap.bundle.model import Artifact, CaptureWarning
from evicap.capture import certs
from evicap.capture.options import CaptureOptions
from evicap.capture.screenshot import FullPageShot, evaluate_isolated, full_page_png, scroll_to_top, viewport_png
from evicap.capture.types import CertificateChain, ConsoleMessage, Navigation
from evicap.capture.uris import evicap_uri
from evicap.errors import first_line

T = TypeVar("T")

# Without these the bundle cannot show what the page looked like; missing one makes the capture partial.
ESSENTIAL = ("screenshot", "dom", "page-facts")

# Caps on what a page can make us keep in memory and in page-facts.json.
MAX_CONSOLE_MESSAGES = 1000
MAX_CONSOLE_TEXT = 4000
MAX_FRAMES = 200
IO_CHUNK = 1024 * 1024
RESPONSIVE_WITHIN = 5.0  # seconds the page's renderer may take to answer before its script is stopped
# Error texts by which Playwright says the page will never answer again.
PAGE_GONE_MARKS = ("Target crashed", "has been closed", "Target closed")


class ResourceSink(Protocol):
    """The part of WarcWriter that attachments use."""

    async def write_resource(
        self, uri: str, media_type: str, source: Path | bytes, *, refers_to_target: str | None = None
    ) -> str: ...

    async def write_metadata(
        self, uri: str, media_type: str, data: bytes, *, refers_to_target: str | None = None
    ) -> str: ...


@dataclass(frozen=True)
class AttachmentInputs:
    """What the session knows when the page is done, handed to ``collect_attachments``."""

    capture_id: str  # names the urn: URIs of the WARC copies
    page_url: str  # the URL asked for; the WARC records refer to the final URL when there is one
    navigation: Navigation  # final URL, status, redirect chain (from the recorder)
    certificates: Mapping[str, CertificateChain] = field(default_factory=dict)  # origin -> chain seen
    console: Sequence[ConsoleMessage] = ()
    dialogs: Sequence[Mapping[str, Any]] = ()  # as PageWatch records them
    popups: Sequence[Mapping[str, Any]] = ()
    options: CaptureOptions = field(default_factory=CaptureOptions)
    skip_rendering: bool = False  # navigation failed: no page to photograph, only facts and certificates
    console_dropped: int = 0  # messages over ConsoleLog's cap, reported in the facts
    step_timeout: float = 60.0  # seconds for the browser side of any one attachment
    deadline: float | None = None  # time.monotonic() by which the snapshots end (each step gets MIN_STEP at least)
    scrubber: Any = None  # safety (issue 12): evicap.capture.secrets.Scrubber, applied before anything is written
    # Called once the screenshots are written, while DOM, MHTML and PDF are still to come (the session hashes
    # them meanwhile); given the artifacts written so far.
    on_screenshots: Callable[[Sequence[Artifact]], None] | None = None
    # Why snapshots taken during the quiet window were not kept (capture/ahead.py), for the page facts.
    ahead_discarded: str | None = None


@dataclass(frozen=True)
class AttachmentResult:
    artifacts: list[Artifact]  # in the order written
    warnings: list[CaptureWarning]  # failed or cut attachments
    facts: dict[str, Any]  # the page facts, as written to page-facts.json
    essential_missing: list[str]  # names from ESSENTIAL that failed (not those skipped on purpose)


class ConsoleLog:
    """Console messages and uncaught page errors, collected from before navigation, capped in count and length.

    A hostile page can log in a loop; past ``MAX_CONSOLE_MESSAGES`` messages are only counted (``dropped``).
    """

    def __init__(self) -> None:
        self.messages: list[ConsoleMessage] = []
        self.dropped = 0

    @classmethod
    def attach(cls, page: Page) -> ConsoleLog:
        log = cls()
        page.on("console", log._on_console)
        page.on("pageerror", log._on_page_error)
        return log

    def _keep(self, message: ConsoleMessage) -> None:
        if len(self.messages) < MAX_CONSOLE_MESSAGES:
            self.messages.append(message)
        else:
            self.dropped += 1

    def _on_console(self, message: PlaywrightConsoleMessage) -> None:
        location = message.location or {}
        line = location.get("lineNumber")
        self._keep(
            ConsoleMessage(
                type=message.type,
                text=message.text[:MAX_CONSOLE_TEXT],
                url=(location.get("url") or None),
                line=line if isinstance(line, int) else None,
            )
        )

    def _on_page_error(self, error: PlaywrightError) -> None:
        self._keep(ConsoleMessage(type="pageerror", text=str(error)[:MAX_CONSOLE_TEXT]))


# Seconds any snapshot step gets even past the deadline: the capture's margin (session.SEAL_MARGIN) pays for it.
MIN_STEP = 2.0


@dataclass
class Snapshots:
    """Snapshots taken ahead (capture/ahead.py) into their own directory, in nothing else yet: not in the WARC,
    not among the artifacts. ``collect_attachments(ahead=...)`` moves them into the bundle when they still show
    the page; otherwise the directory is removed and the page is photographed again."""

    directory: Path
    stored: list[tuple[Artifact, bool]]  # each file as listed, and whether it goes into the WARC as metadata
    seen: dict[str, Any]
    warnings: list[CaptureWarning]
    failed: list[str]

    @property
    def whole(self) -> bool:
        """Every step gave its file: a set that can stand in for the snapshots taken after the quiet window."""
        return not self.failed


class _Collector:
    """Runs the attachment steps, each isolated, and gathers artifacts and warnings.

    Without a ``warc`` (snapshots taken ahead) files are listed but not copied (``deferred``), and once a step
    failed or ``abandon()`` says the page moved on, the remaining steps are not run."""

    def __init__(self, staging_dir: Path, warc: ResourceSink | None, inputs: AttachmentInputs, *,
                 abandon: Callable[[], bool] | None = None) -> None:
        self.staging_dir = staging_dir
        self.warc = warc
        self.inputs = inputs
        self.abandon = abandon
        self.deferred: list[tuple[Artifact, bool]] = []
        self.target = inputs.navigation.final_url or inputs.page_url
        self.artifacts: list[Artifact] = []
        self.warnings: list[CaptureWarning] = []
        self.failed: list[str] = []
        self.page_gone: str | None = None  # set once the renderer crashed or the page closed
        self._copies: list[asyncio.Future[str]] = []  # WARC copies under way (store)

    def path(self, rel_path: str) -> Path:
        return self.staging_dir / rel_path

    async def attempt(self, name: str, step: Callable[[], Awaitable[T]]) -> T | None:
        """Run the browser side of one step within the time limit; a failure becomes a warning."""
        if self.page_gone is not None:
            self._fail(name, self.page_gone)
            return None
        if self.abandon is not None and (self.failed or self.abandon()):
            self._fail(name, "not taken ahead: an earlier step failed or the page changed")
            return None
        try:
            return await asyncio.wait_for(step(), timeout=self.step_timeout())
        except Exception as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else first_line(exc)
            if any(mark in reason for mark in PAGE_GONE_MARKS):
                # A crashed or closed page answers nothing more; fail the remaining steps at once
                # instead of letting each wait out its timeout.
                self.page_gone = f"page unavailable ({reason})"
            self._fail(name, reason)
            return None

    def step_timeout(self) -> float:
        limit = self.inputs.step_timeout
        if self.inputs.deadline is not None:
            limit = min(limit, max(MIN_STEP, self.inputs.deadline - time.monotonic()))
        return limit

    def _fail(self, name: str, reason: str) -> None:
        self.warnings.append(CaptureWarning("attachment-failed", f"{name} not captured: {reason}", self.target))
        self.failed.append(name)

    async def store(
        self, rel_path: str, role: str, media_type: str, digest: FileDigest, *, metadata: bool = False
    ) -> Artifact:
        """List a finished file as an Artifact and start copying it into the WARC.

        The copy runs on the WARC's writer thread (records stay whole and in call order) while the browser takes
        the next snapshot; ``copied()`` waits for every copy and raises the first error of any."""
        uri = evicap_uri(self.inputs.capture_id, rel_path)
        artifact = Artifact(rel_path, role, media_type, digest, warc_record_uri=uri)
        self.artifacts.append(artifact)
        if self.warc is None:
            self.deferred.append((artifact, metadata))
            return artifact
        path = self.path(rel_path)
        if metadata:
            copy = self.warc.write_metadata(uri, media_type, path.read_bytes(), refers_to_target=self.target)
        else:
            copy = self.warc.write_resource(uri, media_type, path, refers_to_target=self.target)
        self._copies.append(asyncio.ensure_future(copy))
        return artifact

    async def copied(self) -> None:
        """Wait until every file handed to ``store`` is in the WARC."""
        copies, self._copies = self._copies, []
        outcomes = await asyncio.gather(*copies, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


async def collect_attachments(
    page: Page, cdp: CDPSession, staging_dir: Path, warc: ResourceSink, inputs: AttachmentInputs,
    *, ahead: Snapshots | None = None,
) -> AttachmentResult:
    """Write every attachment of a loaded page into ``staging_dir/artifacts`` and the WARC. ``ahead``: snapshots
    taken earlier that still show the page (capture/ahead.py) are moved in instead of being taken again."""
    (staging_dir / layout.ARTIFACTS_DIR).mkdir(parents=True, exist_ok=True)
    run = _Collector(staging_dir, warc, inputs)
    try:
        return await _collect(run, page, cdp, inputs, ahead)
    finally:
        await run.copied()  # also when a step raised: no copy is left running behind the caller


async def take_snapshots(
    page: Page, cdp: CDPSession, directory: Path, inputs: AttachmentInputs, abandon: Callable[[], bool]
) -> Snapshots:
    """Take the snapshots into ``directory`` (its own ``artifacts``), copying nothing into the WARC: the steps of
    ``collect_attachments`` up to the PDF. Stops at the first failed step or once ``abandon()`` is true."""
    (directory / layout.ARTIFACTS_DIR).mkdir(parents=True, exist_ok=True)
    run = _Collector(directory, None, inputs, abandon=abandon)
    seen = await _snapshots(run, page, cdp, inputs)
    return Snapshots(directory, run.deferred, seen, run.warnings, run.failed)


async def _collect(run: _Collector, page: Page, cdp: CDPSession, inputs: AttachmentInputs,
                   ahead: Snapshots | None) -> AttachmentResult:
    seen: dict[str, Any] = {}
    if ahead is not None:
        seen = await _adopt(run, ahead)
    elif not inputs.skip_rendering:
        seen = await _snapshots(run, page, cdp, inputs)
    facts = build_facts(inputs, seen)
    if inputs.scrubber is not None:  # safety (issue 12): console messages, frame URLs, titles
        facts = inputs.scrubber.scrub_json(facts, layout.PAGE_FACTS)
    digest = write_bytes(run.path(layout.PAGE_FACTS), _json_bytes(facts))
    await run.store(layout.PAGE_FACTS, "page-facts", "application/json", digest, metadata=True)
    await _certificates(run)
    return AttachmentResult(
        artifacts=run.artifacts,
        warnings=run.warnings,
        facts=facts,
        essential_missing=[name for name in ESSENTIAL if name in run.failed],
    )


async def _snapshots(run: _Collector, page: Page, cdp: CDPSession, inputs: AttachmentInputs) -> dict[str, Any]:
    """Screenshots, DOM, MHTML and PDF, in that order; returns what the page facts take from the document."""
    began = utc_now()
    # A crashed renderer fails this at once (DevTools calls to it would only time out); the steps after
    # it are then skipped with a warning each. A page whose own script never yields is stopped first.
    await _unblock(run, page, cdp)
    await run.attempt("page", lambda: page.main_frame.evaluate("0"))
    seen: dict[str, Any] = await run.attempt("page facts from the document", lambda: _page_facts(page, cdp)) or {}
    scrolled = await run.attempt("scroll to top", lambda: scroll_to_top(cdp))
    if scrolled is not None:
        seen["scrolled_to_top_from"] = {"x": scrolled[0], "y": scrolled[1]}
    await _viewport(run, cdp)
    shot = await _full_page(run, cdp)
    if shot is not None:
        seen["screenshot"] = _shot_facts(shot)
    if inputs.on_screenshots is not None:
        inputs.on_screenshots(list(run.artifacts))
    await _text_file(run, "dom", layout.DOM, "dom", "text/html; charset=utf-8", page.content)
    await _text_file(run, "mhtml", layout.MHTML, "mhtml", "multipart/related", lambda: _mhtml(cdp))
    await _pdf(run, cdp)
    seen["snapshots"] = {"began": began, "ahead": False}
    if inputs.ahead_discarded is not None:
        seen["snapshots"]["ahead_discarded"] = inputs.ahead_discarded
    return seen


async def _adopt(run: _Collector, ahead: Snapshots) -> dict[str, Any]:
    """Move snapshots taken ahead into the bundle, in the order they were taken, and copy each into the WARC."""
    for item, metadata in ahead.stored:
        os.replace(ahead.directory / item.path, run.path(item.path))
        await run.store(item.path, item.role, item.media_type, item.digest, metadata=metadata)
    run.warnings.extend(ahead.warnings)
    if run.inputs.on_screenshots is not None:
        run.inputs.on_screenshots(list(run.artifacts))
    return {**ahead.seen, "snapshots": {**ahead.seen["snapshots"], "ahead": True}}


async def _unblock(run: _Collector, page: Page, cdp: CDPSession) -> None:
    """If the page's own script holds the renderer (an endless loop), stop that script and keep scripts off, so
    the page can be photographed as it stands; otherwise every snapshot would wait out its time limit."""
    try:
        await asyncio.wait_for(page.main_frame.evaluate("0"), RESPONSIVE_WITHIN)
        return
    except TimeoutError:
        pass
    except Exception:  # crashed or closed: the "page" step right after says so
        return
    try:
        await asyncio.wait_for(cdp.send("Runtime.terminateExecution"), RESPONSIVE_WITHIN)
        await asyncio.wait_for(cdp.send("Emulation.setScriptExecutionDisabled", {"value": True}), RESPONSIVE_WITHIN)
    except Exception as exc:
        run.warnings.append(CaptureWarning("page-unresponsive", f"page script could not be stopped: {first_line(exc)}",
                                           run.target))
        run.page_gone = f"page unresponsive (its script never yields for {RESPONSIVE_WITHIN:.0f} s)"
        return
    run.warnings.append(
        CaptureWarning(
            "page-script-stopped",
            f"the page's script kept the renderer busy for over {RESPONSIVE_WITHIN:.0f} s; evicap stopped it "
            "(Runtime.terminateExecution) and turned scripts off to take the snapshots",
            run.target,
        )
    )


async def _viewport(run: _Collector, cdp: CDPSession) -> None:
    path = run.path(layout.SCREENSHOT_VIEWPORT)
    digest = await run.attempt("screenshot-viewport", lambda: viewport_png(cdp, path))
    if digest is not None:
        await run.store(layout.SCREENSHOT_VIEWPORT, "screenshot-viewport", "image/png", digest)


async def _full_page(run: _Collector, cdp: CDPSession) -> FullPageShot | None:
    path = run.path(layout.SCREENSHOT_FULL)
    max_height = run.inputs.options.full_page_max_height
    viewport = next((run.path(a.path) for a in run.artifacts if a.path == layout.SCREENSHOT_VIEWPORT), None)
    shot = await run.attempt("screenshot", lambda: full_page_png(cdp, path, max_height=max_height,
                                                                 viewport_shot=viewport))
    if shot is None:
        return None
    await run.store(layout.SCREENSHOT_FULL, "screenshot", "image/png", shot.digest)
    if shot.truncated:
        run.warnings.append(
            CaptureWarning(
                "screenshot-truncated",
                f"full-page screenshot cut at {shot.captured_width}x{shot.captured_height} CSS px; "
                f"the page measured {shot.document_width}x{shot.document_height}",
                run.target,
            )
        )
    return shot


def _shot_facts(shot: FullPageShot) -> dict[str, Any]:
    return {
        "png_width": shot.width,
        "png_height": shot.height,
        "captured_css_width": shot.captured_width,
        "captured_css_height": shot.captured_height,
        "scale": shot.scale,
        "tiles": shot.tiles,
        "truncated": shot.truncated,
    }


async def _text_file(
    run: _Collector, name: str, rel_path: str, role: str, media_type: str, fetch: Callable[[], Awaitable[str]]
) -> None:
    """A text snapshot the browser returns as one string, written as UTF-8 in pieces."""
    path = run.path(rel_path)

    async def produce() -> FileDigest:
        text = _scrubbed(run.inputs.scrubber, role, rel_path, await fetch())
        try:
            with HashingWriter(path) as out:
                for start in range(0, len(text), IO_CHUNK):
                    out.write(text[start : start + IO_CHUNK].encode("utf-8", "replace"))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        assert out.digest is not None
        return out.digest

    digest = await run.attempt(name, produce)
    if digest is not None:
        await run.store(rel_path, role, media_type, digest)


def _scrubbed(scrubber: Any, role: str, rel_path: str, text: str) -> str:
    """Secrets out of a text snapshot before it is written (MHTML: each part decoded first)."""
    if scrubber is None or not scrubber.active:
        return text
    if role == "mhtml":
        return str(scrubber.scrub_mhtml(text.encode("utf-8", "replace"), rel_path).decode("utf-8", "replace"))
    return str(scrubber.scrub_text(text, rel_path))


async def _mhtml(cdp: CDPSession) -> str:
    """MHTML of the page with all its frames, as Chromium serializes it (``Page.captureSnapshot``)."""
    snapshot = await cdp.send("Page.captureSnapshot", {"format": "mhtml"})
    return str(snapshot["data"])


async def _pdf(run: _Collector, cdp: CDPSession) -> None:
    """Print to PDF with backgrounds, streamed from the browser in chunks (``transferMode: ReturnAsStream``)."""
    path = run.path(layout.PDF)

    async def produce() -> FileDigest:
        printed = await cdp.send("Page.printToPDF", {"printBackground": True, "transferMode": "ReturnAsStream"})
        handle = printed["stream"]
        try:
            with HashingWriter(path) as out:
                while True:
                    piece = await cdp.send("IO.read", {"handle": handle, "size": IO_CHUNK})
                    data = piece.get("data", "")
                    out.write(base64.b64decode(data) if piece.get("base64Encoded") else data.encode("latin-1"))
                    if piece.get("eof"):
                        break
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        finally:
            try:
                await cdp.send("IO.close", {"handle": handle})
            except Exception:  # the stream is gone with the page; nothing left to release
                pass
        assert out.digest is not None
        return out.digest

    digest = await run.attempt("pdf", produce)
    if digest is not None:
        await run.store(layout.PDF, "pdf", "application/pdf", digest)


async def _certificates(run: _Collector) -> None:
    """certificates.pem and certificates.json; no files at all when no HTTPS origin was seen."""
    chains = [chain for chain in run.inputs.certificates.values() if chain.der_chain]
    if not chains:
        return
    try:
        pem = certs.chains_pem(chains).encode("ascii")
        document = _json_bytes(certs.chains_json(chains))
    except Exception as exc:
        run.warnings.append(CaptureWarning("attachment-failed", f"certificates not written: {first_line(exc)}"))
        run.failed.append("certificates")
        return
    digest = write_bytes(run.path(layout.CERTIFICATES_PEM), pem)
    await run.store(layout.CERTIFICATES_PEM, "certificates", "application/x-pem-file", digest)
    digest = write_bytes(run.path(layout.CERTIFICATES_JSON), document)
    await run.store(layout.CERTIFICATES_JSON, "certificates-json", "application/json", digest, metadata=True)


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8", "replace")


# Runs in an isolated world of the page: the DOM as the page shows it, read with JavaScript the page cannot
# tamper with; every value capped, so a hostile page cannot bloat the facts.
_FACTS_SCRIPT = """() => {
  const cap = (v, n) => (v === null || v === undefined) ? null : String(v).slice(0, n);
  const meta = [];
  for (const m of document.querySelectorAll('meta')) {
    const key = m.getAttribute('property') || m.getAttribute('name') || m.getAttribute('itemprop')
      || m.getAttribute('http-equiv') || (m.hasAttribute('charset') ? 'charset' : null);
    if (!key) continue;
    meta.push({name: cap(key, 200), content: cap(m.getAttribute('content') ?? m.getAttribute('charset'), 4000)});
    if (meta.length >= 500) break;
  }
  const links = [];
  for (const l of document.querySelectorAll('link[rel]')) {
    if (!/(^|\\s)(canonical|alternate|shortlink|amphtml|author|me)(\\s|$)/i.test(l.getAttribute('rel'))) continue;
    links.push({rel: cap(l.getAttribute('rel'), 200), href: cap(l.href, 4000), type: cap(l.getAttribute('type'), 200),
                hreflang: cap(l.getAttribute('hreflang'), 50)});
    if (links.length >= 100) break;
  }
  const canonical = document.querySelector('link[rel~="canonical" i]');
  const root = document.documentElement;
  return {
    title: cap(document.title, 4000), url: cap(location.href, 8000),
    canonical: canonical ? cap(canonical.href, 8000) : null,
    lang: root ? cap(root.getAttribute('lang'), 50) : null, charset: document.characterSet,
    content_type: document.contentType, ready_state: document.readyState,
    referrer: cap(document.referrer, 8000), meta, links,
    document_size: {width: root ? root.scrollWidth : 0, height: root ? root.scrollHeight : 0},
    viewport: {width: innerWidth, height: innerHeight, device_pixel_ratio: devicePixelRatio},
  };
}"""


async def _page_facts(page: Page, cdp: CDPSession) -> dict[str, Any]:
    facts: dict[str, Any] = await evaluate_isolated(cdp, f"({_FACTS_SCRIPT})()")
    frames = []
    for frame in page.frames[:MAX_FRAMES]:
        parent = frame.parent_frame
        frames.append({"url": frame.url, "name": frame.name, "parent_url": parent.url if parent else None})
    facts["frames"] = frames
    facts["frame_count"] = len(page.frames)
    return facts


def build_facts(inputs: AttachmentInputs, seen: Mapping[str, Any]) -> dict[str, Any]:
    """The page-facts document: what the page showed (``seen``) beside what the network said (navigation)."""
    navigation = inputs.navigation.to_json()
    meta = seen.get("meta") or []
    facts: dict[str, Any] = {
        "collected_at": utc_now(),
        "requested_url": inputs.navigation.requested_url,
        "final_url": inputs.navigation.final_url,
        "document_url": seen.get("url"),
        "http_status": inputs.navigation.status,
        "http_status_text": inputs.navigation.status_text,
        "redirects": navigation["redirects"],
        "title": seen.get("title"),
        "canonical": seen.get("canonical"),
        "opengraph": [m for m in meta if str(m.get("name", "")).lower().startswith(("og:", "article:", "profile:"))],
        "twitter": [m for m in meta if str(m.get("name", "")).lower().startswith("twitter:")],
        "meta": meta,
        "links": seen.get("links") or [],
        "document": {key: seen.get(key) for key in ("content_type", "charset", "lang", "ready_state", "referrer")},
        "document_size": seen.get("document_size"),
        "viewport": seen.get("viewport"),
        "scrolled_to_top_from": seen.get("scrolled_to_top_from"),
        "screenshot": seen.get("screenshot"),
        "snapshots": seen.get("snapshots"),
        "frames": seen.get("frames") or [],
        "frame_count": seen.get("frame_count", 0),
        "console": [
            {"type": m.type, "text": m.text, "url": m.url, "line": m.line}
            for m in inputs.console[:MAX_CONSOLE_MESSAGES]
        ],
        "console_dropped": inputs.console_dropped + max(0, len(inputs.console) - MAX_CONSOLE_MESSAGES),
        "dialogs": [dict(d) for d in inputs.dialogs],
        "popups": [dict(p) for p in inputs.popups],
        "navigation": navigation,
        "rendered": not inputs.skip_rendering,
    }
    return facts
