"""How much slower and heavier is an evidence capture than a bare screenshot? Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_capture.py [--runs 5] [--warmup 1] [--keep DIR] [--profile NAME]

Serves the built-in demo site, launches one Chromium, then alternates, ``--runs`` times each:
  (a) bare Playwright: fresh context, goto (until "load"), full-page PNG screenshot;
  (b) evicap: ``capture_url`` of the same page -- WARC, all attachments, manifest, signature (throwaway key,
      no time-stamp authority: that is a network round trip to a third party, not our cost).
``--profile`` (default ``as-loaded``: no behaviors, the like-for-like comparison with a bare goto + screenshot;
``generic`` adds the scrolling, clicking and waiting a social feed needs, which the bare script does not do).
Reports median wall times and their ratio (issue 2 asked for 1.5x; issue 15 for 1.3x), the peak resident memory of
this Python process while evicap captures, and, separately, of the browser's processes and Playwright's driver.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from playwright.async_api import Browser

from evicap.capture.browser import BrowserInfo, find_browser, launch, probe_version
from evicap.capture.options import CaptureOptions
from evicap.capture.recorder import QUIET_WINDOW
from evicap.capture.session import capture_url
from evicap.capture.staged import Sealing, acquire
from evicap.demo.server import DemoServer
from evicap.seal.sealer import SealSettings, load_signer

MB = 1024 * 1024


class PeakRss:
    """Samples resident memory every few milliseconds in a thread: this process, browser tree, driver."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.python = 0
        self.browser = 0
        self.driver = 0
        self._stop = threading.Event()
        self._me = psutil.Process()

    def _sample(self) -> None:
        python = self._me.memory_info().rss
        browser = driver = 0
        for child in self._me.children(recursive=True):
            try:
                name, rss = child.name(), child.memory_info().rss
            except psutil.Error:
                continue  # a renderer that just exited
            if "node" in name or "playwright" in name:
                driver += rss
            else:
                browser += rss
        self.python = max(self.python, python)
        self.browser = max(self.browser, browser)
        self.driver = max(self.driver, driver)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    @contextmanager
    def measuring(self) -> Iterator[PeakRss]:
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self._stop.clear()


class PhaseClock:
    """Turns capture_url's progress messages into time spent in each phase (message until the next one)."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.current = "start (before first message)"
        self.spent: dict[str, float] = {}

    def mark(self, message: str) -> None:
        now = time.perf_counter()
        self.spent[self.current] = self.spent.get(self.current, 0.0) + now - self.last
        self.current, self.last = message, now

    def finish(self) -> dict[str, float]:
        self.mark("done")
        return self.spent


async def bare_capture(browser: Browser, url: str, out: Path) -> float:
    """The bare script; returns its seconds from the start until the load event."""
    start = time.perf_counter()
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = await context.new_page()
        await page.goto(url, wait_until="load")
        loaded = time.perf_counter() - start
        await page.screenshot(path=str(out), full_page=True)
    finally:
        await context.close()
    return loaded


async def timed(fn: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    start = time.perf_counter()
    result = await fn()
    return time.perf_counter() - start, result


async def bench(args: argparse.Namespace, work: Path) -> None:
    info: BrowserInfo = probe_version(find_browser())
    settings = SealSettings(key=work / "bench-key.pem", key_is_default=True, no_timestamp=True)
    sealing = Sealing(signer=load_signer(settings, create=True), settings=settings, actor_name="benchmark")
    bundles = args.keep or work / "bundles"
    bundles.mkdir(parents=True, exist_ok=True)
    bare_times: list[float] = []
    bare_loads: list[float] = []
    evicap_times: list[float] = []
    statuses: list[str] = []
    phases: dict[str, list[float]] = {}
    peak = PeakRss()

    with DemoServer() as demo:
        url = demo.url("/")
        async with launch(info) as browser:
            n = 0

            async def one_evicap() -> object:
                nonlocal n
                n += 1
                options = CaptureOptions(
                    item=f"bench-{n}", investigator="benchmark", timeout=60.0, profile=args.profile
                )
                clock = PhaseClock()
                staged = await capture_url(
                    browser, url, options, bundles, browser_info=info, sealing=sealing, progress=clock.mark
                )
                result = await acquire(staged, sealing, clock.mark)
                for name, seconds in clock.finish().items():
                    phases.setdefault(name, []).append(seconds)
                return result

            for _ in range(args.warmup):
                await bare_capture(browser, url, work / "warmup.png")
                await one_evicap()
            with peak.measuring():
                for i in range(args.runs):
                    # Alternate which goes first so neither always meets a warmer browser.
                    order = ("bare", "evicap") if i % 2 == 0 else ("evicap", "bare")
                    for kind in order:
                        if kind == "bare":
                            seconds, loaded = await timed(lambda: bare_capture(browser, url, work / "bare.png"))
                            bare_times.append(seconds)
                            assert isinstance(loaded, float)
                            bare_loads.append(loaded)
                        else:
                            seconds, result = await timed(one_evicap)
                            evicap_times.append(seconds)
                            statuses.append(str(getattr(result, "status", "?")))
            last_bundle = Path(str(getattr(result, "bundle", "") or ""))

    bare, ours = statistics.median(bare_times), statistics.median(evicap_times)
    bundle_size = sum(f.stat().st_size for f in last_bundle.rglob("*") if f.is_file()) if last_bundle.name else 0
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"browser            {info.version} ({info.path})")
    print(f"page               {url} (demo feed)")
    print(f"runs               {args.runs} each, after {args.warmup} warm-up; evicap profile {args.profile}")
    print(f"bare playwright    median {bare:6.2f} s   runs {' '.join(f'{t:.2f}' for t in bare_times)}")
    print(f"evicap capture     median {ours:6.2f} s   runs {' '.join(f'{t:.2f}' for t in evicap_times)}")
    print(f"ratio              {ours / bare:6.2f} x (issue 15 target <= 1.3; issue 2 asked 1.5)")
    # No capture that waits for late requests can end sooner than the bare script's own load plus the quiet
    # window (recorder.QUIET_WINDOW, which the late-request tests pin), even with every snapshot taken inside it.
    loaded = statistics.median(bare_loads)
    floor = loaded + QUIET_WINDOW
    print(f"floor              {floor:6.2f} s = {floor / bare:.2f} x: the bare script until load "
          f"({loaded:.2f} s) + the {QUIET_WINDOW:g} s quiet window, nothing taken or written")
    print(f"capture statuses   {', '.join(statuses)}")
    print("evicap phases      median seconds from each progress message to the next:")
    for name, times in phases.items():
        print(f"  {name[:40]:<40} {statistics.median(times):6.2f} s")
    print(f"bundle size        {bundle_size / MB:6.2f} MB ({last_bundle})")
    print(
        f"peak RSS python    {peak.python / MB:6.1f} MB sampled during the runs (ru_maxrss {maxrss_kb / 1024:.1f} MB)"
    )
    print(f"peak RSS browser   {peak.browser / MB:6.1f} MB (all Chromium processes together)")
    print(f"peak RSS driver    {peak.driver / MB:6.1f} MB (Playwright's node driver)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="captures of each kind (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed captures of each kind first (default 1)")
    parser.add_argument("--keep", type=Path, help="write evicap's bundles here and keep them")
    parser.add_argument("--profile", default="as-loaded", help="evicap site profile (default as-loaded)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="evicap-bench-") as tmp:
        asyncio.run(bench(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
