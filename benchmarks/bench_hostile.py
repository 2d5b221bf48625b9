"""How long do hostile pages keep a capture, against their --timeout? Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_hostile.py [--no-load]

Serves four hostile pages on 127.0.0.1 and captures each once with ``capture_url``:
  - three videos that answer range requests but never the whole-file re-fetch  (--timeout 10; was 185 s)
  - a long-poll page whose requests never answer                               (--timeout 30; was 41 s)
  - a page that refreshes itself every 0 s                                     (--timeout 15)
  - a page whose script never yields                                           (--timeout 15)
The last two run while two busy loops (``sha256sum </dev/zero``) hold both cores (``--no-load`` skips them).
Each line: wall seconds, the --timeout, the bound (--timeout + session.SEAL_MARGIN), status, and whether the
screenshots exist.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import LocalServer

from evicap.capture.browser import find_browser, launch, probe_version
from evicap.capture.options import CaptureOptions
from evicap.capture.session import SEAL_MARGIN, capture_url
from evicap.capture.staged import Sealing, acquire
from evicap.seal.sealer import SealSettings, load_signer

VIDEO = bytes(range(256)) * 4096


def stalled_video(handler: BaseHTTPRequestHandler) -> None:
    wanted = handler.headers.get("Range")
    if not wanted:
        time.sleep(300)
        return
    start = int(wanted.split("=")[1].split("-")[0] or 0)
    piece = VIDEO[start : start + 65536]
    handler.send_response(206)
    handler.send_header("Content-Type", "video/mp4")
    handler.send_header("Content-Range", f"bytes {start}-{start + len(piece) - 1}/{len(VIDEO)}")
    handler.send_header("Content-Length", str(len(piece)))
    handler.end_headers()
    handler.wfile.write(piece)


def never(handler: BaseHTTPRequestHandler) -> None:
    time.sleep(300)


@contextmanager
def burners(on: bool) -> Any:
    procs = [subprocess.Popen("exec sha256sum </dev/zero", shell=True) for _ in range(2 if on else 0)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


async def bench(args: argparse.Namespace, work: Path) -> None:
    server = LocalServer()
    server.start()
    for n in (1, 2, 3):
        server.route_fn(f"/v{n}.mp4", stalled_video)
    server.route_fn("/poll", never)
    pages = [
        ("three stalled videos", server.route("/videos", "".join(
            f"<video src=/v{n}.mp4 preload=auto></video>" for n in (1, 2, 3))), 10.0, False),
        ("long-poll page", server.route(
            "/live", "<h1>live</h1><script>setInterval(() => fetch('/poll?' + Math.random()), 300)</script>"),
         30.0, False),
        ("0 s refresh loop, 2 burners", server.route(
            "/again", '<meta http-equiv="refresh" content="0"><h1>reloading</h1>'), 15.0, True),
        ("never-yielding script, 2 burners", server.route(
            "/busy", "<h1>busy</h1><script>setTimeout(() => { for (;;) {} }, 300)</script>"), 15.0, True),
    ]
    settings = SealSettings(key=work / "bench-key.pem", key_is_default=True, no_timestamp=True)
    sealing = Sealing(signer=load_signer(settings, create=True), settings=settings, actor_name="benchmark")
    info = probe_version(find_browser())
    print(f"browser            {info.version} ({info.path})")
    print(f"sealing margin     {SEAL_MARGIN:g} s after --timeout")
    try:
        async with launch(info) as browser:
            for name, url, timeout, load in pages:
                out = work / name.split()[0]
                out.mkdir()
                with burners(load and not args.no_load):
                    started = time.monotonic()
                    staged = await capture_url(browser, url, CaptureOptions(timeout=timeout), out,
                                               browser_info=info, sealing=sealing)
                    result = await acquire(staged, sealing)
                    took = time.monotonic() - started
                shots = result.bundle is not None and all(
                    (Path(result.bundle) / "artifacts" / f).is_file()
                    for f in ("screenshot-full.png", "screenshot-viewport.png"))
                print(f"{name:34} {took:6.1f} s  --timeout {timeout:4.0f} s  bound {timeout + SEAL_MARGIN:4.0f} s"
                      f"  {result.status:8} screenshots {'yes' if shots else 'NO'}")
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-load", action="store_true", help="skip the two CPU burners")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="evicap-hostile-") as tmp:
        asyncio.run(bench(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
