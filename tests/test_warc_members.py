"""Readers at capture time go straight to the records they read (the writer's member list), and every inflate of
a WARC body is a read at a time, whatever the body deflates to."""

from __future__ import annotations

import asyncio
import io
import itertools
import tracemalloc
import zlib
from pathlib import Path

import pytest
from PIL import Image

from evicap.bundle.warcmembers import Member
from evicap.capture.warc import HttpMessage, WarcWriter
from evicap.detect.media import hash_media
from evicap.errors import BundleError
from evicap.profiles.identifiers import from_warc

PAGE = b'<html><head><link rel="canonical" href="https://example.test/post/42"></head><p>post</p></html>'
BIG = 16 * 1024 * 1024


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "PNG")
    return out.getvalue()


def write_warc(path: Path, responses: list[tuple[str, str, bytes]]) -> tuple[Member, ...]:
    """One exchange per (name, content type, body), written by our writer; returns its member list."""

    async def write() -> tuple[Member, ...]:
        warc = WarcWriter(path, {"software": "evicap test"})
        for name, media_type, body in responses:
            await warc.write_exchange(
                f"http://site.test/{name}",
                HttpMessage(f"GET /{name} HTTP/1.1", [("Host", "site.test")]),
                HttpMessage("HTTP/1.1 200 OK", [("Content-Type", media_type), ("Content-Length", str(len(body)))],
                            body),
            )
        members = warc.members_within(await warc.flush())
        await warc.close()
        return members

    return asyncio.run(write())


def test_the_member_list_names_every_record_where_it_lies(tmp_path: Path) -> None:
    path = tmp_path / "capture.warc.gz"
    members = write_warc(path, [("page", "text/html", PAGE), ("a.png", "image/png", png((200, 0, 0)))])
    data = path.read_bytes()
    assert [m.warc_type for m in members] == ["warcinfo", "request", "response", "request", "response"]
    assert members[0].offset == 0 and members[-1].end == len(data)
    for before, after in itertools.pairwise(members):
        assert after.offset == before.end  # contiguous: nothing between or overlapping
    for member in members:
        record = zlib.decompress(data[member.offset:member.end], zlib.MAX_WBITS | 16)  # exactly one member
        assert record.startswith(b"WARC/1.1\r\nWARC-Type: " + member.warc_type.encode() + b"\r\n")


def test_readers_given_the_members_never_inflate_a_body_they_do_not_read(tmp_path: Path) -> None:
    """A large download between the page and its images: with the member list, identifiers and media hashes are
    what walking the WARC finds, and the download's body is not inflated at all (damaging it changes nothing);
    the walk must inflate it (and so fails on the damage)."""
    path = tmp_path / "capture.warc.gz"
    red, blue = png((200, 0, 0)), png((0, 0, 200))
    members = write_warc(path, [("page", "text/html", PAGE), ("red.png", "image/png", red),
                                ("big.bin", "application/octet-stream", b"\x00" * BIG),
                                ("blue.png", "image/png", blue)])
    walked_ids, walked_media = from_warc(path), hash_media(tmp_path, path, [], capture_id="c")
    assert [i.value for i in walked_ids] == ["https://example.test/post/42"]
    assert [m["target_uri"].rsplit("/", 1)[1] for m in walked_media["media"]] == ["red.png", "blue.png"]
    assert from_warc(path, members=members) == walked_ids
    listed = hash_media(tmp_path, path, [], capture_id="c", warc_bytes=members[-1].end, members=members)
    assert listed["media"] == walked_media["media"] and listed["not_hashed"] == walked_media["not_hashed"]

    big = [m for m in members if m.warc_type == "response"][2]
    with path.open("r+b") as damaged:  # the second half of the download's deflated body, its gzip trailer with it
        damaged.seek(big.offset + big.length // 2)
        damaged.write(bytes(big.end - damaged.tell()))
    assert from_warc(path, members=members) == walked_ids
    again = hash_media(tmp_path, path, [], capture_id="c", warc_bytes=members[-1].end, members=members)
    assert again["media"] == walked_media["media"]
    with pytest.raises(BundleError):
        from_warc(path)  # the walk inflates the damaged body on its way to the next record


def test_a_body_that_deflates_a_thousand_to_one_is_inflated_a_read_at_a_time(tmp_path: Path) -> None:
    """64 MiB of zeros served as an image deflate to 64 KiB: hashing it (a published bundle's WARC, walked) holds a
    few reads in memory, not the tens of MiB one inflate of a 16 KiB input can give."""
    path = tmp_path / "capture.warc.gz"
    write_warc(path, [("bomb.png", "image/png", b"\x00" * (64 * 1024 * 1024))])
    assert path.stat().st_size < 1024 * 1024
    tracemalloc.start()
    try:
        document = hash_media(tmp_path, path, [], capture_id="c")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (entry,) = document["media"]
    assert entry["size"] == 64 * 1024 * 1024 and "pdq" not in entry and entry["problem"]
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
