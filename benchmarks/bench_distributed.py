"""Distributed batch throughput: pages/min with one and with two `evicap worker` processes on this machine, against
a local batch at the same concurrency, and what that predicts for N machines.

Runs a real redis-server on 127.0.0.1 (tests/brokers.py), real workers (each --concurrency 2, started and ready
before the clock starts) and the real `evicap batch --broker` (subprocess), on the simple pages of
bench_batch.py. The three set-ups are alternated round by round (machine load changes between them), and the
median of the rounds is printed.

The model for N machines, each running one worker like the one measured:

    rate(N) ~= min(N x r1, R_coordinator, R_broker, R_fs)

r1 is one worker's rate measured here (alone on the machine); the ceilings come from what one target costs the
shared parts, measured in the same runs: the coordinator's marginal CPU seconds per target (one process: its
scheduler, index writes, result polling; start-up and sealing the index left out) and redis-server's CPU seconds
per target; the shared file system's ceiling is its write bandwidth over the mean bundle size printed here (not
measurable on one machine; e.g. 100 MB/s NFS).
On this 2-core machine two workers share the same two cores, so "two workers" shows the broker path's overhead,
not scaling.

    .venv/bin/python benchmarks/bench_distributed.py [--pages 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_batch import Site  # noqa: E402  (benchmarks/ is the script's directory)
from tests.brokers import EVICAP, RedisServer, Worker  # noqa: E402

CONCURRENCY = 2  # per worker, and the local batch's


def bundle_sizes(out: Path) -> list[int]:
    sizes = []
    for bundle in out.iterdir():
        if bundle.is_dir() and not bundle.name.startswith(".") and (bundle / "manifest.json").is_file():
            sizes.append(sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file()))
    return sizes


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def run_batch(base: str, pages: int, work: Path, label: str, broker: str | None,
              redis_pid: int | None) -> dict[str, float]:
    targets = work / f"targets-{label}.txt"
    targets.write_text("".join(f"{base}/post/{n}\n" for n in range(pages)), encoding="utf-8")
    out = work / f"case-{label}"
    shutil.rmtree(out, ignore_errors=True)
    args = [EVICAP, "batch", str(targets), "-o", str(out), "--case", "BENCH", "--no-timestamp", "--no-report",
            "--per-host", "64", "--json"]
    args += ["--broker", broker] if broker else ["--concurrency", str(CONCURRENCY)]
    redis = psutil.Process(redis_pid) if redis_pid else None
    redis_before = cpu_seconds(redis) if redis else 0.0
    env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config")}
    started = time.monotonic()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watched = psutil.Process(proc.pid)
    # The coordinator's own CPU (its process only: for --broker it starts no browser) at each finished target:
    # the marginal cost per target is the slope between the first and the last, start-up and sealing left out.
    marks: list[float] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(b'{"item"'):
            try:
                marks.append(cpu_seconds(watched))
            except psutil.Error:
                pass
    proc.wait()
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        tail = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        raise SystemExit(f"{label} batch exited {proc.returncode}:\n{tail}")
    sizes = bundle_sizes(out)
    if len(sizes) != pages:
        raise SystemExit(f"{label}: {len(sizes)} bundles for {pages} pages")
    return {
        "seconds": elapsed,
        "rate": pages * 60 / elapsed,
        "coordinator_cpu": (marks[-1] - marks[0]) / max(1, len(marks) - 1) if len(marks) > 1 else 0.0,
        "redis_cpu": (cpu_seconds(redis) - redis_before) / pages if redis else 0.0,
        "bundle_mb": statistics.mean(sizes) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    work = Path(tempfile.mkdtemp(prefix="evicap-bench-dist-"))
    results: dict[str, list[dict[str, float]]] = {"local": [], "1 worker": [], "2 workers": []}
    try:
        with RedisServer(work / "redis") as redis:
            assert redis.proc is not None
            print(f"{options.pages} simple pages from {base}, {os.cpu_count()} cores, concurrency {CONCURRENCY} "
                  f"per worker, signed, no timestamp; {options.rounds} round(s), set-ups alternated")
            for round_no in range(options.rounds):
                for label in results:
                    print(f"  round {round_no + 1}: {label} (load {os.getloadavg()[0]:.2f})", flush=True)
                    if label == "local":
                        results[label].append(run_batch(base, options.pages, work, label, None, None))
                        continue
                    workers = [
                        Worker(redis.url, work / f"cfg-w{n}", work / f"w{n}-{round_no}.log", name=f"w{n}",
                               concurrency=CONCURRENCY)
                        for n in range(1 if label == "1 worker" else 2)
                    ]
                    try:
                        for worker in workers:
                            worker.wait_ready()
                        results[label].append(run_batch(base, options.pages, work, label.replace(" ", "-"),
                                                         redis.url, redis.proc.pid))
                    finally:
                        for worker in workers:
                            worker.stop()
    finally:
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    def median(label: str, key: str) -> float:
        return statistics.median(r[key] for r in results[label])

    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"{'set-up':>10} {'seconds':>8} {'pages/min':>10} {'coord CPU s/target':>19} {'redis CPU s/target':>19}")
    for label in results:
        print(f"{label:>10} {median(label, 'seconds'):>8.1f} {median(label, 'rate'):>10.1f} "
              f"{median(label, 'coordinator_cpu'):>19.4f} {median(label, 'redis_cpu'):>19.4f}")
    r1 = median("1 worker", "rate")
    coordinator = max(median("1 worker", "coordinator_cpu"), median("2 workers", "coordinator_cpu"))
    broker = max(median("1 worker", "redis_cpu"), median("2 workers", "redis_cpu"), 1e-6)
    bundle_mb = median("1 worker", "bundle_mb")
    r_coord, r_broker, r_fs = 60 / coordinator, 60 / broker, 100 * 60 / bundle_mb
    print(f"one worker vs local batch at the same concurrency: {r1 / median('local', 'rate'):.2f}x")
    print(f"model: rate(N) ~= min(N x {r1:.0f}, coordinator {r_coord:.0f}, broker {r_broker:.0f}, "
          f"shared FS {r_fs:.0f} at 100 MB/s for {bundle_mb:.2f} MB bundles) pages/min")
    ceiling = min(r_coord, r_broker, r_fs)
    for n in (1, 2, 4, 8, 16, 32, 64):
        print(f"  N={n:>2}: {min(n * r1, ceiling):>8.0f} pages/min")
    print(f"  linear until N ~= {ceiling / r1:.0f} machines, then bound by the "
          f"{'coordinator' if ceiling == r_coord else 'broker' if ceiling == r_broker else 'shared FS'}")


if __name__ == "__main__":
    main()
