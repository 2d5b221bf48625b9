"""One read per file: size, SHA-256 and SHA-512 in the same pass.

hashlib releases the GIL on large buffers, so SHA-256 and SHA-512 of a chunk run on two worker threads while the
main thread reads the next chunk (or inflates the WARC it is reading through the same stream). Memory is bounded by
two chunks in flight, whatever the file size.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from evicap.bundle.hashing import FileDigest
from evicap.verify.paths import PathProblem, open_inside
from evicap.verify.report import Check, failed, not_checked, passed

READ_CHUNK = 8 * 1024 * 1024
_INLINE_BELOW = 256 * 1024  # small chunks cost more to hand to a thread than to hash here


class ParallelDigest:
    """SHA-256 and SHA-512 of a byte sequence fed chunk by chunk, each digest on its own worker thread."""

    def __init__(self, pool: ThreadPoolExecutor | None) -> None:
        self._pool = pool
        self._sha256 = hashlib.sha256()
        self._sha512 = hashlib.sha512()
        self._pending: list[Future[None]] = []
        self.size = 0

    def update(self, data: bytes) -> None:
        self._wait()
        self.size += len(data)
        if self._pool is None or len(data) < _INLINE_BELOW:
            self._sha256.update(data)
            self._sha512.update(data)
        else:
            self._pending = [
                self._pool.submit(self._sha256.update, data),
                self._pool.submit(self._sha512.update, data),
            ]

    def _wait(self) -> None:
        for future in self._pending:
            future.result()
        self._pending = []

    def result(self) -> FileDigest:
        self._wait()
        return FileDigest(self.size, self._sha256.hexdigest(), self._sha512.hexdigest())


class HashingReader:
    """A read-only stream that digests every byte it hands out: lets the WARC reader and the file digests share
    one read of the file. ``finish()`` reads whatever the consumer left and returns the whole file's digest."""

    def __init__(self, handle: BinaryIO, pool: ThreadPoolExecutor | None, chunk: int = READ_CHUNK) -> None:
        self._handle = handle
        self._digest = ParallelDigest(pool)
        self._chunk = chunk

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(self._chunk if size is None or size < 0 else size)
        if data:
            self._digest.update(data)
        return data

    def finish(self) -> FileDigest:
        while self.read(self._chunk):
            pass
        return self._digest.result()


def open_artifact(root: Path, rel: str) -> tuple[BinaryIO, int]:
    """Open a listed file safely (see paths.open_inside) unbuffered; returns (stream, size on disk)."""
    fd, info = open_inside(root, rel)
    return os.fdopen(fd, "rb", buffering=0), info.st_size


def compare_digest(rel: str, listed: Mapping[str, Any], actual: FileDigest) -> Check:
    """The artifact check from a computed digest: size, SHA-256, SHA-512 all as the manifest says."""
    if listed.get("size") != actual.size:
        return failed("artifact", f"size is {actual.size} bytes, manifest says {listed.get('size')}", rel)
    if listed.get("sha256") != actual.sha256:
        return failed("artifact", "SHA-256 does not match the manifest (content altered)", rel)
    if listed.get("sha512") != actual.sha512:
        return failed("artifact", "SHA-512 does not match the manifest (content altered)", rel)
    return passed("artifact", f"{actual.size} bytes, SHA-256 and SHA-512 match", rel)


def check_artifact(root: Path, listed: Mapping[str, Any], pool: ThreadPoolExecutor | None) -> Check:
    """Check one listed, non-WARC artifact with a single streamed read."""
    rel = str(listed.get("path"))
    try:
        stream, size = open_artifact(root, rel)
    except PathProblem as problem:
        return failed("artifact", str(problem), rel)
    with stream:
        if size != listed.get("size"):
            # No need to read: the size alone proves a change, and an absurd file is not worth hashing.
            return failed("artifact", f"size is {size} bytes, manifest says {listed.get('size')}", rel)
        try:
            digest = HashingReader(stream, pool).finish()
        except OSError as error:
            return failed("artifact", f"unreadable: {error.strerror or error}", rel)
    return compare_digest(rel, listed, digest)


def unlisted_files(root: Path, listed: Iterable[str], ignored: Iterable[str]) -> list[str]:
    """Every file or link in the bundle that the manifest does not list (seal files excepted), without following
    any symlink; symlinks and special files are named with a note so a reader sees what they are."""
    known = set(listed) | set(ignored)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                found.append(_rel(rel_dir, name) + " (symbolic link)")
        for name in sorted(filenames):
            rel = _rel(rel_dir, name)
            if rel in known:
                continue
            full = os.path.join(dirpath, name)
            note = " (symbolic link)" if os.path.islink(full) else ""
            found.append(rel + note)
    return sorted(found)


def _rel(rel_dir: str, name: str) -> str:
    return name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")


def unlisted_checks(root: Path, listed: Iterable[str], ignored: Iterable[str], strict: bool) -> list[Check]:
    extra = unlisted_files(root, listed, ignored)
    if strict:
        return [failed("unlisted", "present but not listed in the manifest (--strict)", rel) for rel in extra]
    return [not_checked("unlisted", "present but not listed in the manifest; not covered by the seal", rel)
            for rel in extra]
