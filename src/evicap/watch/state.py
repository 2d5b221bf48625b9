"""The watch's files in the case directory: its schedule state and its change log.

    CASE_DIR/watch-state.json     per target: rounds done, last bundle, last and next capture time (atomic rewrite)
    CASE_DIR/watch-changes.jsonl  one JSON object per change, appended and fsync'd (see docs/watch.md)
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from evicap.bundle.staging import atomic_write
from evicap.errors import BundleError, UsageError

STATE = "watch-state.json"
CHANGES = "watch-changes.jsonl"
STATE_FORMAT = "evicap-watch-state"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_UNIT = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'30s', '5m', '2h', '1d' or plain seconds -> seconds (at least 1)."""
    match = _DURATION.match(str(text))
    if not match:
        raise UsageError(f"expected a duration such as 30s, 15m, 6h or 1d, got {text!r}")
    seconds = float(match.group(1)) * _UNIT[(match.group(2) or "").lower()]
    if seconds < 1:
        raise UsageError(f"duration {text!r} is shorter than one second")
    return seconds


def utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class TargetState:
    url: str
    item: str
    rounds: int = 0
    last_bundle: str | None = None  # the reference for the next comparison: the last published bundle
    last_attempt_at: str | None = None
    next_due_at: str | None = None  # None: due now

    def due(self, now: datetime) -> bool:
        return self.next_due_at is None or parse_utc(self.next_due_at) <= now

    def schedule(self, started: datetime, every: float) -> None:
        self.last_attempt_at = utc(started)
        self.next_due_at = utc(started + timedelta(seconds=every))


class WatchState:
    """The state file: loaded at start (resume), rewritten atomically after every capture."""

    def __init__(self, directory: Path, targets: dict[str, TargetState]) -> None:
        self.directory = directory
        self.targets = targets

    @classmethod
    def load(cls, directory: Path) -> WatchState:
        path = directory / STATE
        if not path.exists():
            return cls(directory, {})
        try:
            data = json.loads(path.read_text("utf-8"))
            rows = data["targets"]
            targets = {key: TargetState(**row) for key, row in rows.items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"{path}: unreadable watch state ({exc})", hint="move it away to start afresh") from None
        return cls(directory, targets)

    def target(self, item: str, url: str) -> TargetState:
        key = item
        state = self.targets.get(key)
        if state is None or state.url != url:
            state = self.targets[key] = TargetState(url=url, item=item)
        return state

    def save(self) -> None:
        data = {"format": STATE_FORMAT, "version": 1,
                "targets": {key: asdict(value) for key, value in sorted(self.targets.items())}}  # fmt: skip
        atomic_write(self.directory / STATE, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def append_changes(directory: Path, changes: list[dict[str, Any]]) -> None:
    if not changes:
        return
    lines = "".join(json.dumps(change, ensure_ascii=False, sort_keys=True) + "\n" for change in changes)
    fd = os.open(directory / CHANGES, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, lines.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
