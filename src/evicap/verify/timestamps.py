"""Checks of a bundle's RFC 3161 tokens: each verified, each bound to its `timestamped` custody event, each in time.

A bundle holds manifest.tsr and, from more authorities, manifest.2.tsr, manifest.3.tsr, ... Every token file
must be named by a `timestamped` event with the token's SHA-256 and the authority that signed it, and every such
event's file must be there: a removed token, a token nobody recorded, and a valid token from another authority
put in place of the recorded one all fail, each naming the file.

Time consistency. The token's genTime is compared with the capture's start and end, moved by the clock offset
measured against that authority when the token was obtained at sealing (custody ``clock_offset_ms``: authority
minus local clock), so a capture made on a clock that ran fast or slow is judged on the authority's time scale. A
token added later (``at_sealing`` false) was timed by whatever clock ran then; capture times are taken as
recorded. The token may come at most ``accuracy + tolerance`` seconds before the capture ended; within that, the
check passes and says the measured figures; beyond it, the check fails and names the offset.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from evicap.bundle import layout
from evicap.config import DEFAULT_CLOCK_TOLERANCE
from evicap.errors import EvicapError
from evicap.seal.custody import MAX_BAD_LINES, MAX_LINE
from evicap.seal.timestamp import TimestampInfo, verify_timestamp
from evicap.verify.paths import PathProblem, read_small
from evicap.verify.report import Check, failed, not_checked, passed

MAX_TOKEN = 1024 * 1024
MAX_CUSTODY = 64 * 1024 * 1024


@dataclass(frozen=True)
class _Recorded:
    """A `timestamped` custody event, as far as it names a token."""

    seq: int
    file: str
    sha256: str | None
    authority: str | None
    offset_seconds: float | None
    clock: Mapping[str, Any]
    at_sealing: bool
    """False for a token added later (evicap timestamp): its offset describes that later clock, not the capture's."""


def _recorded(root: Path) -> list[_Recorded]:
    """Every `timestamped` event in custody.jsonl (the custody check judges the log itself)."""
    found: list[_Recorded] = []
    try:
        handle = open(root / layout.CUSTODY, "rb")  # noqa: SIM115 - closed below; a missing log is the custody check's
    except OSError:
        return found
    with handle:
        if os.fstat(handle.fileno()).st_size > MAX_CUSTODY:
            return found
        bad = 0
        while (raw := handle.readline(MAX_LINE + 1)) and bad < MAX_BAD_LINES:
            if not raw.startswith(b'{"action":"'):  # canonical JSON: "action" is every event's first key
                bad += 1
                continue
            if not raw.startswith(b'{"action":"timestamped"'):
                continue
            try:
                event = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if not isinstance(event, dict) or event.get("action") != "timestamped":
                continue
            details = event.get("details")
            details = details if isinstance(details, dict) else {}
            offset = details.get("clock_offset_ms")
            clock = details.get("clock")
            seq = event.get("seq")
            found.append(_Recorded(
                seq=seq if isinstance(seq, int) else -1,
                file=str(details.get("token_file") or layout.TIMESTAMP),
                sha256=details.get("token_sha256") if isinstance(details.get("token_sha256"), str) else None,
                authority=details.get("authority") if isinstance(details.get("authority"), str) else None,
                offset_seconds=offset / 1000 if isinstance(offset, int | float) and not isinstance(offset, bool)
                else None,
                clock=clock if isinstance(clock, dict) else {},
                at_sealing=details.get("at_sealing") is not False,
            ))  # fmt: skip
    return found


def _token_files(root: Path) -> list[str]:
    try:
        names = os.listdir(root)
    except OSError:
        return []
    return sorted((n for n in names if layout.is_timestamp_file(n)), key=lambda n: (n != layout.TIMESTAMP, len(n), n))


def _parse_utc(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _synchronised(clock: Mapping[str, Any]) -> str:
    state = clock.get("synchronized")
    return "NTP-synchronised" if state is True else "not NTP-synchronised" if state is False else "sync unknown"


def time_consistency(
    info: TimestampInfo, manifest: Mapping[str, Any] | None, record: _Recorded, tolerance: float
) -> tuple[bool, str]:
    """(within bounds, the sentence saying the figures); see the module docstring."""
    capture = manifest.get("capture") if isinstance(manifest, Mapping) else None
    capture = capture if isinstance(capture, Mapping) else {}
    started = _parse_utc(capture.get("started_at"))
    ended = _parse_utc(capture.get("ended_at")) or started
    if started is None or ended is None:
        return False, "manifest has no usable capture.started_at to compare the token time with"
    if ended < started:
        return False, f"capture.ended_at {ended.isoformat()} is before capture.started_at {started.isoformat()}"
    gen = info.gen_time if info.gen_time.tzinfo else info.gen_time.replace(tzinfo=timezone.utc)
    offset = (record.offset_seconds or 0.0) if record.at_sealing else 0.0
    accuracy = info.accuracy_seconds or 0.0
    allowed = accuracy + tolerance
    try:
        after_end = (gen - (ended + timedelta(seconds=offset))).total_seconds()
        after_start = (gen - (started + timedelta(seconds=offset))).total_seconds()
    except (OverflowError, ValueError):
        return False, f"capture times moved by the recorded clock offset ({offset:g} s) are out of range"
    clock = _synchronised(record.clock) if record.clock else "clock state not recorded"
    if not record.at_sealing:
        measured = "capture times as recorded (token added after sealing: its clock offset is not the capture's)"
    elif record.offset_seconds is None:
        measured = "no clock offset recorded (taken as 0)"
    else:
        measured = f"capturing clock offset {offset:+.3f} s measured against the authority and applied, {clock}"
    bounds = f"accuracy ±{accuracy:g} s + tolerance {tolerance:g} s"
    if after_end < -allowed:
        where = "started" if after_start < -allowed else "ended"
        gap = -(after_start if where == "started" else after_end)
        return False, (f"token time {gen.isoformat()} is {gap:.1f} s before the capture {where} "
                       f"({(started if where == 'started' else ended).isoformat()}; {measured}); "
                       f"more than {bounds}")
    return True, (f"time {gen.isoformat()}: {after_end:+.1f} s after the capture ended, {after_start:+.1f} s after "
                  f"it started ({measured}); within {bounds}")


def timestamp_checks(
    root: Path,
    manifest_bytes: bytes,
    manifest: Mapping[str, Any] | None,
    anchors: list[Path],
    clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE,
) -> list[Check]:
    """One `timestamp` check per token file and per recorded token that is missing."""
    files = _token_files(root)
    records = _recorded(root)
    by_file: dict[str, _Recorded] = {}
    checks: list[Check] = []
    for record in records:
        if record.file in by_file or not layout.is_timestamp_file(record.file):
            checks.append(failed("timestamp", f"custody seq {record.seq} names token file {record.file!r}, which is "
                                              "not a token name or is named twice", record.file))  # fmt: skip
            continue
        by_file[record.file] = record
        if record.file not in files:
            checks.append(failed("timestamp", f"{record.file} removed: custody seq {record.seq} records a token "
                                              f"from {record.authority or 'an authority'} but the bundle has none",
                                 record.file))  # fmt: skip
    if not files and not records:
        return [not_checked("timestamp", "bundle is not timestamped (no manifest.tsr): its time rests on the "
                                         "capturing machine's clock only")]  # fmt: skip
    for name in files:
        checks.append(_check_one(root, name, by_file.get(name), manifest_bytes, manifest, anchors, clock_tolerance))
    return checks


def _check_one(
    root: Path,
    name: str,
    record: _Recorded | None,
    manifest_bytes: bytes,
    manifest: Mapping[str, Any] | None,
    anchors: list[Path],
    tolerance: float,
) -> Check:
    try:
        token = read_small(root, name, MAX_TOKEN)
    except PathProblem as problem:
        return failed("timestamp", f"{name}: {problem}", name)
    except OSError as error:
        return failed("timestamp", f"{name}: unreadable: {error.strerror or error}", name)
    if record is None:
        return failed("timestamp", f"{name} is not recorded in the custody log (no 'timestamped' event names it)",
                      name)
    try:
        info = verify_timestamp(token, manifest_bytes, anchors)
    except EvicapError as error:
        return failed("timestamp", f"{name}: {error.one_line()}", name)
    digest = hashlib.sha256(token).hexdigest()
    recorded_by = record.authority or "an unnamed authority"
    if record.authority is not None and record.authority != info.authority:
        return failed("timestamp", f"{name} is signed by {info.authority} but custody seq {record.seq} recorded a "
                                   f"token from {recorded_by}: swapped", name)  # fmt: skip
    if record.sha256 is not None and digest != record.sha256:
        return failed("timestamp", f"{name} is not the token custody seq {record.seq} recorded from {recorded_by} "
                                   f"(SHA-256 {digest[:16]}…, recorded {record.sha256[:16]}…): replaced", name)
    within, sentence = time_consistency(info, manifest, record, tolerance)
    if not within:
        return failed("timestamp", f"{name}: {sentence}", name)
    return passed("timestamp", f"RFC 3161 token by {info.authority} over SHA-256(manifest.json) verifies "
                               f"({info.ess}), recorded at custody seq {record.seq}; {sentence}", name)
