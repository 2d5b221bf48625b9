"""Dates, numbers and sizes written the way each language writes them (CLDR data through Babel).

Identifiers never pass through here: hashes, URLs, serial numbers and file names are printed exactly as stored.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def parse_time(value: str | dt.datetime | None) -> dt.datetime | None:
    """An ISO 8601 string (with Z or offset) as an aware datetime; None stays None."""
    if value is None or isinstance(value, dt.datetime):
        return value
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def zone(name: str | None, offset: str | None = None) -> dt.tzinfo:
    """The investigator's time zone: an IANA name when it is one, else the recorded UTC offset, else UTC."""
    if name and "/" in name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    match = _OFFSET.match(offset or "")
    if match:
        sign = -1 if match.group(1) == "-" else 1
        delta = dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
        if not delta:
            return dt.UTC
        return dt.timezone(sign * delta, name) if name else dt.timezone(sign * delta)
    return dt.UTC


class Formatter:
    """Formatting for one language; its methods are the templates' filters."""

    def __init__(self, code: str) -> None:
        self.code = code

    def datetime(self, value: str | dt.datetime | None, tz: dt.tzinfo = dt.UTC) -> str:
        """Date and time to the second, with the zone's offset, e.g. '1 déc. 2026, 20:05:56 UTC+01:00'."""
        moment = parse_time(value)
        if moment is None:
            return str(value) if value else ""
        local = moment.astimezone(tz)
        text = format_datetime(local, "medium", tzinfo=tz, locale=self.code)
        offset = local.strftime("%z")
        label = "UTC" if offset in ("+0000", "") else f"UTC{offset[:3]}:{offset[3:]}"
        return f"{text} {label}"

    def date(self, value: str | dt.datetime | dt.date | None) -> str:
        if isinstance(value, dt.datetime | str) or value is None:
            moment = parse_time(value)
            if moment is None:
                return str(value) if value else ""
            value = moment.date()
        return format_date(value, "long", locale=self.code)

    def number(self, value: float | int | None) -> str:
        return "" if value is None else format_decimal(value, locale=self.code)

    def size(self, value: int | None) -> str:
        """Bytes as an exact grouped count: a court wants the exact figure, not '1.2 MB'."""
        return "" if value is None else format_decimal(int(value), locale=self.code)
