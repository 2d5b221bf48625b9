"""A whole `evicap capture` process against a whole bare Playwright process. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_process.py [--runs 5] [--warmup 1] [--page /] [--no-report-only]

Serves the built-in demo site on 127.0.0.1, then alternates, ``--runs`` times each (the order rotates every run
so no side always meets a warmer page cache):
  (a) bare: ``python -c SCRIPT``: Playwright starts, launches the same Chromium, goto (until "load"), full-page
      PNG screenshot, exits;
  (b) ``evicap capture URL --profile as-loaded --no-timestamp --no-report``: WARC, all attachments, manifest,
      signature, custody log, published bundle;
  (c) the same with the default court report (HTML + PDF, printed by the capture's own browser).
``--also-src DIR`` adds (d): (b) again with another evicap source tree first on PYTHONPATH (an older commit's
``src``, from ``git archive COMMIT src | tar -x -C DIR``), so before and after are measured in the same rounds.
Each is timed from fork to exit. Prints the medians, the median of the per-round ratios (b/a, c/a; issue 15
target <= 1.5x, aim 1.2x) and the machine's load average (the machine may be shared: alternate, repeat).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evicap.capture.browser import find_browser
from evicap.demo.server import DemoServer

EVICAP = str(Path(sys.executable).with_name("evicap"))

BARE = """
import sys
from playwright.sync_api import sync_playwright
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=sys.argv[1])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(sys.argv[2], wait_until="load")
    page.screenshot(path=sys.argv[3], full_page=True)
    browser.close()
"""


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


CPU: dict[str, list[float]] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str], kind: str = "") -> float:
    """Wall seconds of one whole process; its CPU seconds (the whole tree it waited for) go into CPU[kind]."""
    start, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - start
    CPU.setdefault(kind, []).append(_children_cpu() - cpu)
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise SystemExit(f"{cmd[0]} {cmd[1]} exited {done.returncode}: {' | '.join(tail)}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--page", default="/", help="path on the demo site (default /, the feed)")
    parser.add_argument("--no-report-only", action="store_true", help="skip (c), the default path with the report")
    parser.add_argument("--also-src", type=Path, help="also run evicap --no-report from this source tree's src")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    browser = find_browser()
    # PYTHONDONTWRITEBYTECODE would make every run compile evicap's ~70 modules from source (an editable install
    # has no byte code until it is first imported; pip compiles an ordinary install's at install time).
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVICAP_") and k != "PYTHONDONTWRITEBYTECODE"}
    kinds = ["bare", "evicap --no-report"] + ([] if args.no_report_only else ["evicap (report)"])
    if args.also_src:
        kinds.append("other src --no-report")
    other_env = {**env, "PYTHONPATH": str(args.also_src.resolve())} if args.also_src else env
    times: dict[str, list[float]] = {k: [] for k in kinds}
    loads: list[str] = []
    with tempfile.TemporaryDirectory(prefix="evicap-bench-process-") as tmp, DemoServer() as demo:
        work = Path(tmp)
        os.chmod(work, 0o755)
        url = demo.url(args.page)
        key = work / "key.pem"
        env["HOME"] = str(work / "home")  # no config file of the user's; the signing key is given
        subprocess.run([EVICAP, "keys", "generate", "--out", str(key), "--unencrypted"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        n = 0

        def command(kind: str) -> list[str]:
            nonlocal n
            n += 1
            if kind == "bare":
                return [sys.executable, "-c", BARE, browser.path, url, str(work / f"bare-{n}.png")]
            out = work / f"out-{n}"
            cmd = [EVICAP, "capture", url, "--profile", "as-loaded", "--no-timestamp", "--key", str(key),
                   "--browser", browser.path, "-o", str(out), "--item", f"bench-{n}"]
            return cmd + (["--no-report"] if "no-report" in kind else [])

        def env_of(kind: str) -> dict[str, str]:
            return other_env if kind.startswith("other") else env

        for _ in range(args.warmup):
            for kind in kinds:
                timed(command(kind), env_of(kind))
        for i in range(args.runs):
            loads.append(load())
            order = kinds[i % len(kinds):] + kinds[: i % len(kinds)]
            for kind in order:
                times[kind].append(timed(command(kind), env_of(kind), kind))
            for leftover in work.glob("out-*"):
                shutil.rmtree(leftover, ignore_errors=True)
    bare = times["bare"]
    print(f"browser            {browser.path} ({browser.source})")
    print(f"page               {url}")
    print(f"runs               {args.runs} rounds after {args.warmup} warm-up; load at each round: {'; '.join(loads)}")
    for kind in kinds:
        runs = " ".join(f"{t:.2f}" for t in times[kind])
        cpu = statistics.median(CPU[kind])
        print(f"{kind:<22}median {statistics.median(times[kind]):6.2f} s, {cpu:5.2f} CPU-s   runs {runs}")
    for kind in kinds[1:]:
        ratio = statistics.median(t / b for t, b in zip(times[kind], bare, strict=True))
        print(f"ratio {kind:<22}{ratio:6.2f} x  (median of per-round ratios; target <= 1.5, aim 1.2)")
    print(f"load after         {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
