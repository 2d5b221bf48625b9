"""The step vocabulary: what each profile step does to the page, and what it reports back.

Each step returns an outcome and a one-line detail that goes into the manifest, because the defence will ask
what the collection did to the page (scrolled how far, clicked what, hid which overlay). Steps never raise for
page trouble they can describe; the runner turns anything else into a ``failed`` record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Page
from playwright.async_api import Request as PwRequest

from evicap.bundle.hashing import write_bytes
from evicap.bundle.layout import ARTIFACTS_DIR
from evicap.bundle.model import Artifact, CaptureWarning
from evicap.profiles.dismiss import dismiss_overlays
from evicap.profiles.extract import extract_fields, run_extractor

Outcome = str  # "ok" | "skipped" | "failed" | "timeout"


class NetworkTracker:
    """Counts requests in flight, so steps can wait for the network to go quiet."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.inflight: set[PwRequest] = set()
        self.last_change = time.monotonic()

    def _start(self, request: PwRequest) -> None:
        self.inflight.add(request)
        self.last_change = time.monotonic()

    def _end(self, request: PwRequest) -> None:
        self.inflight.discard(request)
        self.last_change = time.monotonic()

    def attach(self) -> None:
        self.page.on("request", self._start)
        self.page.on("requestfinished", self._end)
        self.page.on("requestfailed", self._end)

    def detach(self) -> None:
        self.page.remove_listener("request", self._start)
        self.page.remove_listener("requestfinished", self._end)
        self.page.remove_listener("requestfailed", self._end)

    async def quiet(self, seconds: float, limit: float) -> bool:
        """Wait until nothing was in flight for ``seconds``; False if ``limit`` seconds pass first.

        Long-lived requests (streams, event sources) would never end; after the limit we simply move on.
        """
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if not self.inflight and time.monotonic() - self.last_change >= seconds:
                return True
            await asyncio.sleep(0.05)
        return False


@dataclass
class StepContext:
    """What a step may use and add to: the page, where to write artifacts, the items found so far."""

    page: Page
    artifacts_dir: Path
    network: NetworkTracker
    index: int = 0  # position of the running step, to name its files
    items: list[dict[str, Any]] | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    warnings: list[CaptureWarning] = field(default_factory=list)


StepResult = tuple[Outcome, str]
StepFn = Callable[[StepContext, dict[str, Any], float], Awaitable[StepResult]]


async def step_wait(ctx: StepContext, p: dict[str, Any], budget: float) -> StepResult:
    done = []
    if "selector" in p:
        await ctx.page.wait_for_selector(p["selector"], state=p.get("state", "visible"), timeout=budget * 1000)
        done.append(f"selector {p['selector']} present")
    if "seconds" in p:
        if float(p["seconds"]) > budget:
            await asyncio.sleep(budget)
            return "timeout", f"waited {budget:.1f}s of {p['seconds']}s: the time was up"
        await asyncio.sleep(float(p["seconds"]))
        done.append(f"waited {p['seconds']}s")
    if "network_quiet" in p:
        quiet = await ctx.network.quiet(float(p["network_quiet"]), budget)
        done.append("network quiet" if quiet else f"network still busy ({len(ctx.network.inflight)} in flight)")
    return "ok", "; ".join(done)


_SCROLL_JS = """
(step) => {
  const el = document.scrollingElement || document.documentElement;
  const before = el.scrollTop;
  el.scrollTop = before + step;
  return {top: el.scrollTop, moved: el.scrollTop - before, height: el.scrollHeight, view: window.innerHeight};
}
"""
_LAZY_JS = """
() => {
  let images = 0, media = 0;
  for (const img of document.querySelectorAll('img[loading="lazy"], iframe[loading="lazy"]')) {
    img.loading = 'eager'; images++;
  }
  for (const v of document.querySelectorAll('video[preload="none"], audio[preload="none"]')) {
    v.preload = 'metadata'; media++;
  }
  return [images, media];
}
"""


async def step_scroll(ctx: StepContext, p: dict[str, Any], budget: float) -> StepResult:
    """Scroll a viewport at a time so lazy loaders fire, until the page stops growing or a limit is hit."""
    max_scrolls = int(p.get("max_scrolls", 60))
    max_height = int(p.get("max_height", 40_000))
    end = time.monotonic() + min(float(p.get("max_seconds", 30)), budget)
    settle = float(p.get("settle", 0.6))
    stable_needed = int(p.get("stable_rounds", 2))
    eager = (0, 0)
    if p.get("lazy_media", True):
        eager = tuple(await ctx.page.evaluate(_LAZY_JS))
    start = await ctx.page.evaluate(_SCROLL_JS, 0)
    scrolls, stable, reason, state = 0, 0, "no new content", start
    if start["height"] <= start["view"] + 1:
        # Nothing below the window: no scroll event can fire, so no feed can load more. Waiting would only cost time.
        return "skipped", f"page fits the window ({start['height']} px); nothing to scroll"
    while True:
        if scrolls >= max_scrolls:
            reason = "max_scrolls reached"
            break
        if time.monotonic() >= end:
            reason = "time limit reached"
            break
        state = await ctx.page.evaluate(_SCROLL_JS, int(state["view"] * 0.85))
        scrolls += 1
        if state["top"] >= max_height:
            reason = "max_height reached"
            break
        if state["moved"] > 0:
            await asyncio.sleep(0.12)  # give IntersectionObservers a frame
            continue
        # At the bottom: let the feed fetch more, then see if the page grew.
        await ctx.network.quiet(settle, max(0.0, min(settle * 4, end - time.monotonic())))
        if p.get("lazy_media", True):
            await ctx.page.evaluate(_LAZY_JS)
        after = await ctx.page.evaluate(_SCROLL_JS, 0)
        if after["height"] > state["height"]:
            stable, state = 0, after
            continue
        stable += 1
        if stable >= stable_needed:
            break
        await asyncio.sleep(settle)
    if p.get("back_to_top", True):
        await ctx.page.evaluate("() => window.scrollTo(0, 0)")
    detail = f"{scrolls} scrolls, height {start['height']}→{state['height']} px, stopped: {reason}"
    if eager != (0, 0):
        detail += f"; set {eager[0]} lazy images/frames to eager, {eager[1]} media to preload metadata"
    return ("ok" if reason != "time limit reached" else "timeout"), detail


_FIND_TEXT_JS = """
([texts, skip]) => {
  const norm = s => (s || '').replace(/[\\s\\u00a0]+/g, ' ').trim().toLowerCase().replace(/[.…]+$/, '');
  const wanted = new Set(texts.map(norm));
  const q = 'button, [role=button], a, span, div, summary, input[type=button]';
  for (const el of document.querySelectorAll(q)) {
    if (skip.includes(el)) continue;
    const t = norm(el.innerText || el.value || el.getAttribute('aria-label'));
    if (!wanted.has(t)) continue;
    // the innermost element with the text wins
    if (el.children.length && Array.from(el.children).some(c => norm(c.innerText) === t)) continue;
    const href = el.closest('a') && el.closest('a').getAttribute('href');
    if (href && !href.startsWith('#') && !href.startsWith('javascript:')) continue;  // would navigate away
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0) return el;
  }
  return null;
}
"""


async def step_click(ctx: StepContext, p: dict[str, Any], budget: float) -> StepResult:
    """Click by selector or visible text; with ``repeat`` keep clicking while matches remain (bounded)."""
    texts = [p["text"]] if isinstance(p.get("text"), str) else list(p.get("text") or [])
    limit = int(p.get("max", 50)) if p.get("repeat", True) else 1
    settle = float(p.get("settle", 0.3))
    end = time.monotonic() + budget
    clicks, start_url = 0, ctx.page.url
    stuck: list[Any] = []
    while clicks < limit and time.monotonic() < end:
        if "selector" in p:
            handle = await ctx.page.evaluate_handle(
                """([sel, skip]) => Array.from(document.querySelectorAll(sel)).find(e => !skip.includes(e) &&
                   e.getBoundingClientRect().width > 0) || null""",
                [p["selector"], stuck],
            )
        else:
            handle = await ctx.page.evaluate_handle(_FIND_TEXT_JS, [texts, stuck])
        element = handle.as_element()
        if element is None:
            break
        try:
            await element.click(timeout=min(2000, max(100, (end - time.monotonic()) * 1000)))
        except Exception:
            try:
                await element.evaluate("el => el.click()")
            except Exception:
                stuck.append(element)
                continue
        clicks += 1
        await ctx.network.quiet(settle, max(0.0, min(settle * 5, end - time.monotonic())))
        if ctx.page.url != start_url:
            return "failed", f"click {clicks} navigated away to {ctx.page.url}"
    what = p.get("selector") or "|".join(texts)
    if clicks == 0:
        return "skipped", f"nothing matched {what}"
    return ("timeout" if time.monotonic() >= end and clicks < limit else "ok"), f"clicked {clicks}× {what}"


async def step_dismiss(ctx: StepContext, p: dict[str, Any], budget: float) -> StepResult:
    done = await dismiss_overlays(
        ctx.page,
        consent=p.get("consent", "accept"),
        extra_selectors=tuple(p.get("selectors", ())),
        extra_texts=tuple(p.get("texts", ())),
        rounds=int(p.get("rounds", 3)),
        timeout_ms=min(2000, budget * 1000 / 4),
    )
    if not done:
        return "skipped", "no consent banner or pop-up found"
    return "ok", "; ".join(
        f"clicked {d.reason}" + ("" if d.frame_url == ctx.page.url else f" in frame {d.frame_url}") for d in done
    )


_HIDE_JS = """
([selectors, fixed]) => {
  const hidden = [];
  const hide = (el, why) => { el.style.setProperty('visibility', 'hidden', 'important'); hidden.push(why); };
  for (const s of selectors) for (const el of document.querySelectorAll(s)) hide(el, s);
  if (fixed) {
    const vw = window.innerWidth, vh = window.innerHeight;
    for (const el of document.querySelectorAll('body *')) {
      const cs = getComputedStyle(el);
      if (cs.position !== 'fixed' && cs.position !== 'sticky') continue;
      if (cs.visibility === 'hidden' || cs.display === 'none') continue;
      const r = el.getBoundingClientRect();
      const w = Math.max(0, Math.min(r.right, vw) - Math.max(r.left, 0));
      const area = w * Math.max(0, Math.min(r.bottom, vh) - Math.max(r.top, 0));
      const modal = el.matches('[role=dialog], [aria-modal=true], dialog') || area >= 0.25 * vw * vh;
      const bar = r.height < vh * 0.3 && r.width >= vw * 0.6 && r.top >= vh * 0.5;  // bottom banners
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '');
      if (modal || bar) hide(el, `${name} (${cs.position} ${Math.round(r.width)}×${Math.round(r.height)})`);
    }
    for (const el of [document.documentElement, document.body]) {
      if (getComputedStyle(el).overflow === 'hidden') {
        el.style.setProperty('overflow', 'auto', 'important');
        hidden.push('scroll lock on ' + el.tagName.toLowerCase());
      }
    }
  }
  return hidden;
}
"""


async def step_hide(ctx: StepContext, p: dict[str, Any], budget: float) -> StepResult:
    hidden: list[str] = await ctx.page.evaluate(_HIDE_JS, [list(p.get("selectors", ())), p.get("fixed_overlays", True)])
    if not hidden:
        return "skipped", "no overlay to hide"
    return "ok", "hid " + ", ".join(hidden[:20]) + (f" and {len(hidden) - 20} more" if len(hidden) > 20 else "")


async def step_type(ctx: StepContext, p: dict[str, Any], budget: float) -> StepResult:
    await ctx.page.locator(p["selector"]).first.press_sequentially(p["text"], delay=15, timeout=budget * 1000)
    return "ok", f"typed {len(p['text'])} characters into {p['selector']}"


async def step_press(ctx: StepContext, p: dict[str, Any], budget: float) -> StepResult:
    if "selector" in p:
        await ctx.page.locator(p["selector"]).first.press(p["key"], timeout=budget * 1000)
    else:
        await ctx.page.keyboard.press(p["key"])
    return "ok", f"pressed {p['key']}"


async def step_screenshot(ctx: StepContext, p: dict[str, Any], budget: float) -> StepResult:
    """Element screenshots, written through the hashing writer and returned as artifacts."""
    name = p.get("name", "element")
    locator = ctx.page.locator(p["selector"])
    count = min(await locator.count(), int(p.get("max", 1)))
    if count == 0:
        return "skipped", f"nothing matched {p['selector']}"
    for n in range(count):
        data = await locator.nth(n).screenshot(timeout=budget * 1000, animations="disabled")
        filename = f"element-{ctx.index:02d}-{name}-{n + 1}.png"
        digest = write_bytes(ctx.artifacts_dir / filename, data)
        ctx.artifacts.append(
            Artifact(
                f"{ARTIFACTS_DIR}/{filename}",
                "screenshot-element",
                "image/png",
                digest,
                description=f"element {p['selector']} #{n + 1}",
            )
        )
    return "ok", f"{count} element screenshot(s) of {p['selector']}"


async def step_extract(ctx: StepContext, p: dict[str, Any], budget: float) -> StepResult:
    if "extractor" in p:
        found = await run_extractor(ctx.page, p["extractor"])
        what = f"extractor {p['extractor']}"
    else:
        found = await extract_fields(ctx.page, p["selector"], p["fields"])
        what = f"fields of {p['selector']}"
    ctx.items = (ctx.items or []) + found
    return ("ok" if found else "skipped"), f"{len(found)} item(s) by {what}"


STEPS: dict[str, StepFn] = {
    "wait": step_wait,
    "scroll": step_scroll,
    "click": step_click,
    "dismiss": step_dismiss,
    "hide": step_hide,
    "type": step_type,
    "press": step_press,
    "screenshot": step_screenshot,
    "extract": step_extract,
}
