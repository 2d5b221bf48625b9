"""Hash while writing, hash while reading: SHA-256 and SHA-512 in one pass.

Evidence is never held whole in memory: writers take chunks, readers read 1 MiB at a time.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FileDigest:
    """Size and digests of one file's exact bytes."""

    size: int
    sha256: str
    sha512: str


class HashingWriter:
    """A binary file opened for writing that digests every byte written to it.

    ``close()`` flushes and fsyncs, then ``digest`` holds the size and both hashes. Used as a context manager,
    a failure inside the block removes the half-written file (``abort()``): nothing half-written is left to be
    mistaken for a whole one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = open(path, "xb")  # noqa: SIM115 - closed in close()
        self._sha256 = hashlib.sha256()
        self._sha512 = hashlib.sha512()
        self._size = 0
        self.digest: FileDigest | None = None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._file.write(data)
        self._sha256.update(data)
        self._sha512.update(data)
        self._size += len(data)
        return len(data)

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> FileDigest:
        if self.digest is None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self.digest = FileDigest(self._size, self._sha256.hexdigest(), self._sha512.hexdigest())
        return self.digest

    def abort(self) -> None:
        """Close without a digest and remove the file."""
        if self.digest is None:
            self._file.close()
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> HashingWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


def write_bytes(path: Path, data: bytes) -> FileDigest:
    """Write ``data`` to a new file at ``path`` and return its digest."""
    with HashingWriter(path) as writer:
        writer.write(data)
    assert writer.digest is not None
    return writer.digest


def digest_stream(stream: IO[bytes], chunk: int = CHUNK) -> FileDigest:
    """Size, SHA-256 and SHA-512 of everything left in ``stream``, read in chunks."""
    sha256, sha512, size = hashlib.sha256(), hashlib.sha512(), 0
    while block := stream.read(chunk):
        sha256.update(block)
        sha512.update(block)
        size += len(block)
    return FileDigest(size, sha256.hexdigest(), sha512.hexdigest())


def digest_file(path: Path) -> FileDigest:
    with open(path, "rb") as handle:
        return digest_stream(handle)
