"""Open files strictly inside a bundle.

A bundle can come from anyone, so a path in its manifest is hostile until proven otherwise. Every component is opened
relative to its parent directory's descriptor with O_NOFOLLOW, so a symlink anywhere on the path (or one swapped in
while we read) is refused by the kernel, never followed; the realpath comparison is a second, independent guard.
O_NONBLOCK keeps a FIFO planted in a bundle from hanging the verifier.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class PathProblem(Exception):
    """A listed path cannot be read safely; the message is the reason a check reports."""


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def path_problem(rel: str) -> str | None:
    """Why ``rel`` is not an acceptable bundle-relative path, or None when it is."""
    if not rel:
        return "empty path"
    if "\x00" in rel or "\\" in rel or "\n" in rel:
        return "path contains a NUL, backslash or newline"
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        return "absolute path"
    parts = rel.split("/")
    if ".." in parts:
        return "path escapes the bundle with '..'"
    if any(part in ("", ".") for part in parts):
        return "path has empty or '.' components"
    return None


def _describe_open_error(error: OSError) -> str:
    if error.errno == errno.ENOENT:
        return "missing"
    if error.errno in (errno.ELOOP, errno.EMLINK):
        return "is a symbolic link (not followed)"
    if error.errno == errno.ENOTDIR:
        return "a parent of the path is a symbolic link or not a directory"
    return f"cannot open: {error.strerror or error}"


def open_inside(root: Path, rel: str) -> tuple[int, os.stat_result]:
    """Open ``rel`` under ``root`` read-only and return (fd, stat). The caller closes the fd.

    Raises PathProblem when the path is unsafe, missing, a link or not a regular file.
    """
    reason = path_problem(rel)
    if reason:
        raise PathProblem(reason)
    root_real = os.path.realpath(root)
    parts = rel.split("/")
    fds: list[int] = []
    try:
        fds.append(os.open(root_real, _DIR_FLAGS))
        for part in parts[:-1]:
            try:
                fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise PathProblem(f"parent directory {part!r} is a symbolic link or not a directory "
                                      "(not followed)") from None
                raise PathProblem(_describe_open_error(error)) from None
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=fds[-1])
        except OSError as error:
            raise PathProblem(_describe_open_error(error)) from None
    finally:
        for dir_fd in fds:
            os.close(dir_fd)
    # Second, independent guard: what the name resolves to now must still lie inside the bundle.
    target_real = os.path.realpath(os.path.join(root_real, rel))
    info = os.fstat(fd)
    if os.path.commonpath([root_real, target_real]) != root_real:
        os.close(fd)
        raise PathProblem("path resolves outside the bundle")
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise PathProblem("not a regular file")
    os.set_blocking(fd, True)
    return fd, info


def read_small(root: Path, rel: str, limit: int) -> bytes:
    """Whole content of a small bundle file (manifest, signature, key, token, log), refusing more than ``limit``."""
    fd, info = open_inside(root, rel)
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > limit:
            raise PathProblem(f"{info.st_size} bytes, more than the {limit} bytes allowed")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise PathProblem(f"more than the {limit} bytes allowed")
    return data


SPARSE_LIMIT = 64 * 1024 * 1024
"""Bytes of holes beyond which a file is refused unread. evicap's files are written sequentially and are mostly
compressed (gzip WARC, PNG, PDF), so they have no holes; a hole-punched or ``truncate``d file of 4 GiB costs no disk
yet would cost a full read and two hashes of zeros."""


def hole_bytes(fd: int, size: int) -> int:
    """How many of the file's ``size`` bytes lie in holes (never written), by SEEK_DATA / SEEK_HOLE; 0 where the
    file system cannot say."""
    seek_data, seek_hole = getattr(os, "SEEK_DATA", None), getattr(os, "SEEK_HOLE", None)
    if seek_data is None or seek_hole is None or size == 0:
        return 0
    holes, position = 0, 0
    try:
        while position < size:
            try:
                data = os.lseek(fd, position, seek_data)
            except OSError as error:
                if error.errno == errno.ENXIO:  # no data after position: the rest is a hole
                    holes += size - position
                    break
                raise
            holes += data - position
            position = os.lseek(fd, data, seek_hole)
    except OSError:
        return 0
    finally:
        os.lseek(fd, 0, os.SEEK_SET)
    return holes


def sparse_problem(fd: int, size: int) -> str | None:
    """Why a file must not be read (mostly holes), or None."""
    holes = hole_bytes(fd, size)
    if holes > SPARSE_LIMIT:
        return (f"a sparse file: {holes} of its {size} bytes are holes never written (not a file evicap wrote); "
                "refused unread")
    return None
