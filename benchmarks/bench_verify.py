"""Time `evicap verify` against coreutils `sha256sum` over the same >= 1 GiB bundle, and measure verify's memory.

    .venv/bin/python benchmarks/bench_verify.py [--dir DIR] [--size-mib 1024] [--keep]

Builds (or reuses, with --dir and --keep) a sealed bundle shaped like a capture of a page with long videos: a WARC
written by evicap's own writer (gzip per record, SHA-256 block and payload digests) holding three large video
responses with random (incompressible) bodies and a tall screenshot as a resource record, plus that screenshot as
its own artifact. About 7/8 of the bytes are WARC: the hardest case for verify. Then runs sha256sum, `evicap
verify` and `evicap verify --deep` in --rounds interleaved rounds (a warm-up first: page cache cannot be dropped here)
and reports each one's fastest run: on a shared machine the other load only ever adds time, and interleaving gives
every command the same chances. Peak memory is each verify process's maximum RSS (wait4 rusage in a small
launcher). Targets: ratio >= 1.5, peak RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evicap.bundle import layout
from evicap.bundle.hashing import FileDigest, HashingWriter
from evicap.bundle.manifest import FORMAT_VERSION, utc_iso, write_checksums, write_manifest
from evicap.bundle.model import Artifact
from evicap.capture.warc import HttpMessage, WarcWriter
from evicap.seal.custody import Actor
from evicap.seal.keys import generate_key
from evicap.seal.sealer import SealSettings, seal_bundle

MIB = 1024 * 1024
URL = "http://bench.invalid/"
SCREENSHOT = f"{layout.ARTIFACTS_DIR}/screenshot-full.png"


def _zero_file(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        for _ in range(size // MIB):
            out.write(bytes(MIB))
        out.write(bytes(size % MIB))


def _random_file(path: Path, size: int) -> FileDigest:
    with HashingWriter(path) as out:
        left = size
        while left:
            n = min(left, 8 * MIB)
            out.write(os.urandom(n))
            left -= n
    assert out.digest is not None
    return out.digest


async def _warc(path: Path, work: Path, body_sizes: list[int], screenshot: Path, zeros: bool = False) -> FileDigest:
    writer = WarcWriter(path, {"software": "evicap bench_verify"})
    page = HttpMessage("HTTP/1.1 200 OK", [("Content-Type", "text/html")], b"<html><video src=v0></video></html>")
    await writer.write_exchange(URL, HttpMessage("GET / HTTP/1.1", [("Host", "bench.invalid")]), page)
    for index, size in enumerate(body_sizes):
        body = work / f"body-{index}.bin"
        if zeros:
            _zero_file(body, size)
        else:
            _random_file(body, size)
        request = HttpMessage(f"GET /v{index} HTTP/1.1", [("Host", "bench.invalid")])
        response = HttpMessage("HTTP/1.1 200 OK", [("Content-Type", "video/mp4"), ("Content-Length", str(size))],
                               body)
        await writer.write_exchange(f"{URL}v{index}", request, response)
        body.unlink()
    await writer.write_resource(f"urn:evicap:{SCREENSHOT}", "image/png", screenshot)
    return await writer.close()


def build(bundle: Path, total: int, compressible: int = 0) -> Path:
    """A sealed bundle of about ``total`` bytes; returns the signer's public key path. With ``compressible``, the WARC
    instead holds one response of that many zero bytes (a 256 MiB one gzips to about 256 KiB)."""
    (bundle / layout.ARTIFACTS_DIR).mkdir(parents=True)
    shot_size = total // 8
    shot = _random_file(bundle / SCREENSHOT, shot_size)
    sizes = [compressible] if compressible else [(total - 2 * shot_size) // 3] * 3
    warc = asyncio.run(_warc(bundle / layout.WARC, bundle, sizes, bundle / SCREENSHOT, zeros=bool(compressible)))
    dom = HashingWriter(bundle / layout.DOM)
    dom.write(b"<html><video src=v0></video></html>\n")
    artifacts = [Artifact(layout.WARC, "warc", "application/warc", warc),
                 Artifact(SCREENSHOT, "screenshot", "image/png", shot, f"urn:evicap:{SCREENSHOT}"),
                 Artifact(layout.DOM, "dom", "text/html", dom.close())]
    key_dir = bundle.parent / "keys"
    key_dir.mkdir(exist_ok=True)
    signer = generate_key(key_dir / f"bench-{os.getpid()}.pem", None)
    now = utc_iso(datetime.now(timezone.utc))
    manifest: dict[str, Any] = {
        "format": "evicap-bundle", "format_version": FORMAT_VERSION,
        "capture_id": "00000000-0000-4000-8000-000000000000",
        "case": dict.fromkeys(("case_id", "item_id", "investigator", "organization", "authority", "persona")),
        "target": {"requested_url": URL, "final_url": URL, "http_status": 200, "redirects": []},
        "capture": {"status": "complete", "started_at": now, "ended_at": now, "local_timezone": "UTC",
                    "utc_offset": "+00:00", "warnings": []},
        "environment": {"evicap_version": "bench", "python": sys.version.split()[0], "user_agent": "bench",
                        "browser": {"path": "none", "version": None, "source": "bench"},
                        "viewport": {"width": 1, "height": 1}, "os": sys.platform, "hostname": "bench",
                        "proxy": None, "options": {}},
        "artifacts": [a.to_json() for a in artifacts],
        "checksums": {"path": layout.CHECKSUMS, "sha256": write_checksums(bundle, artifacts).sha256},
        "seal": {"algorithm": "Ed25519", "signer_fingerprint": signer.fingerprint, "signature": layout.SIGNATURE,
                 "public_key": layout.SIGNER_KEY, "custody_log": layout.CUSTODY},
    }
    write_manifest(bundle, manifest)
    settings = SealSettings(key=key_dir / "k.pem", key_is_default=False, no_timestamp=True)
    seal_bundle(bundle, signer, settings, actor=Actor("bench", signer.fingerprint), acquired={"url": URL})
    pub = bundle.parent / "signer.pub.pem"
    pub.write_bytes(signer.public_pem)
    return pub


# Each measured command is started by this small launcher. A child forked from a big process inherits that process's
# peak RSS as its own (Linux keeps the old memory's high-water mark across exec, vfork or not), so wait4 from this
# benchmark, which holds hostile files of tens of MB, would report the benchmark's size, not verify's.
_LAUNCHER = (
    "import os, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "_pid, status, usage = os.wait4(proc.pid, 0)\n"
    "print(time.perf_counter() - start, os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024)\n"
)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """(seconds, exit code, peak RSS in bytes) of one child process."""
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def _tiny_records(count: int) -> bytes:
    record = b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Target-URI: urn:x\r\nContent-Length: 0\r\n\r\n\r\n\r\n"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join([*(compressor.compress(record * 10_000) for _ in range(count // 10_000)), compressor.flush()])


def _bomb(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(f"WARC/1.1\r\nWARC-Type: resource\r\nContent-Length: {size}\r\n\r\n".encode())]
    parts += [compressor.compress(bytes(MIB)) for _ in range(size // MIB)]
    return b"".join([*parts, compressor.compress(b"\r\n\r\n"), compressor.flush()])


HOSTILE: dict[str, Any] = {
    "sparse 4 GiB WARC": lambda b: os.truncate(b / layout.WARC, 4 * 1024**3),
    "64 MiB custody of {} lines": lambda b: (b / layout.CUSTODY).write_bytes(b"{}\n" * (64 * MIB // 3)),
    "4 MiB manifest (1M strings)": lambda b: (b / layout.MANIFEST).write_bytes(b'{"a": [' + b'"ab",' * (MIB - 2)
                                                                                + b'"z"]}'),
    "manifest nested 200k deep": lambda b: (b / layout.MANIFEST).write_bytes(b"[" * 200_000),
    "4 MiB SHA256SUMS of blank lines": lambda b: (b / layout.CHECKSUMS).write_bytes(b"\n" * (4 * MIB - 1)),
    "WARC of 1M tiny records": lambda b: (b / layout.WARC).write_bytes(_tiny_records(1_000_000)),
    "WARC gzip bomb (1 GiB inflated)": lambda b: (b / layout.WARC).write_bytes(_bomb(1024 * MIB)),
    "200,000 planted empty files": lambda b: _plant(b / "junk", 200_000),
}


def _plant(directory: Path, count: int) -> None:
    directory.mkdir()
    for number in range(count):
        (directory / f"f{number}").touch()


def hostile(work: Path, env: dict[str, str]) -> None:
    """The compressible 256 MiB bundle (must verify) and each hostile file (must fail): time, exit, peak RSS."""
    print("hostile and odd bundles (each: seconds, exit code, peak RSS):")
    bundle = work / "compressible" / "bundle"
    pub = build(bundle, 4 * MIB, compressible=256 * MIB)
    cmd = [sys.executable, "-c", "from evicap.cli.main import main; main()", "verify", str(bundle), "--json",
           "--trusted-key", str(pub)]
    for label, extra in (("256 MiB compressible response", []), ("  the same, --deep", ["--deep"])):
        elapsed, code, rss = timed([*cmd, *extra], env)
        print(f"  {label:<34}: {elapsed:7.2f} s  exit {code}  peak RSS {rss / 1e6:4.0f} MB  "
              f"(WARC {os.path.getsize(bundle / layout.WARC) / MIB:.2f} MiB)")
    pristine = work / "small" / "bundle"
    small_pub = build(pristine, 8 * MIB)
    for label, damage in HOSTILE.items():
        target = work / "hostile" / "bundle"
        shutil.rmtree(target.parent, ignore_errors=True)
        shutil.copytree(pristine, target)
        damage(target)
        elapsed, code, rss = timed([*cmd[:4], str(target), "--json", "--trusted-key", str(small_pub)], env)
        print(f"  {label:<34}: {elapsed:7.2f} s  exit {code}  peak RSS {rss / 1e6:4.0f} MB")
    shutil.rmtree(work / "hostile", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the bundle in --dir")
    parser.add_argument("--no-hostile", action="store_true", help="skip the hostile-bundle runs")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (default 3)")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-verify-"))
    bundle, pub = work / "bundle", work / "signer.pub.pem"
    try:
        if not (bundle / layout.MANIFEST).exists():
            t0 = time.perf_counter()
            pub = build(bundle, args.size_mib * MIB)
            print(f"built bundle in {time.perf_counter() - t0:.1f} s: {bundle}")
        files = sorted(str(p) for p in bundle.rglob("*") if p.is_file())
        total = sum(os.path.getsize(f) for f in files)
        env = {**os.environ, "XDG_CONFIG_HOME": str(work / "xdg")}
        verify_cmd = [sys.executable, "-c", "from evicap.cli.main import main; main()", "verify", str(bundle),
                      "--json", "--trusted-key", str(pub)]
        modes = {"sha256sum": ["sha256sum", *files], "evicap verify": verify_cmd,
                 "evicap verify --deep": [*verify_cmd, "--deep"]}
        timed(modes["sha256sum"])  # warm-up: the bundle into the page cache
        rounds = [{name: timed(cmd, env) for name, cmd in modes.items()} for _ in range(args.rounds)]
        best = {name: min((r[name] for r in rounds), key=lambda run: run[0]) for name in modes}
        slowest = {name: max(r[name][0] for r in rounds) for name in modes}
        check = subprocess.run(verify_cmd, env=env, capture_output=True, text=True)
        report = json.loads(check.stdout.splitlines()[0])
        warc_reason = next(c["reason"] for c in report["checks"] if c["name"] == "warc")
        mb = total / 1e6
        s_time = best["sha256sum"][0]
        print(f"bundle: {len(files)} files, {total / MIB:.0f} MiB "
              f"(WARC {os.path.getsize(bundle / layout.WARC) / MIB:.0f} MiB); verdict: {report['verdict']}")
        print(f"  warc check: {warc_reason}")
        print(f"best of {args.rounds} interleaved rounds (slowest run in brackets):")
        for name, (seconds, code, rss) in best.items():
            memory = "" if name == "sha256sum" else f", exit {code}, peak RSS {rss / 1e6:.0f} MB"
            print(f"{name:<22}: {seconds:7.2f} s  {mb / seconds:8.1f} MB/s   (slowest {slowest[name]:.2f} s{memory})")
        for name in ("evicap verify", "evicap verify --deep"):
            print(f"throughput ratio {name} / sha256sum: {s_time / best[name][0]:.2f}x   (target >= 1.5x)")
        peak = max(r[name][2] for r in rounds for name in modes if name != "sha256sum")
        print(f"verify peak RSS: {peak / 1e6:.0f} MB   (target < 200 MB)")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if not args.no_hostile:
            hostile(work, env)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
