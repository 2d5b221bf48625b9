"""Capture a 256 MiB response through NetworkRecorder + WarcWriter and print memory and time figures.

Serves SIZE bytes of pseudo-random data (application/octet-stream, Content-Length set) from a local server in a
process of its own (so that its buffers are not counted as evicap's),
navigates a fresh context to it, and reports: wall time, the Python process's peak RSS and its growth over the
baseline, and whether the body stored in the WARC is whole (SHA-256 of the record payload == served body).

    .venv/bin/python benchmarks/bench_large_body.py [SIZE_MIB] [--cli]

``--cli`` instead runs the whole ``evicap capture URL --profile as-loaded --no-timestamp --no-report`` command
and samples, every 50 ms, the summed RSS of its Python process and Playwright's node driver: what a user's
capture of such a response holds (the Python process then also holds the capture's other libraries).
Both modes first print the floor: stock Playwright (no evicap at all, no flags of ours) in a process of its own, a
browser launched and one blank page open, Python + driver sampled for a second. No capture built on Playwright's
driver can hold less than that before a byte moves.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
from warcio.archiveiterator import ArchiveIterator

from evicap.capture.browser import find_browser, launch
from evicap.capture.options import CaptureOptions
from evicap.capture.recorder import NetworkRecorder
from evicap.capture.warc import WarcWriter

MIB = 1024 * 1024
BLOCK = hashlib.sha256(b"evicap").digest() * (MIB // 32)  # 1 MiB, repeated; cheap to generate and to check


class Handler(BaseHTTPRequestHandler):
    size = 0

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(self.size))
        self.end_headers()
        for _ in range(self.size // MIB):
            self.wfile.write(BLOCK)

    def log_message(self, format: str, *args: object) -> None:
        pass


def expected_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for _ in range(size // MIB):
        digest.update(BLOCK)
    return digest.hexdigest()


def driver_rss(process: psutil.Process) -> int:
    """Resident memory of Playwright's node driver (a child of this process)."""
    total = 0
    for child in process.children(recursive=True):
        try:
            if "node" in child.name():
                total += child.memory_info().rss
        except psutil.Error:
            continue
    return total


SUMMED: list[tuple[int, int]] = []  # (python, driver) sampled at the same moment


async def capture(url: str, out: Path, sample: list[int]) -> tuple[float, NetworkRecorder]:
    process = psutil.Process()
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            rss = process.memory_info().rss
            sample.append(rss)
            SUMMED.append((rss, driver_rss(process)))
            await asyncio.sleep(0.05)

    async with launch(find_browser()) as browser:
        context = await browser.new_context(accept_downloads=False)
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        sample.append(process.memory_info().rss)
        watcher = asyncio.create_task(watch())
        started = time.monotonic()
        warc = WarcWriter(out, {"software": "evicap benchmark"})
        recorder = NetworkRecorder(cdp, warc, out.parent / ".spool", CaptureOptions())
        await recorder.start()
        try:
            await page.goto(url, wait_until="commit", timeout=300_000)
        except Exception as exc:  # the page does not get a body this large; the recorder has it
            print(f"page: {str(exc).splitlines()[0]}")
        await recorder.drain(timeout=300)
        await warc.close()
        elapsed = time.monotonic() - started
        stop.set()
        await watcher
        await context.close()
    return elapsed, recorder


def stored_sha256(warc: Path, url: str) -> str | None:
    """SHA-256 of the payload of the response record for ``url`` in ``warc`` (the last one), None without one."""
    stored = None
    with open(warc, "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "response" and record.rec_headers.get_header("WARC-Target-URI") == url:
                digest = hashlib.sha256()
                content = record.content_stream()
                while block := content.read(MIB):
                    digest.update(block)
                stored = digest.hexdigest()
    return stored


def whole_command(url: str, work: Path) -> None:
    """The whole CLI capture of ``url``: peak of Python + driver RSS at one moment, and the stored body's digest."""
    evicap = str(Path(sys.executable).with_name("evicap"))
    env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config")}
    command = [evicap, "capture", url, "--profile", "as-loaded", "--no-timestamp", "--no-report",
               "-o", str(work / "out")]
    started = time.monotonic()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watched = psutil.Process(child.pid)
    peak = (0, 0)
    while child.poll() is None:
        try:
            python = watched.memory_info().rss
        except psutil.Error:
            break
        driver = driver_rss(watched)
        peak = max(peak, (python, driver), key=sum)
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    print(f"command:          {' '.join(command[1:3])} ... exit {child.returncode} in {elapsed:.1f} s")
    print(f"summed peak:      {sum(peak) / MIB:.0f} MiB = {sum(peak) / 1e6:.0f} MB of Python + Playwright's node "
          f"driver at one moment (Python {peak[0] / MIB:.0f}, driver {peak[1] / MIB:.0f} MiB)")
    stored = [stored_sha256(warc, url) for warc in (work / "out").glob("*/artifacts/capture.warc.gz")]
    whole = expected_sha256(Handler.size) in stored
    print(f"body whole:       {'yes' if whole else 'NO'} (sha256 of the stored payload)")


async def _stock_idle(seconds: float = 1.0) -> tuple[int, int]:
    """Peak (Python, driver) RSS of stock Playwright with a browser and one blank page open."""
    from playwright.async_api import async_playwright

    process = psutil.Process()
    peak = (0, 0)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=find_browser().path)
        page = await browser.new_page()
        await page.goto("about:blank")
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            peak = max(peak, (process.memory_info().rss, driver_rss(process)), key=sum)
            await asyncio.sleep(0.05)
        await browser.close()
    return peak


def stock_floor() -> None:
    """Print stock Playwright's idle Python + driver, measured in a fresh process (its peak RSS is not ours)."""
    result = subprocess.run([sys.executable, __file__, "--stock"], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        print(f"stock floor:      not measured: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
        return
    python, driver = (int(value) for value in result.stdout.split())
    print(f"stock floor:      {(python + driver) / MIB:.0f} MiB = {(python + driver) / 1e6:.0f} MB: stock Playwright, "
          f"browser and a blank page open, nothing captured (Python {python / MIB:.0f}, driver {driver / MIB:.0f} MiB)")


def serve(size: int) -> None:
    """The web server's own process (``--serve SIZE``): its threads and buffers are not evicap's memory."""
    Handler.size = size
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # until the benchmark closes the pipe


def start_server(size: int) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(size)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, f"http://127.0.0.1:{int(server.stdout.readline())}/big.bin"


def stop_server(server: subprocess.Popen[str]) -> None:
    assert server.stdin is not None
    server.stdin.close()
    server.wait(timeout=10)


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
        return
    if sys.argv[1:2] == ["--stock"]:
        print(*asyncio.run(_stock_idle()))
        return
    stock_floor()
    cli = "--cli" in sys.argv[1:]
    sizes = [a for a in sys.argv[1:] if a != "--cli"]
    size = int(sizes[0]) * MIB if sizes else 256 * MIB
    Handler.size = size
    server, url = start_server(size)
    if cli:
        with tempfile.TemporaryDirectory() as tmp:
            whole_command(url, Path(tmp))
        stop_server(server)
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "capture.warc.gz"
        samples: list[int] = []
        elapsed, recorder = asyncio.run(capture(url, out, samples))
        baseline, peak = samples[0], max(samples)
        whole = stored_sha256(out, url) == expected_sha256(size)
        print(f"body size:        {size / MIB:.0f} MiB")
        print(f"capture time:     {elapsed:.1f} s")
        print(f"RSS baseline:     {baseline / MIB:.0f} MiB")
        print(f"RSS peak:         {peak / MIB:.0f} MiB (growth {(peak - baseline) / MIB:.0f} MiB)")
        python, driver = max(SUMMED, key=sum) if SUMMED else (0, 0)
        print(f"summed peak:      {(python + driver) / MIB:.0f} MiB = {(python + driver) / 1e6:.0f} MB of Python + "
              f"Playwright's node driver at one moment (Python {python / MIB:.0f}, driver {driver / MIB:.0f} MiB; "
              "issue 15 target < 150 MB)")
        print(f"WARC size:        {out.stat().st_size / MIB:.1f} MiB")
        print(f"body whole:       {'yes' if whole else 'NO'} (sha256 of the stored payload)")
        for exchange in recorder.exchanges:
            print(f"exchange:         {exchange.url} {exchange.status} {exchange.outcome} {exchange.detail or ''}")
    stop_server(server)
    sys.exit(0 if whole else 1)


if __name__ == "__main__":
    main()
