"""Each watched target's history, from the case directory's watch files: for a case report or a reviewer.

``target_history(case_dir)`` -> one TargetHistory per target: its captures in order (bundle, start time, status)
and the changes between them, each change pointing at its two bundles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evicap.bundle import layout
from evicap.errors import BundleError
from evicap.watch.state import CHANGES, WatchState


@dataclass
class TargetHistory:
    item: str
    url: str
    rounds: int
    next_due_at: str | None
    captures: list[dict[str, Any]] = field(default_factory=list)  # {"bundle", "started_at", "status"} in time order
    changes: list[dict[str, Any]] = field(default_factory=list)


def _capture_facts(bundle: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((bundle / layout.MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    capture = manifest.get("capture") or {}
    case = manifest.get("case") or {}
    return {"bundle": str(bundle.resolve()), "item": case.get("item_id"), "url": (manifest.get("target") or {}).get(
        "requested_url"), "started_at": capture.get("started_at"), "status": capture.get("status")}  # fmt: skip


def read_changes(directory: Path) -> list[dict[str, Any]]:
    path = directory / CHANGES
    if not path.exists():
        return []
    changes = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                changes.append(json.loads(line))
            except ValueError:
                raise BundleError(f"{path}: line {number}: not a JSON change record", path=str(path)) from None
    return changes


def target_history(directory: Path) -> list[TargetHistory]:
    state = WatchState.load(directory)
    histories = {key: TargetHistory(t.item, t.url, t.rounds, t.next_due_at) for key, t in state.targets.items()}
    for child in sorted(directory.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and (child / layout.MANIFEST).is_file():
            facts = _capture_facts(child)
            if facts and facts["item"] in histories and histories[facts["item"]].url == facts["url"]:
                histories[facts["item"]].captures.append(facts)
    for change in read_changes(directory):
        if change.get("item") in histories:
            histories[change["item"]].changes.append(change)
    for history in histories.values():
        history.captures.sort(key=lambda c: c.get("started_at") or "")
    return [histories[key] for key in sorted(histories)]
