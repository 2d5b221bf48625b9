"""The requests kept in a case directory: what was asked of whom, when it was sent, when preservation lapses.

A request directory holds request.json (as drafted, never changed) and, once the investigator marks it sent,
sent.json ``{"sent_on": DATE, "marked_at": UTC}``. Expiry is the sent date plus the preservation period of the
request; the renewal date is ``renew_notice_days`` before it (providers such as X ask for extensions at least
7 days ahead).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evicap.bundle.staging import atomic_write
from evicap.errors import UsageError

SENT = "sent.json"
_SKIP = {"artifacts", ".git"}


@dataclass(frozen=True)
class StoredRequest:
    id: str
    directory: Path
    kind: str
    instrument: str
    provider: str
    drafted_at: str
    sent_on: str | None
    expires_on: str | None
    renew_by: str | None
    retention_days: int | None

    def state(self, today: dt.date) -> str:
        """``draft`` (not sent), ``sent``, ``renew now`` (on or after the renewal date), ``expired``, ``no expiry``."""
        if self.sent_on is None:
            return "draft"
        if self.expires_on is None:
            return "no expiry"
        if today >= dt.date.fromisoformat(self.expires_on):
            return "expired"
        if self.renew_by and today >= dt.date.fromisoformat(self.renew_by):
            return "renew now"
        return "sent"

    def to_json(self, today: dt.date | None = None) -> dict[str, Any]:
        day = today or dt.datetime.now(dt.UTC).date()
        return {"id": self.id, "state": self.state(day), "directory": str(self.directory), "kind": self.kind,
                "instrument": self.instrument,
                "provider": self.provider, "drafted_at": self.drafted_at, "sent_on": self.sent_on,
                "expires_on": self.expires_on, "renew_by": self.renew_by, "retention_days": self.retention_days}


def _request_files(case_dir: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(case_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP and not d.startswith(".staging-"))
        if "request.json" in files:
            found.append(Path(root) / "request.json")
    return found


def _load(file: Path) -> StoredRequest | None:
    try:
        data = json.loads(file.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != "evicap-request":
        return None
    sent_on = None
    sent_file = file.parent / SENT
    if sent_file.is_file():
        sent_on = json.loads(sent_file.read_text("utf-8")).get("sent_on")
    retention = (data["fields"].get("retention") or {}).get("value") or {}
    days = retention.get("days")
    expires = renew = None
    if sent_on and days:
        end = dt.date.fromisoformat(sent_on) + dt.timedelta(days=days)
        expires = end.isoformat()
        renew = (end - dt.timedelta(days=retention.get("renew_notice_days") or 7)).isoformat()
    return StoredRequest(data["id"], file.parent, data["kind"], data["instrument"]["id"], data["provider"]["id"],
                         data["drafted_at"], sent_on, expires, renew, days)


def list_requests(case_dir: Path) -> list[StoredRequest]:
    if not case_dir.is_dir():
        raise UsageError(f"{case_dir} is not a directory")
    found = [r for r in map(_load, _request_files(case_dir)) if r is not None]
    return sorted(found, key=lambda r: (r.drafted_at, r.id))


def mark_sent(case_dir: Path, request_id: str, sent_on: dt.date, now: dt.datetime | None = None) -> StoredRequest:
    matches = [r for r in list_requests(case_dir) if r.id == request_id]
    if not matches:
        raise UsageError(f"no request {request_id} under {case_dir}", hint="evicap requests list shows the ids")
    request = matches[0]
    if sent_on < dt.date.fromisoformat(request.drafted_at[:10]):
        drafted = request.drafted_at[:10]
        raise UsageError(f"{request_id} was drafted on {drafted}: it cannot have been sent on {sent_on}")
    moment = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
    marked = json.dumps({"sent_on": sent_on.isoformat(), "marked_at": moment}) + "\n"
    atomic_write(request.directory / SENT, marked.encode("utf-8"))
    loaded = _load(request.directory / "request.json")
    assert loaded is not None
    return loaded
