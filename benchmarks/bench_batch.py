"""Batch throughput and memory: 100 pages from a local site at concurrency 1, 2 and 4.

Runs the real `evicap batch` command (subprocess, its own browser, every attachment, signature and custody log;
add --tsa to also timestamp each bundle and the index against a local RFC 3161 authority from tests/tsa.py) and
prints, for each concurrency, pages per minute over the whole run (browser start included) and the peak resident
memory of the whole process tree (Python, Playwright driver, Chromium and its renderers), sampled every 0.5 s:
summed RSS (counts pages the Chromium processes share once per process) and summed PSS (the fairer figure).

    .venv/bin/python benchmarks/bench_batch.py [--pages 100] [--concurrency 1 2 4] [--tsa] [--site simple|demo]
        [--default]

``--site demo`` captures pages of the built-in demo site instead (the feed with its images and lazy-loaded
posts, post permalinks, profiles; the URLs are made distinct with a query string, which the site ignores), with the
site profile batch picks by default (``auto``: the generic profile scrolls the feed, clicks "See more" and waits).
``--default`` also runs `evicap batch` without ``--concurrency``: the default it chooses on this machine
(evicap.batch.capacity, docs/batch.md).

Target on a 2-core machine: >= 60 pages/minute; memory should grow with concurrency, not with the page count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

from evicap.batch.capacity import default_concurrency

ROOT = Path(__file__).resolve().parent.parent
EVICAP = str(Path(sys.executable).with_name("evicap"))

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Post {n}</title>
<link rel="stylesheet" href="/style.css"></head><body><article><h1>Post {n}</h1>
<p>{text}</p><img src="/pic.svg" alt="picture" width="200" height="120"><p><a href="/post/{next}">next</a></p>
</article></body></html>"""
CSS = b"body{font-family:sans-serif;margin:2em} article{max-width:40em} h1{color:#234}"
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="120">'
    b'<rect width="200" height="120" fill="#8ac"/></svg>'
)


class Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/style.css":
            body, kind = CSS, "text/css"
        elif self.path == "/pic.svg":
            body, kind = SVG, "image/svg+xml"
        elif self.path.startswith("/post/"):
            n = int(self.path.rsplit("/", 1)[1] or 0)
            text = " ".join(f"Sentence {i} of post {n}, with ordinary words." for i in range(40))
            body, kind = PAGE.format(n=n, next=n + 1, text=text).encode(), "text/html; charset=utf-8"
        else:
            body, kind = b"not found", "text/plain"
        self.send_response(200 if kind != "text/plain" else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def tree_memory(proc: psutil.Process) -> tuple[int, int]:
    """Summed RSS (overcounts pages Chromium's processes share) and summed PSS (shared pages split fairly)."""
    rss = pss = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            info = p.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


DEMO_PATHS = ["/", *(f"/p/{n}" for n in range(101, 115)), "/u/juniper_vale", "/u/larkfield_library",
              "/u/priya_fernhill", "/u/tomas_brightwater"]


def target_urls(base: str, site: str, pages: int) -> list[str]:
    if site == "demo":
        return [f"{base}{DEMO_PATHS[n % len(DEMO_PATHS)]}?n={n}" for n in range(pages)]
    return [f"{base}/post/{n}" for n in range(pages)]


def run_once(base: str, pages: int, concurrency: int | None, work: Path, tsa_args: list[str],
             site: str = "simple") -> tuple[float, int, int, int]:
    label = concurrency or "default"
    targets = work / f"targets-{label}.txt"
    targets.write_text("".join(f"{url}\n" for url in target_urls(base, site, pages)), encoding="utf-8")
    out = work / f"case-{label}"
    env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config")}
    args = [
        EVICAP,
        "batch",
        str(targets),
        "-o",
        str(out),
        "--case",
        "BENCH",
        *(["--concurrency", str(concurrency), "--per-host", str(concurrency)] if concurrency else []),
        *(tsa_args or ["--no-timestamp"]),
    ]
    started = time.monotonic()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watched = psutil.Process(proc.pid)
    peak_rss = peak_pss = 0
    while proc.poll() is None:
        rss, pss = tree_memory(watched)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        tail = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        raise SystemExit(f"batch at concurrency {concurrency} exited {proc.returncode}:\n{tail}")
    complete = sum(1 for p in out.iterdir() if (p / "manifest.json").is_file())
    return elapsed, peak_rss, peak_pss, complete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--tsa", action="store_true", help="timestamp against a local TSA (tests/tsa.py)")
    parser.add_argument("--site", choices=("simple", "demo"), default="simple", help="which pages (default simple)")
    parser.add_argument("--default", action="store_true", help="also run at batch's default concurrency")
    options = parser.parse_args()

    if options.site == "demo":
        from evicap.demo.server import DemoServer

        demo = DemoServer().start()
        base = demo.origin
        stop_site = demo.stop
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        stop_site = server.shutdown
    work = Path(tempfile.mkdtemp(prefix="evicap-bench-batch-"))
    tsa = None
    tsa_args: list[str] = []
    if options.tsa:
        sys.path.insert(0, str(ROOT))
        from tests.tsa import LocalTSA

        tsa = LocalTSA(work / "tsa").start()
        tsa_args = ["--tsa", tsa.url(), "--tsa-ca", str(tsa.ca_pem)]
    try:
        print(
            f"{options.pages} pages from {base}, {os.cpu_count()} cores, sealing: signature + custody"
            + (" + RFC 3161 timestamp" if tsa else " (no timestamp)")
        )
        print(f"load average before: {os.getloadavg()[0]:.1f}")
        print(
            f"{'concurrency':>11} {'seconds':>8} {'pages/min':>10} {'peak RSS MB':>12} {'peak PSS MB':>12} "
            f"{'bundles':>8}"
        )
        levels: list[int | None] = [*options.concurrency, *([None] if options.default else [])]
        for concurrency in levels:
            elapsed, rss, pss, complete = run_once(base, options.pages, concurrency, work, tsa_args, options.site)
            rate = complete * 60 / elapsed
            label = str(concurrency) if concurrency else f"default {default_concurrency()}"
            print(
                f"{label:>11} {elapsed:>8.1f} {rate:>10.1f} {rss / 2**20:>12.0f} {pss / 2**20:>12.0f} "
                f"{complete:>8}",
                flush=True,
            )
    finally:
        if tsa is not None:
            tsa.stop()
        stop_site()
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
