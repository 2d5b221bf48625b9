"""One read per file: size, SHA-256 and SHA-512 in the same pass.

hashlib releases the GIL on large buffers, so SHA-256 and SHA-512 run on two threads of their own, each fed from a
short queue, while the main thread reads the next chunk (or inflates and parses the WARC it is reading through the
same stream). Memory is bounded by the queued chunks, whatever the file size.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from evicap.bundle.hashing import FileDigest
from evicap.verify.paths import PathProblem, open_inside, sparse_problem
from evicap.verify.report import Check, failed, passed

READ_CHUNK = 8 * 1024 * 1024
QUEUE_DEPTH = 3  # chunks waiting per digest thread: enough that SHA-256 never starves, little memory
_INLINE_BELOW = 256 * 1024  # small chunks cost more to hand to a thread than to hash here


class _HashThread:
    """Feeds one digest from a short queue of chunks on its own thread, so it never waits for the other digest
    or for the reader: on two cores SHA-256 (the slower) keeps one core busy from start to end."""

    def __init__(self, hasher: Any) -> None:
        self._hasher = hasher
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"evicap-{hasher.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._hasher.update(data)
                except BaseException as error:  # handed to the caller in finish()
                    self._error = error

    def put(self, data: bytes) -> None:
        self._queue.put(data)

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class ParallelDigest:
    """SHA-256 and SHA-512 of a byte sequence fed chunk by chunk.

    Small inputs are hashed inline; from the first large chunk on, each digest runs on its own thread
    (hashlib releases the GIL on large buffers). Memory is bounded by QUEUE_DEPTH chunks per digest.
    """

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._sha512 = hashlib.sha512()
        self._threads: tuple[_HashThread, _HashThread] | None = None
        self.size = 0

    def update(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self._threads is None and len(data) < _INLINE_BELOW:
            self._sha256.update(data)
            self._sha512.update(data)
            return
        if self._threads is None:  # carry on, threaded, from what was hashed inline
            self._threads = (_HashThread(self._sha256), _HashThread(self._sha512))
        for thread in self._threads:
            thread.put(data)

    def result(self) -> FileDigest:
        if self._threads is not None:
            for thread in self._threads:
                thread.finish()
            self._threads = None
        return FileDigest(self.size, self._sha256.hexdigest(), self._sha512.hexdigest())


class HashingReader:
    """A read-only stream that digests every byte it hands out: lets the WARC reader and the file digests share
    one read of the file. ``finish()`` reads whatever the consumer left and returns the whole file's digest."""

    def __init__(self, handle: BinaryIO, chunk: int = READ_CHUNK) -> None:
        self._handle = handle
        self._digest = ParallelDigest()
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
    problem = sparse_problem(fd, info.st_size)
    if problem:
        os.close(fd)
        raise PathProblem(problem)
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


def check_artifact(root: Path, listed: Mapping[str, Any]) -> Check:
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
            digest = HashingReader(stream).finish()
        except OSError as error:
            return failed("artifact", f"unreadable: {error.strerror or error}", rel)
    return compare_digest(rel, listed, digest)

