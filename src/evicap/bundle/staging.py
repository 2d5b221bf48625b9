"""Staging directories, atomic publication of bundles, and the one atomic file writer.

A bundle is written into ``OUTPUT/.staging-<name>-<random>`` and renamed to ``OUTPUT/<name>`` only when whole, so an
interrupted capture never leaves anything that looks like a finished bundle. Names derived from URLs or items are
sanitised to a single safe path component: nothing a server says can place a file outside the output directory.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from evicap.bundle.layout import ARTIFACTS_DIR, STAGING_PREFIX
from evicap.errors import BundleError, EnvironmentProblem

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_COMPONENT = 80


def safe_component(text: str, *, fallback: str = "x", limit: int = MAX_COMPONENT) -> str:
    """Reduce arbitrary text to one harmless file-name component (no separators, no dot-names)."""
    cleaned = _UNSAFE.sub("_", text).strip("._-")[:limit].strip("._-")
    return cleaned or fallback


def host_label(url: str) -> str:
    """The URL's host as ASCII (IDNA for unicode hosts), safe as a file-name part."""
    host = urlsplit(url).hostname or "unknown-host"
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    return safe_component(host, fallback="unknown-host")


def bundle_name(url: str, started: datetime, item: str | None) -> str:
    """`<item>_<host>_<UTC time>`: a human tells item, host and capture time apart at a glance."""
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    prefix = safe_component(item, fallback="item") if item else "capture"
    return f"{prefix}_{host_label(url)}_{stamp}"


def ensure_output_dir(output: Path) -> Path:
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create output directory {output}: {exc.strerror}") from exc
    if not os.access(output, os.W_OK | os.X_OK):
        raise EnvironmentProblem(f"output directory is not writable: {output}")
    return output


def create_staging(output: Path, name: str) -> Path:
    """Make a private staging directory for a bundle (with its artifacts/ folder)."""
    staging = output / f"{STAGING_PREFIX}{name}-{secrets.token_hex(4)}"
    staging.mkdir(mode=0o700)
    (staging / ARTIFACTS_DIR).mkdir()
    return staging


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(staging: Path, output: Path, name: str) -> Path:
    """Rename the finished staging directory to its final name; never overwrite an existing bundle."""
    staging.chmod(0o755)
    for attempt in range(1, 1000):
        final = output / (name if attempt == 1 else f"{name}-{attempt}")
        if final.exists():
            continue
        try:
            os.rename(staging, final)  # atomic within one file system; fails if final appeared meanwhile
        except OSError as exc:
            if final.exists():
                continue
            raise BundleError(f"cannot publish bundle {final}: {exc.strerror}", path=str(final)) from exc
        _fsync_dir(output)
        return final
    raise BundleError(f"too many bundles named {name} in {output}", path=str(output))


def atomic_write(path: Path, data: bytes, *, mode: int = 0o666) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new one, never a mix.

    The bytes go to a temporary file beside it (created with ``mode``, less the umask; never through a link),
    fsynced, renamed over ``path``, and the directory fsynced; on any failure the temporary file is removed and
    ``path`` is left as it was. The one atomic writer of evicap (case index, watch state, saved sessions, custody
    head, request marks)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)  # left by a crashed run of the same pid
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
