"""What reading identifiers back from the WARC adds to a capture: time and memory over a media-heavy WARC.

    .venv/bin/python benchmarks/bench_identifiers.py [--media-mib 256] [--pages 200]

Writes a gzip-per-record WARC with warcio (independent writer): ``--pages`` HTML/JSON responses shaped like the
platform fixtures and one video response of ``--media-mib`` random bytes, then runs
``evicap.profiles.identifiers.from_warc`` over it three times and prints the best wall time, the throughput over
the compressed file, and the peak RSS of a fresh process that reads it (against one that does not). Media
bodies are skipped (inflated and dropped in 1 MiB reads, never held), so memory should stay flat whatever the
media size. Then the same with the member list a capture's writer keeps (bundle/warcmembers.py; found here by one
untimed pass): only response records are opened and the video's body is not inflated.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from evicap.bundle.warcmembers import Member
from evicap.profiles.identifiers import from_warc

PAGE = (b'<html><head><link rel="canonical" href="https://x.com/user%d/status/17650000000000%05d"></head><body>'
        b'<article data-testid="tweet"><a href="/user%d/status/17650000000000%05d"><time>t</time></a></article>'
        + b"<p>filler text for a realistic page size</p>" * 400 + b"</body></html>")
JSON = b'{"data":{"user":{"result":{"rest_id":"14470000000%05d","legacy":{"screen_name":"user%d"}}}}}'


CHILD = """
import resource, sys
from pathlib import Path
from evicap.profiles.identifiers import from_warc
if len(sys.argv) > 1:
    from_warc(Path(sys.argv[1]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def build(path: Path, pages: int, media_mib: int) -> None:
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)

        def response(url: str, content_type: str, body: io.BufferedIOBase | io.BytesIO) -> None:
            http = StatusAndHeaders("200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=body, http_headers=http))

        for n in range(pages):
            response(f"https://x.com/user{n}", "text/html; charset=utf-8", io.BytesIO(PAGE % (n, n, n, n)))
            response(f"https://x.com/i/api/graphql/q/UserByScreenName?{n}", "application/json",
                     io.BytesIO(JSON % (n, n)))
        media = path.with_suffix(".media")
        with media.open("wb") as handle:
            for _ in range(media_mib):
                handle.write(os.urandom(1 << 20))
        with media.open("rb") as body:
            response("https://video.example/clip.mp4", "video/mp4", body)  # type: ignore[arg-type]
        media.unlink()


def members_of(path: Path) -> list[Member]:
    """Each gzip member's offset, length and WARC-Type, found by inflating the file once (what our writer lists)."""
    data, members, offset = path.read_bytes(), [], 0
    while offset < len(data):
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        head = inflater.decompress(data[offset:], 4096)
        while not inflater.eof:
            inflater.decompress(inflater.unconsumed_tail or inflater.unused_data, 1 << 20)
        length = len(data) - offset - len(inflater.unused_data)
        warc_type = head.split(b"WARC-Type: ", 1)[1].split(b"\r\n", 1)[0].decode()
        members.append(Member(offset, length, warc_type))
        offset += length
    return members


def best_of_three(read: Callable[[], list[Any]]) -> tuple[float, list[Any]]:
    times, found = [], []
    for _ in range(3):
        start = time.perf_counter()
        found = read()
        times.append(time.perf_counter() - start)
    return min(times), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media-mib", type=int, default=256)
    parser.add_argument("--pages", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        warc = Path(tmp) / "capture.warc.gz"
        build(warc, args.pages, args.media_mib)
        size = warc.stat().st_size
        best, found = best_of_three(lambda: from_warc(warc))
        child = subprocess.run([sys.executable, "-c", CHILD, str(warc)], capture_output=True, text=True, check=True)
        baseline = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
        peak, base = int(child.stdout.split()[-1]), int(baseline.stdout.split()[-1])
        members = members_of(warc)  # after the children: Linux keeps a parent's peak RSS across exec
        listed, found_listed = best_of_three(lambda: from_warc(warc, members=members))
        assert found_listed == found
    print(f"WARC: {size / 2**20:.1f} MiB ({args.pages * 2} text responses + {args.media_mib} MiB video)")
    print(f"identifiers found: {len(found)}")
    print(f"from_warc best of 3: {best:.2f} s ({size / 2**20 / best:.0f} MiB/s of compressed WARC)")
    print(f"with the writer's member list: {listed:.2f} s (the same {len(found_listed)} identifiers)")
    print(f"peak RSS of a process reading it: {peak / 1024:.1f} MiB "
          f"(the same process without reading: {base / 1024:.1f} MiB)")


if __name__ == "__main__":
    main()
