"""Starting and resuming a batch in a case directory: the lock, staging leftovers, bundles on disk.

After a crash or ``kill -9`` the index may lag behind the disk: a bundle can be published (renamed into place)
a moment before the index says so. So resume trusts the bundles themselves: every published bundle whose manifest
names this case and one of its items is adopted into the index. Half-written ``.staging-*`` directories are never
evidence (a bundle becomes one only by the final rename) and are removed.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evicap.batch.index import CaseIndex, IndexEntry, Superseded
from evicap.batch.targets import normalize_url
from evicap.bundle import layout
from evicap.bundle.hashing import digest_file
from evicap.errors import EnvironmentProblem, UsageError

LOCK = ".batch.lock"
MAX_MANIFEST = 64 * 1024 * 1024


@dataclass(frozen=True)
class BundleFacts:
    """What a published bundle's manifest says about itself."""

    path: str  # relative to the case directory
    case_id: str | None
    item: str | None
    url: str | None
    status: str
    reason: str | None
    http_status: int | None
    manifest_sha256: str


@contextmanager
def case_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on the case directory: two batches writing one index would corrupt it."""
    path = directory / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another evicap batch is running in {directory}", hint="wait for it, or use another --output"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock; the file stays, harmlessly


def read_bundle_facts(directory: Path, bundle: Path) -> BundleFacts | None:
    """Facts of a published bundle, or None when ``bundle`` is not one (no readable manifest.json)."""
    manifest = bundle / layout.MANIFEST
    try:
        if bundle.is_symlink() or not manifest.is_file() or manifest.stat().st_size > MAX_MANIFEST:
            return None
        with open(manifest, "rb") as handle:
            data = json.loads(handle.read())
        digest = digest_file(manifest)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    case, target, capture = (_section(data, key) for key in ("case", "target", "capture"))
    status = capture.get("status")
    if status not in ("complete", "partial", "failed"):
        return None
    http_status = target.get("http_status")
    return BundleFacts(
        path=bundle.relative_to(directory).as_posix(),
        case_id=case.get("case_id"),
        item=case.get("item_id"),
        url=target.get("requested_url"),
        status=status,
        reason=capture.get("reason"),
        http_status=http_status if isinstance(http_status, int) else None,
        manifest_sha256=digest.sha256,
    )


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def published_bundles(directory: Path) -> Iterator[BundleFacts]:
    for child in sorted(directory.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        facts = read_bundle_facts(directory, child)
        if facts is not None:
            yield facts


def reconcile(index: CaseIndex) -> list[str]:
    """Bring the index in line with the bundles on disk before resuming. Returns notes for the user.

    - a listed bundle that vanished: the entry goes back to pending (it is captured again);
    - a bundle of this case not in the index (published just before a crash): adopted; a complete one makes
      its entry complete, so the target is not captured twice; an older one is kept as superseded.
    """
    notes: list[str] = []
    directory = index.directory
    for entry in list(index.entries.values()):
        if entry.bundle and not (directory / entry.bundle / layout.MANIFEST).is_file():
            notes.append(f"{entry.item}: bundle {entry.bundle} is missing; it will be captured again")
            index.update(entry.item, status="pending", bundle=None, manifest_sha256=None, reason="bundle missing")
    known = {e.bundle for e in index.entries.values()} | {
        s.bundle for e in index.entries.values() for s in e.superseded
    }
    for facts in published_bundles(directory):
        if facts.path in known or facts.case_id != index.case_id or facts.item not in index.entries:
            continue
        entry = index.entries[facts.item]
        if facts.url and normalize_url(entry.url) != normalize_url(facts.url):
            notes.append(f"{facts.path}: item {facts.item} but URL {facts.url}; not adopted")
            continue
        notes.append(f"{entry.item}: adopted {facts.path} ({facts.status}) published before the interruption")
        _adopt(index, entry, facts)
    return notes


def _adopt(index: CaseIndex, entry: IndexEntry, facts: BundleFacts) -> None:
    rank = {"complete": 0, "partial": 1, "failed": 2, "pending": 3}
    if rank[facts.status] <= rank[entry.status]:
        superseded = entry.superseded
        if entry.bundle:
            superseded += (Superseded(entry.bundle, entry.status, entry.reason, entry.manifest_sha256),)
        index.update(
            entry.item,
            status=facts.status,
            reason=facts.reason if facts.status != "complete" else None,
            bundle=facts.path,
            manifest_sha256=facts.manifest_sha256,
            http_status=facts.http_status,
            attempts=max(entry.attempts, 1),
            superseded=superseded,
        )
    else:
        index.update(
            entry.item,
            superseded=(*entry.superseded, Superseded(facts.path, facts.status, facts.reason, facts.manifest_sha256)),
        )


def ensure_case_dir(directory: Path) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create case directory {directory}: {exc.strerror}") from exc
    if not os.access(directory, os.W_OK | os.X_OK):
        raise EnvironmentProblem(f"case directory is not writable: {directory}")
    return directory
