"""Time and memory of media hashing (evicap.detect) over a WARC shaped like a media-heavy page.

    .venv/bin/python benchmarks/bench_detect.py [--images 100] [--video-seconds 60] [--big-mib 256]

Writes, with evicap's own WARC writer, a WARC holding IMAGES JPEG photos-like images (1024x768, random shapes),
one H.264 video of VIDEO_SECONDS made by ffmpeg (640x360), and one BIG_MIB incompressible body served as
video/mp4 (ffmpeg rejects it: the worst case for spooling, no frames). Then hashes it in a child process (as
capture does, streaming) and prints wall time, CPU time, per-image and per-video-second costs, and the child's
peak RSS (wait4 rusage), which covers ffmpeg's children too.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1024 * 1024
URL = "http://bench.invalid/"


def _image(seed: int) -> bytes:
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (1024, 768), (rng.randrange(256), 40, 90))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.uniform(0, 900), rng.uniform(0, 650)
        draw.ellipse([x, y, x + rng.uniform(20, 300), y + rng.uniform(20, 300)],
                     fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))  # fmt: skip
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


async def _build(warc: Path, work: Path, images: int, video_seconds: int, big_mib: int) -> None:
    from evicap.capture.warc import HttpMessage, WarcWriter

    writer = WarcWriter(warc, warcinfo={"software": "bench_detect"})

    async def add(path: str, media_type: str, body: bytes | Path) -> None:
        size = len(body) if isinstance(body, bytes) else body.stat().st_size
        request = HttpMessage(f"GET /{path} HTTP/1.1", [("Host", "bench.invalid")])
        response = HttpMessage("HTTP/1.1 200 OK", [("Content-Type", media_type), ("Content-Length", str(size))], body)
        await writer.write_exchange(URL + path, request, response)

    await add("", "text/html", b"<html><body>bench</body></html>")
    for index in range(images):
        await add(f"img/{index}.jpg", "image/jpeg", _image(index))
    if video_seconds:
        clip = work / "clip.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                        f"testsrc2=duration={video_seconds}:size=640x360:rate=25", "-pix_fmt", "yuv420p",
                        str(clip)], check=True)  # fmt: skip
        await add("clip.mp4", "video/mp4", clip)
    if big_mib:
        big = work / "big.bin"
        with open(big, "wb") as handle:
            for _ in range(big_mib):
                handle.write(os.urandom(MIB))
        await add("big.mp4", "video/mp4", big)
        big.unlink()
    await writer.close()


CHILD = """
import json, sys, time
from pathlib import Path
from evicap.detect.media import hash_media
start = time.perf_counter()
doc = hash_media(Path(sys.argv[1]).parent, Path(sys.argv[1]), [], capture_id="bench")
print(json.dumps({"seconds": time.perf_counter() - start, "media": len(doc["media"]),
                  "pdq": sum(1 for m in doc["media"] if m.get("pdq")),
                  "frames": sum(len(m.get("frames") or []) for m in doc["media"]),
                  "problems": [m["problem"] for m in doc["media"] if m.get("problem")]}))
"""


def agreement(count: int = 20) -> list[int]:
    """PDQ distance between hashing an image whole and hashing it reduced to evicap's working size."""
    import numpy as np
    import pdqhash
    from PIL import Image

    from evicap.detect.pdq import WORK_SIDE, bits_to_hex, hamming

    distances = []
    for seed in range(count):
        with Image.open(io.BytesIO(_image(seed))) as source:
            image = source.convert("RGB")
        whole = bits_to_hex(pdqhash.compute(np.asarray(image))[0])
        image.thumbnail((WORK_SIDE, WORK_SIDE))
        distances.append(hamming(whole, bits_to_hex(pdqhash.compute(np.asarray(image))[0])))
    return distances


def list_figures(work: Path, entries: int, document: dict) -> str:
    """Load a list of ENTRIES random PDQ hashes, index it, match one capture's media against it."""
    from evicap.detect.lists import load_list
    from evicap.detect.matching import Matcher, Thresholds

    rng = random.Random(5)
    path = work / "big-list.csv"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("signal_type,signal_value,label\n")
        for index in range(entries):
            handle.write(f"pdq,{rng.getrandbits(256):064x},entry-{index}\n")
    t0 = time.perf_counter()
    hash_list = load_list(path)
    t1 = time.perf_counter()
    matcher = Matcher([hash_list], Thresholds())
    t2 = time.perf_counter()
    matcher.match(document)
    t3 = time.perf_counter()
    images = sum(1 for m in document["media"] if m.get("pdq"))
    return (f"list of {entries:,} PDQ entries: parsed in {t1 - t0:.1f} s, indexed in {t2 - t1:.2f} s, "
            f"{images} images (x8 variants) matched in {t3 - t2:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--video-seconds", type=int, default=60)
    parser.add_argument("--big-mib", type=int, default=256)
    parser.add_argument("--list-entries", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        work = Path(tmp)
        warc = work / "capture.warc.gz"
        asyncio.run(_build(warc, work, args.images, args.video_seconds, args.big_mib))
        print(f"WARC: {warc.stat().st_size / MIB:.1f} MiB, {args.images} images, {args.video_seconds} s video, "
              f"{args.big_mib} MiB incompressible body")  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(warc)], stdout=subprocess.PIPE)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        assert proc.stdout is not None
        result = json.loads(proc.stdout.read())
        if status != 0:
            raise SystemExit(f"hashing failed with status {status}")
        cpu = usage.ru_utime + usage.ru_stime
        print(f"hashed {result['media']} media ({result['pdq']} PDQ images, {result['frames']} video frames) "
              f"in {result['seconds']:.1f} s (process wall {wall:.1f} s, CPU {cpu:.1f} s)")
        print(f"peak RSS of the hashing process: {usage.ru_maxrss / 1024:.0f} MiB")
        for problem in result["problems"]:
            print(f"  not perceptually hashed: {problem}")
        if args.list_entries:
            from evicap.detect.media import hash_media

            document = hash_media(work, warc, [], capture_id="bench")
            print(list_figures(work, args.list_entries, document))
    distances = agreement()
    print(f"PDQ of 1024x768 images, whole vs reduced to the working size: distance {min(distances)}-"
          f"{max(distances)} (mean {sum(distances) / len(distances):.1f}) over {len(distances)} images")


if __name__ == "__main__":
    main()
