"""The case index: one JSON file listing every target of a batch and what became of it.

``DIR/case-index.json`` is rewritten whole, atomically (temp file, fsync, rename, fsync of the directory), as
results arrive, so a reader or a crash never sees half a file. At the end it is sealed like a bundle (see
``evicap.batch.index_seal``). Each entry names the bundle by its path relative to ``DIR`` and the SHA-256 of its
``manifest.json``: the index binds the set of bundles, and each bundle's own seal binds its contents.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from evicap import clock
from evicap.batch.targets import Target, TargetList
from evicap.bundle import layout
from evicap.bundle.staging import atomic_write
from evicap.errors import BundleError, UsageError
from evicap.verify.report import Check

INDEX_FORMAT = "evicap-case-index"
INDEX_VERSION = "1.0"
MAX_INDEX_BYTES = 256 * 1024 * 1024  # refuse to parse absurd files

EntryStatus = Literal["pending", "complete", "partial", "failed"]
State = Literal["running", "interrupted", "finished"]


def utc_now() -> str:
    return clock.iso_now()


@dataclass(frozen=True)
class Superseded:
    """An earlier bundle of the same target that a later attempt replaced. Kept on disk: evidence is never deleted."""

    bundle: str
    status: str
    reason: str | None
    manifest_sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": self.bundle,
            "status": self.status,
            "reason": self.reason,
            "manifest_sha256": self.manifest_sha256,
        }


@dataclass(frozen=True)
class IndexEntry:
    """One target and its fate."""

    item: str
    url: str
    line: int  # line of the target list it came from
    status: EntryStatus = "pending"
    reason: str | None = None  # why it is not complete; None when complete
    attempts: int = 0  # capture attempts made, over every run of the batch
    bundle: str | None = None  # bundle directory relative to the case directory
    manifest_sha256: str | None = None
    http_status: int | None = None
    started_at: str | None = None
    ended_at: str | None = None
    profile: str | None = None
    note: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    superseded: tuple[Superseded, ...] = ()

    @classmethod
    def from_target(cls, target: Target) -> IndexEntry:
        return cls(
            item=target.item,
            url=target.url,
            line=target.line,
            profile=target.profile,
            note=target.note,
            extra=dict(target.extra),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "url": self.url,
            "line": self.line,
            "status": self.status,
            "reason": self.reason,
            "attempts": self.attempts,
            "bundle": self.bundle,
            "manifest_sha256": self.manifest_sha256,
            "http_status": self.http_status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "profile": self.profile,
            "note": self.note,
            "extra": self.extra,
            "superseded": [s.to_json() for s in self.superseded],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexEntry:
        return cls(
            item=str(data["item"]),
            url=str(data["url"]),
            line=int(data.get("line") or 0),
            status=data.get("status", "pending"),
            reason=data.get("reason"),
            attempts=int(data.get("attempts") or 0),
            bundle=data.get("bundle"),
            manifest_sha256=data.get("manifest_sha256"),
            http_status=data.get("http_status"),
            started_at=data.get("started_at"),
            ended_at=data.get("ended_at"),
            profile=data.get("profile"),
            note=data.get("note"),
            extra=dict(data.get("extra") or {}),
            superseded=tuple(
                Superseded(s["bundle"], s["status"], s.get("reason"), s.get("manifest_sha256"))
                for s in data.get("superseded") or ()
            ),
        )


class CaseIndex:
    """The index of one case directory, kept in memory (targets are small) and written through ``save``.

    Writes are coalesced to at most one per ``min_interval`` seconds so that a batch of thousands of targets does
    not rewrite a large file thousands of times; ``save(force=True)`` always writes. Resume does not depend on the
    index being current: it also reads the bundles on disk (see ``evicap.batch.resume``).
    """

    def __init__(self, directory: Path, case_id: str, *, created_at: str | None = None) -> None:
        self.directory = directory
        self.case_id = case_id
        self.created_at = created_at or utc_now()
        self.state: State = "running"
        self.source: dict[str, Any] = {}
        self.problems: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []
        self.entries: dict[str, IndexEntry] = {}
        self.min_interval = 1.0
        self._last_write = 0.0
        self._dirty = False

    @property
    def path(self) -> Path:
        return self.directory / layout.INDEX

    # -- building ------------------------------------------------------------------------------------------
    def add_targets(self, targets: TargetList) -> list[str]:
        """Add targets not yet listed; refuse an item id that now names another URL. Returns items added."""
        added: list[str] = []
        for target in targets.targets:
            known = self.entries.get(target.item)
            if known is None:
                self.entries[target.item] = IndexEntry.from_target(target)
                added.append(target.item)
            elif known.url != target.url:
                raise UsageError(
                    f"item {target.item} is {target.url} in the target list but {known.url} in {self.path}",
                    hint="resume with the same target list, or give the target another item id",
                )
        self.source = {"path": targets.source, "format": targets.format, "targets": len(targets.targets)}
        self.problems = [p.to_json() for p in targets.problems]
        self._dirty = True
        return added

    def update(self, item: str, **changes: Any) -> IndexEntry:
        entry = replace(self.entries[item], **changes)
        self.entries[item] = entry
        self._dirty = True
        return entry

    def pending(self) -> list[IndexEntry]:
        """Entries still to capture: everything not complete, in list order."""
        return sorted((e for e in self.entries.values() if e.status != "complete"), key=lambda e: e.line)

    def summary(self) -> dict[str, int]:
        counts = {"total": len(self.entries), "complete": 0, "partial": 0, "failed": 0, "pending": 0}
        for entry in self.entries.values():
            counts[entry.status] += 1
        return counts

    # -- reading and writing -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": INDEX_FORMAT,
            "format_version": INDEX_VERSION,
            "case_id": self.case_id,
            "state": self.state,
            "created_at": self.created_at,
            "updated_at": utc_now(),
            "source": self.source,
            "summary": self.summary(),
            "problems": self.problems,
            "runs": self.runs,
            "targets": [e.to_json() for e in sorted(self.entries.values(), key=lambda e: (e.line, e.item))],
        }

    def save(self, *, force: bool = False) -> bool:
        """Write the index if it changed (and, unless forced, if the last write is old enough). True if written."""
        now = time.monotonic()
        if not force and (not self._dirty or now - self._last_write < self.min_interval):
            return False
        data = json.dumps(self.to_json(), indent=1, ensure_ascii=False).encode("utf-8") + b"\n"
        atomic_write(self.path, data)
        self._last_write, self._dirty = now, False
        return True

    @classmethod
    def load(cls, directory: Path) -> CaseIndex:
        data = read_index_json(directory / layout.INDEX)
        index = cls(directory, str(data.get("case_id") or ""), created_at=data.get("created_at"))
        index.state = data.get("state", "running")
        index.source = dict(data.get("source") or {})
        index.problems = list(data.get("problems") or [])
        index.runs = list(data.get("runs") or [])
        try:
            for raw in data.get("targets") or ():
                entry = IndexEntry.from_json(raw)
                index.entries[entry.item] = entry
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"case index {directory / layout.INDEX} has a malformed target: {exc}") from exc
        return index


def read_index_json(path: Path) -> dict[str, Any]:
    """Parse a case index file with a size cap; BundleError naming the file when it is not one."""
    try:
        size = path.stat().st_size
        if size > MAX_INDEX_BYTES:
            raise BundleError(f"case index {path} is {size} bytes; refusing to parse", path=str(path))
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
    except FileNotFoundError:
        raise BundleError(f"no case index at {path}", path=str(path)) from None
    except (OSError, ValueError, RecursionError) as exc:
        raise BundleError(f"case index {path} is unreadable: {exc}", path=str(path)) from None
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
        raise BundleError(f"{path} is not an evicap case index", path=str(path))
    return data


def verify_index(directory: Path, *, trusted_keys: Iterable[Path] = (), tsa_cas: Iterable[Path] = ()) -> list[Check]:
    """Checks of a case directory: the index's seal, and for every listed bundle that it is there and that its
    manifest.json still has the SHA-256 the index recorded. The bundles' own contents are checked by
    ``verify_bundle``; ``evicap verify DIR`` runs both."""
    from evicap.batch.index_check import check_index

    return check_index(Path(directory), trusted_keys=list(trusted_keys), tsa_cas=list(tsa_cas))
