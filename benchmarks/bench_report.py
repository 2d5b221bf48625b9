"""What does a court report cost? Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_report.py [--runs 3] [--bundles 100]

1. One exhibit's report (HTML + PDF, English) of a capture of the built-in demo site (a 6,000 px tall feed):
   wall time, and the peak resident memory of this Python process and of the whole process tree (Chromium
   and Playwright's driver included), sampled every 20 ms.
2. A case report of ``--bundles`` bundles (copies of that capture in a case directory with a case index):
   verification of every bundle plus the HTML and PDF with one thumbnail per target.
3. What the default report adds to ``evicap capture``: the CLI run ``--runs`` times with and without
   ``--no-report`` against the demo site (throwaway key, no time-stamp authority), median wall times.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from evicap.demo.server import DemoServer
from evicap.report import ReportRequest, write_reports

MB = 1024 * 1024
EVICAP = str(Path(sys.executable).with_name("evicap"))


class Peak:
    """Peak RSS of this process and of this process plus all its descendants."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.python = 0
        self.tree = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                mine = self.me.memory_info().rss
                total = mine + sum(c.memory_info().rss for c in self.me.children(recursive=True))
            except psutil.Error:
                continue
            self.python, self.tree = max(self.python, mine), max(self.tree, total)
            time.sleep(0.02)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(fn: Callable[[], object]) -> tuple[float, Peak]:
    with Peak() as peak:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
    return elapsed, peak


def capture(url: str, out: Path, env: dict[str, str], *extra: str) -> float:
    start = time.perf_counter()
    subprocess.run([EVICAP, "capture", url, "-o", str(out), "--case", "BENCH", "--no-timestamp", *extra],
                   env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def case_dir(bundle: Path, directory: Path, count: int) -> Path:
    sha = hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
    targets = []
    for n in range(count):
        name = f"T{n:04d}_{bundle.name}"
        shutil.copytree(bundle, directory / name, ignore=shutil.ignore_patterns("reports"))
        targets.append({"item": f"T{n:04d}", "url": "http://127.0.0.1/", "line": n + 2, "status": "complete",
                        "reason": None, "attempts": 1, "bundle": name, "manifest_sha256": sha, "http_status": 200,
                        "started_at": "2026-12-01T20:00:00Z", "ended_at": "2026-12-01T20:00:05Z"})
    index = {"format": "evicap-case-index", "format_version": "1.0", "case_id": "BENCH", "state": "finished",
             "targets": targets, "problems": [], "runs": []}
    (directory / "case-index.json").write_text(json.dumps(index, indent=2))
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bundles", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp / "config"), "EVICAP_KEY_PASSPHRASE": ""}
        os.environ["XDG_CONFIG_HOME"] = env["XDG_CONFIG_HOME"]
        with DemoServer() as server:
            url = server.url("/")
            capture(url, tmp / "warm", env, "--no-report")  # creates the key, warms caches
            with_report, without = [], []
            for run in range(args.runs):
                without.append(capture(url, tmp / f"plain-{run}", env, "--no-report"))
                with_report.append(capture(url, tmp / f"rep-{run}", env))
        (bundle,) = [p for p in (tmp / "plain-0").iterdir() if p.is_dir()]
        shot = json.loads((bundle / "artifacts/page-facts.json").read_text())["screenshot"]
        print(f"bundle: {bundle.name} (full-page screenshot {shot['png_width']}x{shot['png_height']} px)")

        exhibit: list[float] = []
        peaks: list[Peak] = []
        for _ in range(args.runs):
            elapsed, peak = timed(lambda: write_reports(ReportRequest([bundle], langs=("en",))))
            exhibit.append(elapsed)
            peaks.append(peak)
        pdf = bundle / "reports/report.en.pdf"
        print(f"one exhibit report (HTML+PDF, en): median {statistics.median(exhibit):.2f} s over {args.runs} runs; "
              f"PDF {pdf.stat().st_size / MB:.1f} MB; peak RSS python {max(p.python for p in peaks) / MB:.0f} MB, "
              f"with Chromium and driver {max(p.tree for p in peaks) / MB:.0f} MB")

        case = case_dir(bundle, tmp / "case", args.bundles)
        elapsed, peak = timed(lambda: write_reports(ReportRequest([case], langs=("en",))))
        case_pdf = case / "reports/case-report.en.pdf"
        print(f"case report of {args.bundles} bundles (verify all + HTML + PDF): {elapsed:.2f} s; "
              f"PDF {case_pdf.stat().st_size / MB:.1f} MB; peak RSS python {peak.python / MB:.0f} MB, "
              f"with Chromium and driver {peak.tree / MB:.0f} MB")

        plain, reported = statistics.median(without), statistics.median(with_report)
        print(f"evicap capture of the demo site: median {plain:.2f} s with --no-report, {reported:.2f} s with the "
              f"default report: +{reported - plain:.2f} s ({(reported - plain) / plain * 100:.0f}%)")


if __name__ == "__main__":
    main()
