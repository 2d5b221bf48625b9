"""How fast does the secret scrubber go over record bodies? Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_scrub.py [--mib 64] [--secrets 20]

Streams ``--mib`` MiB of HTML-like text (with a few secrets planted) through ``Scrubber.scrub_chunks`` in 4 MiB
chunks, as the WARC writer does, with and without token fields, and prints MiB/s next to a plain SHA-256 of the
same bytes (what the writer spends anyway on digests).
"""

from __future__ import annotations

import argparse
import hashlib
import time

from evicap.capture.secrets import Scrubber, SecretSet

CHUNK = 4 * 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--secrets", type=int, default=20)
    args = parser.parse_args()
    secrets = SecretSet()
    for i in range(args.secrets):
        secrets.add(f"cookie c{i}", f"secretvalue{i:04d}-x9y8z7w6")
    filler = (b'<div class="post"><a href="/p?id=12345&amp;ref=feed">a post</a> lorem ipsum dolor sit amet</div>\n'
              * 4096)
    data = bytearray()
    while len(data) < args.mib * 1024 * 1024:
        data += filler + b"secretvalue0003-x9y8z7w6 fb_dtsg=AQHabcdef123456&x=1\n"
    chunks = [bytes(data[i:i + CHUNK]) for i in range(0, len(data), CHUNK)]
    size = len(data) / 1024 / 1024

    start = time.perf_counter()
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    sha = time.perf_counter() - start
    print(f"body                {size:.0f} MiB in {len(chunks)} chunks, {args.secrets} secrets")
    print(f"sha256 (reference)  {size / sha:8.0f} MiB/s")
    for token_fields in (False, True):
        scrubber = Scrubber(secrets, token_fields=token_fields)
        start = time.perf_counter()
        total = sum(len(c) for c in scrubber.scrub_chunks(chunks, "bench", None))
        took = time.perf_counter() - start
        assert total == len(data)
        label = "scrub + token fields" if token_fields else "scrub (values only)"
        print(f"{label:<20}{size / took:8.0f} MiB/s  ({sum(scrubber.counts.values())} replacements)")


if __name__ == "__main__":
    main()
