"""Where each record of a WARC being written lies, so that a reader can go straight to the records it wants.

Our WARC is one gzip member per record (capture/warc.py). A reader that walks it from the start must inflate every
record it passes, a 256 MiB video it has no use for included. The writer knows each member's offset and length as
it writes them; readers at capture time (identifiers, media hashes) are given that list, open only the members of
the record types they read, read a record's head and leave the member there when the body is not theirs.
Readers of a published bundle (no list) walk the file as before.

Every inflate here goes through ``gzip.GzipFile``, whose reads return at most the size asked for: a body that
deflates a thousand to one (a page can send a gigabyte of zeros) never comes back as one huge buffer.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

READ_SIZE = 64 * 1024  # compressed bytes read from the file at once


@dataclass(frozen=True)
class Member:
    """One record's gzip member: its first byte in the file, its length in (compressed) bytes, its WARC-Type."""

    offset: int
    length: int
    warc_type: str

    @property
    def end(self) -> int:
        return self.offset + self.length


class Region(io.RawIOBase):
    """``length`` bytes of ``handle`` from where it stands: what follows them (the next record, or a record still
    being written) is never read."""

    def __init__(self, handle: BinaryIO, length: int) -> None:
        self.handle, self.left = handle, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            return 0
        data = self.handle.read(min(len(buffer), self.left))
        buffer[: len(data)] = data
        self.left -= len(data)
        return len(data)


def inflating(handle: BinaryIO, length: int) -> gzip.GzipFile:
    """The records in the next ``length`` bytes of ``handle`` (whole gzip members), inflated as they are read."""
    return gzip.GzipFile(fileobj=io.BufferedReader(Region(handle, length), READ_SIZE), mode="rb")


def records_of(handle: BinaryIO, members: Iterable[Member], warc_type: str, start: int = 0
               ) -> Iterator[gzip.GzipFile]:
    """For each member of ``warc_type`` from byte ``start`` on, its record (WARC head, then block), inflated as read.
    The caller reads as much of each as it needs; the next one is found by offset, not by reading on."""
    for member in members:
        if member.warc_type != warc_type or member.offset < start:
            continue
        handle.seek(member.offset)
        with inflating(handle, member.length) as record:
            yield record
