"""The one clock of evicap: timezone-aware UTC now, and its ISO 8601 form with a Z (what every record says)."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """``2026-12-01T20:05:10.123456Z``: microseconds, always UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_now() -> str:
    return iso(now())


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
