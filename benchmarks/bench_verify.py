"""Time `evicap verify` against coreutils `sha256sum` over the same >= 1 GiB bundle, and measure verify's memory.

    .venv/bin/python benchmarks/bench_verify.py [--dir DIR] [--size-mib 1024] [--keep]

Builds (or reuses, with --dir and --keep) a sealed bundle: two random "media" artifacts and a WARC whose big
responses carry random bodies (written by warcio, each record then stored as its own gzip member; random bytes do
not compress, so deflate level 0 gives the same on-disk size as any level and keeps the build fast). Then runs
sha256sum and `evicap verify` twice each and reports the warm (second) runs: page cache cannot be dropped here.
Peak memory is the verify process's maximum RSS (wait4 rusage). Targets: ratio >= 1.5, peak RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import io
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

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from evicap.bundle import layout
from evicap.bundle.hashing import digest_file
from evicap.bundle.manifest import utc_iso, write_checksums, write_manifest
from evicap.bundle.model import Artifact
from evicap.seal.custody import Actor
from evicap.seal.keys import generate_key
from evicap.seal.sealer import SealSettings, seal_bundle

MIB = 1024 * 1024
URL = "http://bench.invalid/"


def _random_file(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        left = size
        while left:
            n = min(left, 8 * MIB)
            out.write(os.urandom(n))
            left -= n


def _store_member(out: Any, plain: Path) -> None:
    """Append the file as one gzip member (deflate 'stored' blocks), streamed."""
    compressor = zlib.compressobj(0, zlib.DEFLATED, 31)
    with open(plain, "rb") as src:
        while block := src.read(8 * MIB):
            out.write(compressor.compress(block))
    out.write(compressor.flush())


def _warc(path: Path, work: Path, body_sizes: list[int]) -> None:
    with open(path, "wb") as out:
        for index, size in enumerate([-1, *body_sizes]):
            plain = work / "record.warc"
            with open(plain, "wb") as rec:
                writer = WARCWriter(rec, gzip=False, warc_version="WARC/1.1")
                if size < 0:
                    writer.write_record(writer.create_warcinfo_record(path.name, {"software": "bench"}))
                else:
                    body = work / "body.bin"
                    _random_file(body, size)
                    http = StatusAndHeaders("200 OK", [("Content-Type", "video/mp4"),
                                                       ("Content-Length", str(size))], protocol="HTTP/1.1")
                    with open(body, "rb") as payload:
                        writer.write_record(writer.create_warc_record(
                            f"{URL}media/{index}", "response", payload=payload, http_headers=http, length=size))
                    body.unlink()
            _store_member(out, plain)
            plain.unlink()
        # the page itself, so the manifest's requested URL has its response record
        plain = work / "record.warc"
        with open(plain, "wb") as rec:
            writer = WARCWriter(rec, gzip=False, warc_version="WARC/1.1")
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(URL, "response", payload=io.BytesIO(b"<html>bench</html>"),
                                                          http_headers=http))
        _store_member(out, plain)
        plain.unlink()


def build(bundle: Path, total: int) -> Path:
    """A sealed bundle of about ``total`` bytes; returns the signer's public key path."""
    art = bundle / layout.ARTIFACTS_DIR
    art.mkdir(parents=True)
    media = total // 4
    warc_bodies = [total // 8] * 4
    _random_file(art / "media-1.bin", media)
    _random_file(art / "media-2.bin", media)
    (bundle / layout.DOM).write_text("<html>bench</html>\n")
    _warc(bundle / layout.WARC, bundle, warc_bodies)
    roles = [(layout.WARC, "warc", "application/warc"), (f"{layout.ARTIFACTS_DIR}/media-1.bin", "media", "video/mp4"),
             (f"{layout.ARTIFACTS_DIR}/media-2.bin", "media", "video/mp4"), (layout.DOM, "dom", "text/html")]
    artifacts = [Artifact(rel, role, media_type, digest_file(bundle / rel)) for rel, role, media_type in roles]
    key_dir = bundle.parent / "keys"
    key_dir.mkdir(exist_ok=True)
    signer = generate_key(key_dir / f"bench-{os.getpid()}.pem", None)
    now = utc_iso(datetime.now(timezone.utc))
    manifest: dict[str, Any] = {
        "format": "evicap-bundle", "format_version": "1.0", "capture_id": "00000000-0000-4000-8000-000000000000",
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


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """(seconds, exit code, peak RSS in bytes) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if proc.stderr:
        proc.stderr.close()
    return elapsed, os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the bundle in --dir")
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
        sums = [timed(["sha256sum", *files]) for _ in range(2)]
        runs = [timed(verify_cmd, env) for _ in range(2)]
        check = subprocess.run(verify_cmd, env=env, capture_output=True, text=True)
        report = json.loads(check.stdout.splitlines()[0])
        mb = total / 1e6
        s_time, v_time = sums[-1][0], runs[-1][0]
        print(f"bundle: {len(files)} files, {total / MIB:.0f} MiB; verify verdict: {report['verdict']}")
        print(f"sha256sum      : {s_time:7.2f} s  {mb / s_time:8.1f} MB/s   (cold run {sums[0][0]:.2f} s)")
        print(f"evicap verify  : {v_time:7.2f} s  {mb / v_time:8.1f} MB/s   (cold run {runs[0][0]:.2f} s, "
              f"exit {runs[-1][1]})")
        print(f"throughput ratio verify / sha256sum: {s_time / v_time:.2f}x   (target >= 1.5x)")
        print(f"verify peak RSS: {max(r[2] for r in runs) / 1e6:.0f} MB   (target < 200 MB)")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
