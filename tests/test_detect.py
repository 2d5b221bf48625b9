"""PDQ, hash lists and matching, on images generated here (pdqhash ships no test images in its sdist)."""

from __future__ import annotations

import io
import json
import random
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from evicap.detect.lists import load_list
from evicap.detect.matching import Thresholds, match_media
from evicap.detect.media import Limits, media_kind
from evicap.detect.pdq import DEFAULT_MAX_PIXELS, WORK_SIDE, Unhashable, hamming, pdq_of_file
from evicap.detect.video import frame_hashes
from evicap.errors import UsageError


def scene(path: Path, size: tuple[int, int] = (640, 480), seed: int = 0) -> Path:
    """A picture with structure (random shapes on stripes) so PDQ has something to see: quality well above 50.
    Different seeds give unrelated layouts."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (20, 30, 40))
    draw = ImageDraw.Draw(image)
    w, h = size
    for i in range(0, w, 8):
        draw.line([(i, 0), (i, h)], fill=(rng.randrange(256), rng.randrange(256), 120))
    for _ in range(12):
        x, y = rng.uniform(0, w * 0.8), rng.uniform(0, h * 0.8)
        box = [x, y, x + rng.uniform(w * 0.1, w * 0.4), y + rng.uniform(h * 0.1, h * 0.4)]
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=color)
    image.save(path)
    return path


def test_pdq_survives_rotation_resize_and_recompression(tmp_path: Path) -> None:
    original = pdq_of_file(scene(tmp_path / "a.png"))
    assert original.quality >= 50 and len(original.hash) == 64 and len(original.dihedral) == 8
    with Image.open(tmp_path / "a.png") as image:
        image.resize((320, 240), Image.Resampling.LANCZOS).save(tmp_path / "small.jpg", quality=80)
        image.rotate(90, expand=True).save(tmp_path / "rot.png")
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "flip.png")
    small = pdq_of_file(tmp_path / "small.jpg")
    assert hamming(original.hash, small.hash) <= 31
    # A rotated or mirrored copy is far from the original's own hash, but one of its dihedral variants is near.
    for name in ("rot.png", "flip.png"):
        copy = pdq_of_file(tmp_path / name)
        assert min(hamming(variant, original.hash) for variant in copy.dihedral) <= 31
    other = pdq_of_file(scene(tmp_path / "b.png", seed=2))
    assert hamming(original.hash, other.hash) > 31


def claimed_png(path: Path, side: int) -> Path:
    """A 1x1 PNG whose IHDR is rewritten to claim side x side (CRC fixed, so only the size lies)."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", side, side)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def test_hostile_images_are_refused_with_a_reason(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(Unhashable, match=r"cannot be decoded|not an image"):
        pdq_of_file(corrupt)
    # PNGs whose headers claim 9000 x 9000 and 60000 x 60000 pixels (with 1 pixel of data): refused before any
    # pixel is decoded, by our cap and by Pillow's decompression-bomb guard.
    for side, reason in ((9000, "over the cap"), (60000, "over the cap|decompression bomb")):
        with pytest.raises(Unhashable, match=reason):
            pdq_of_file(claimed_png(tmp_path / f"claims-{side}.png", side), max_pixels=DEFAULT_MAX_PIXELS)
    assert Limits().max_pixels == DEFAULT_MAX_PIXELS


def test_media_kind_sniffs_images_served_without_a_type() -> None:
    assert media_kind("application/octet-stream", b"\x89PNG\r\n\x1a\n....") == ("image", "image/png")
    assert media_kind(None, b"\x00\x00\x00\x18ftypisom") == ("video", "video/mp4")
    assert media_kind("image/svg+xml; charset=utf-8", b"<svg") == ("image", "image/svg+xml")
    assert media_kind("text/html", b"<html>")[0] is None
    assert media_kind("application/javascript", b"BM = {}")[0] is None  # a document never sniffed as a bitmap


def _doc(hash_value: str, dihedral: list[str], quality: int = 90) -> dict:
    return {"media": [{"source": "warc", "warc_record_id": "<urn:uuid:1>", "target_uri": "http://x/a.png",
                       "kind": "image", "md5": "0" * 32, "sha256": "1" * 64,
                       "pdq": {"hash": hash_value, "quality": quality, "dihedral": dihedral}}]}  # fmt: skip


def test_lists_in_csv_json_and_threatexchange_forms_match(tmp_path: Path) -> None:
    rotated = pdq_of_file(scene(tmp_path / "a.png"))
    with Image.open(tmp_path / "a.png") as image:
        image.rotate(270, expand=True).save(tmp_path / "r.png")
    stored = pdq_of_file(tmp_path / "r.png")  # what a capture of the rotated copy would hold
    csv_list = tmp_path / "known.csv"
    csv_list.write_text(f"signal_type,signal_value,label\npdq,{rotated.hash},entity-A propaganda\n"
                        f"video_md5,{'0' * 32},entity-B clip\nvpdq,whatever,unsupported\n")  # fmt: skip
    json_list = tmp_path / "partner.json"
    json_list.write_text(json.dumps({"name": "partner", "signals": [
        {"signal_type": "sha256", "signal_value": "1" * 64, "label": "exact copy"}]}))  # fmt: skip
    te_list = tmp_path / "te.txt"
    te_list.write_text(f"pdq {rotated.hash}\n")
    lists = [load_list(csv_list), load_list(json_list), load_list(te_list)]
    assert lists[0].unsupported == {"vpdq": 1} and lists[1].name == "partner"
    matches = match_media(_doc(stored.hash, list(stored.dihedral)), lists, Thresholds())
    found = {(m["list"], m["signal_type"], m["label"]) for m in matches}
    assert found == {("known", "pdq", "entity-A propaganda"), ("known", "md5", "entity-B clip"),
                     ("partner", "sha256", "exact copy"), ("te", "pdq", "")}  # fmt: skip
    pdq_match = next(m for m in matches if m["list"] == "known" and m["signal_type"] == "pdq")
    assert pdq_match["distance"] <= 31 and pdq_match["transform"] != "original"
    assert pdq_match["warc_record_id"] == "<urn:uuid:1>"
    # Quality below the threshold: no PDQ match at all; a stricter distance: none either.
    assert not [m for m in match_media(_doc(stored.hash, list(stored.dihedral), 40), lists, Thresholds())
                if m["signal_type"] == "pdq"]  # fmt: skip
    assert not [m for m in match_media(_doc(stored.hash, list(stored.dihedral)), lists, Thresholds(max_distance=0))
                if m["signal_type"] == "pdq" and m["distance"] > 0]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("signal_type,signal_value,label\npdq,abc,x\n", r"bad\.csv: line 2: pdq value 'abc'"),
        ("signal_type,signal_value\nmd5,00\n", r"line 2: md5 value"),
        ("pdq\n", r"line 1: expected signal_type,signal_value"),
        ('[{"signal_type": "pdq", "signal_value": "zz"}]', r"entry 1: pdq value"),
        ('[{"signal_type": "pdq",\n "signal_value": ]', r"line 2: not valid JSON"),
        ("", r"line 1: the hash list has no entries"),
    ],
)
def test_bad_list_is_one_line_naming_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(UsageError, match=message) as error:
        load_list(path)
    assert "\n" not in error.value.one_line() and error.value.exit_code == 2


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed (make installs it)")
def test_video_frames_are_hashed_once_per_second_and_bad_videos_say_why(tmp_path: Path) -> None:
    clip = tmp_path / "clip.webm"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=duration=4:size=320x240:rate=8", str(clip)], check=True, timeout=120)  # fmt: skip
    frames, problem = frame_hashes(clip)
    assert [f.time for f in frames] == [0.0, 1.0, 2.0, 3.0] and problem is None
    assert all(f.pdq.quality >= 50 for f in frames)
    frames, problem = frame_hashes(clip, max_frames=2)
    assert len(frames) == 2 and problem is not None and "frame cap" in problem
    with pytest.raises(Unhashable, match="ffmpeg stopped after"):  # the wall-clock bound (kills the child)
        frame_hashes(clip, timeout=0.01)
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\xff" * 5000)
    with pytest.raises(Unhashable, match=r"ffmpeg exited|no video frame"):
        frame_hashes(fake)


def _warc_with(tmp: Path, records: list[tuple[str, str, int, bytes, str | None]]) -> Path:
    """A WARC written by evicap's own writer: (path, content type, status, body, WARC-Truncated) per response."""
    import asyncio

    from evicap.capture.warc import HttpMessage, WarcWriter

    path = tmp / "capture.warc.gz"

    async def write() -> None:
        writer = WarcWriter(path, warcinfo={"software": "test"})
        for name, media_type, status, body, truncated in records:
            request = HttpMessage(f"GET /{name} HTTP/1.1", [("Host", "x.test")])
            head = [("Content-Type", media_type), ("Content-Length", str(len(body)))]
            response = HttpMessage(f"HTTP/1.1 {status} X", head, body)
            await writer.write_exchange(f"http://x.test/{name}", request, response, truncated=truncated)
        await writer.close()

    asyncio.run(write())
    return path


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed (make installs it)")
def test_warc_media_partial_truncated_and_the_video_budget(tmp_path: Path) -> None:
    from evicap.detect.media import hash_media

    clip = tmp_path / "clip.webm"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=duration=2:size=160x120:rate=5", str(clip)], check=True, timeout=120)  # fmt: skip
    png = scene(tmp_path / "a.png").read_bytes()
    warc = _warc_with(tmp_path, [
        ("a.png", "application/octet-stream", 200, png, None),  # sniffed as PNG
        ("part.mp4", "video/mp4", 206, b"\x00" * 100, None),
        ("cut.jpg", "image/jpeg", 200, b"\xff\xd8\xff" + b"\x00" * 50, "length"),
        ("v1.webm", "video/webm", 200, clip.read_bytes(), None),
        ("v2.webm", "video/webm", 200, clip.read_bytes(), None),
        ("page.html", "text/html", 200, b"<p>not media</p>", None),
    ])  # fmt: skip
    document = hash_media(tmp_path, warc, [], capture_id="c", limits=Limits(video_budget=0.0))
    media = {m["target_uri"].rsplit("/", 1)[1]: m for m in document["media"]}
    assert set(media) == {"a.png", "v1.webm", "v2.webm"}
    assert media["a.png"]["media_type"] == "image/png" and media["a.png"]["pdq"]["quality"] >= 50
    assert "spent" in media["v1.webm"]["problem"] and media["v1.webm"]["sha256"] == media["v2.webm"]["sha256"]
    reasons = {m["target_uri"].rsplit("/", 1)[1]: m["reason"] for m in document["not_hashed"]}
    assert "HTTP 206" in reasons["part.mp4"] and "WARC-Truncated: length" in reasons["cut.jpg"]
    with_budget = hash_media(tmp_path, warc, [], capture_id="c")
    assert all(len(m["frames"]) == 2 for m in with_budget["media"] if m["kind"] == "video")
    # Only the first N bytes (a record boundary while the capture still writes): later records are not read.
    first_only = hash_media(tmp_path, warc, [], capture_id="c", warc_bytes=_first_records(warc, 3))
    assert [m["target_uri"].rsplit("/", 1)[1] for m in first_only["media"]] == ["a.png"]


def _first_records(warc: Path, count: int) -> int:
    """Offset just past the first ``count`` records (warcinfo included), read with warcio."""
    from warcio.archiveiterator import ArchiveIterator

    with open(warc, "rb") as stream:
        iterator = ArchiveIterator(stream)
        for index, _record in enumerate(iterator):
            if index == count:
                return int(iterator.get_record_offset())
    raise AssertionError("too few records")


def test_media_hashed_ahead_and_the_rest_later_make_the_same_document(tmp_path: Path) -> None:
    """A capture hashes the page's media while the snapshots are taken, then what was written after: the document
    lists every image once, in WARC order, as hashing the whole WARC at the end would."""
    from evicap.detect.media import hash_media, hash_warc_media

    images = [scene(tmp_path / f"{n}.png", seed=n).read_bytes() for n in range(3)]
    warc = _warc_with(tmp_path, [
        ("0.png", "image/png", 200, images[0], None),
        ("gone.png", "image/png", 404, b"no", None),
        ("1.png", "image/png", 200, images[1], None),
        ("2.png", "image/png", 200, images[2], None),
    ])  # fmt: skip
    scene(tmp_path / "shot.png", seed=7)
    scene(tmp_path / "element.png", seed=8)
    shots = [{"path": "shot.png", "role": "screenshot", "media_type": "image/png"},
             {"path": "dom.html", "role": "dom", "media_type": "text/html"}]
    element = {"path": "element.png", "role": "screenshot-element", "media_type": "image/png"}
    whole = hash_media(tmp_path, warc, [*shots, element], capture_id="c")
    boundary = _first_records(warc, 5)  # warcinfo and two exchanges (request + response each)
    ahead = hash_warc_media(warc, boundary)
    assert [m["target_uri"].rsplit("/", 1)[1] for m in ahead.media] == ["0.png"] and ahead.upto == boundary
    ahead = ahead.with_artifacts(tmp_path, shots)  # the screenshots taken so far; a later one comes after
    later = hash_media(tmp_path, warc, [*shots, element], capture_id="c", ahead=ahead,
                       warc_bytes=warc.stat().st_size)
    assert later["media"] == whole["media"] and later["not_hashed"] == whole["not_hashed"]
    names = [m.get("target_uri", m.get("artifact", "")).rsplit("/", 1)[-1] for m in later["media"]]
    assert names == ["0.png", "1.png", "2.png", "shot.png", "element.png"]


def _pdq_as_before(path: Path) -> dict:
    """pdq_of_file as it was written before it reduced images in place and packed bits with numpy: a copy of the
    decoded image thumbnailed, bits folded into an int one by one. Kept here to pin that the hashes did not move."""
    import numpy as np
    import pdqhash

    with Image.open(path) as image:
        if image.format == "JPEG":
            image.draft("RGB", (WORK_SIDE, WORK_SIDE))
        image.load()
        width, height = image.size
        if max(width, height) > WORK_SIDE:
            image = image.copy()
            image.thumbnail((WORK_SIDE, WORK_SIDE))
        rgb = image.convert("RGB") if image.mode != "RGB" else image
        hashes, quality = pdqhash.compute_dihedral(np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)))
    hexes = []
    for bits in hashes:
        value = 0
        for bit in bits:
            value = (value << 1) | int(bit)
        hexes.append(f"{value:064x}")
    return {"hash": hexes[0], "quality": int(quality), "dihedral": hexes, "width": width, "height": height}


def test_pdq_hashes_are_those_of_the_copying_implementation(tmp_path: Path) -> None:
    """Regression pin for the in-place reduction: a full-page screenshot, a viewport, large and small JPEGs (the
    large one drafted), and the modes pages serve (alpha, palette, grey, 16-bit, CMYK, WebP, an animation)."""
    images = [
        scene(tmp_path / "full.png", (1280, 6036)),
        scene(tmp_path / "viewport.png", (1280, 900)),
        scene(tmp_path / "small.png", (96, 96), seed=3),
        scene(tmp_path / "wide.png", (3000, 200), seed=4),
    ]
    with Image.open(images[1]) as base:
        base.save(tmp_path / "big.jpg", quality=85)
        base.resize((2600, 1800)).save(tmp_path / "huge.jpg", quality=90, progressive=True)
        base.resize((640, 400)).save(tmp_path / "post.jpg", quality=80)
        base.convert("CMYK").save(tmp_path / "cmyk.jpg")
        base.convert("RGBA").save(tmp_path / "alpha.png")
        base.convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "palette.png")
        base.convert("L").save(tmp_path / "grey.png")
        base.convert("LA").save(tmp_path / "grey-alpha.png")
        base.convert("I;16").save(tmp_path / "sixteen.png")
        base.save(tmp_path / "lossy.webp", quality=70)
        frames = [base.resize((700, 500)), base.rotate(90).resize((700, 500))]
        frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:])
    made = ("big.jpg", "huge.jpg", "post.jpg", "cmyk.jpg", "alpha.png", "palette.png", "grey.png", "grey-alpha.png",
            "sixteen.png", "lossy.webp", "moving.gif")  # fmt: skip
    images += [tmp_path / name for name in made]
    for path in images:
        assert pdq_of_file(path).to_json() == _pdq_as_before(path), path.name


def test_an_image_served_again_is_decoded_once_and_hashed_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from evicap.detect import pdq

    first, other = scene(tmp_path / "a.png", seed=11), scene(tmp_path / "b.png", seed=12)
    again = tmp_path / "a-again.png"
    shutil.copyfile(first, again)
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    decoded: list[Path] = []
    real = pdq.pdq_of_file
    monkeypatch.setattr(pdq, "pdq_of_file", lambda path, **kw: decoded.append(path) or real(path, **kw))
    monkeypatch.setattr(pdq, "_REMEMBERED", pdq._Remembered(16))  # not what other tests of this process hashed
    assert pdq.pdq_of_body(first, digest) == pdq.pdq_of_body(again, digest) == real(first)
    assert decoded == [first]
    # Other bytes, or the same under a smaller pixel cap, are hashed afresh; a refusal is not remembered.
    assert pdq.pdq_of_body(other, hashlib.sha256(other.read_bytes()).hexdigest()) == real(other)
    for _ in range(2):
        with pytest.raises(Unhashable, match="over the cap"):
            pdq.pdq_of_body(first, digest, max_pixels=1000)
    assert decoded == [first, other, first, first]


def test_remembered_hashes_are_bounded_least_recently_used_first() -> None:
    from evicap.detect.pdq import PdqHash, _Remembered

    remembered = _Remembered(2)
    hashes = {name: PdqHash(name * 64, 100, (), 1, 1) for name in "abc"}
    remembered.put(("a", 1), hashes["a"])
    remembered.put(("b", 1), hashes["b"])
    assert remembered.get(("a", 1)) == hashes["a"]  # now the most recently used
    remembered.put(("c", 1), hashes["c"])
    assert remembered.get(("b", 1)) is None
    assert remembered.get(("a", 1)) == hashes["a"] and remembered.get(("c", 1)) == hashes["c"]
