"""The outcome of a verification, as data.

Every check is a ``Check`` with one of three statuses. ``not-checked`` is not a pass: it says plainly that something
was never examined (no timestamp in the bundle, no trust anchor configured) so a reader of the report cannot mistake
silence for success.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["pass", "fail", "not-checked"]

PASS: Status = "pass"
FAIL: Status = "fail"
NOT_CHECKED: Status = "not-checked"


@dataclass(frozen=True)
class Check:
    """One thing verified about a bundle."""

    name: str
    """Short stable identifier of the kind of check, e.g. ``artifact``, ``signature``, ``warc-digests``."""
    status: Status
    reason: str
    """One line for a human: what was found, or why it was not checked."""
    subject: str | None = None
    """What the check is about when there are many of a kind: an artifact path, a WARC record offset."""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "subject": self.subject, "reason": self.reason}


def passed(name: str, reason: str, subject: str | None = None) -> Check:
    return Check(name, PASS, reason, subject)


def failed(name: str, reason: str, subject: str | None = None) -> Check:
    return Check(name, FAIL, reason, subject)


def not_checked(name: str, reason: str, subject: str | None = None) -> Check:
    return Check(name, NOT_CHECKED, reason, subject)


@dataclass(frozen=True)
class BundleReport:
    """Every check run on one bundle (or one case index directory)."""

    path: str
    checks: tuple[Check, ...]
    manifest_sha256: str | None = None
    """SHA-256 of manifest.json as read, the value a custody event or case index should name."""

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == FAIL)

    @property
    def unchecked(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == NOT_CHECKED)

    @property
    def ok(self) -> bool:
        """True when no check failed. Checks that could not run do not fail a bundle; they are listed."""
        return not self.failures

    @property
    def verdict(self) -> str:
        """One line for the end of a report."""
        if self.failures:
            names = sorted({c.name for c in self.failures})
            return f"FAILED: {len(self.failures)} check(s) failed ({', '.join(names)})"
        total = len(self.checks)
        if self.unchecked:
            names = sorted({c.name for c in self.unchecked})
            return f"VERIFIED: {total - len(self.unchecked)} check(s) passed; not checked: {', '.join(names)}"
        return f"VERIFIED: all {total} checks passed"

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": self.path,
            "ok": self.ok,
            "verdict": self.verdict,
            "manifest_sha256": self.manifest_sha256,
            "checks": [c.to_json() for c in self.checks],
        }
