"""Hash lists (CSV, JSON or JSON Lines of ``signal_type, signal_value, label``), read for matching and never copied.

Accepted shapes, as ThreatExchange's tools and partners exchange them:
  * CSV with a header naming ``signal_type`` and ``signal_value`` (or ThreatExchange's ``signal_str``) and
    optionally ``label`` (else ``tags`` or ``category``); without a header the columns are taken in that order;
  * ThreatExchange's plain signal file: ``pdq <hex>`` (type, a space, value) per line;
  * JSON: a list of objects, or ``{"name": ..., "signals": [...]}``; JSON Lines: one object per line.
Signal types: ``pdq``; ``md5`` (also ``video_md5``, ``photo_md5``); ``sha256`` (also ``video_sha256``,
``photo_sha256``). Entries of other types (``vpdq``, ``tmk_pdqf``, ``url``, ...) are counted as unsupported.
A malformed entry of a supported type is an error naming the file and the line (or JSON entry).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evicap.errors import UsageError

ALIASES = {
    "pdq": "pdq",
    "md5": "md5", "video_md5": "md5", "photo_md5": "md5",
    "sha256": "sha256", "video_sha256": "sha256", "photo_sha256": "sha256",
}  # fmt: skip
_HEX = {"pdq": re.compile(r"^[0-9a-f]{64}$"), "md5": re.compile(r"^[0-9a-f]{32}$"),
        "sha256": re.compile(r"^[0-9a-f]{64}$")}  # fmt: skip
_VALUE_KEYS = ("signal_value", "signal_str", "signal", "hash")
_LABEL_KEYS = ("label", "tags", "category")


@dataclass(frozen=True)
class Entry:
    signal_type: str  # pdq, md5 or sha256
    value: str  # lower-case hex
    label: str
    where: str  # "line 4" or "entry 3": for messages, never recorded in a bundle


@dataclass
class HashList:
    """One list file, parsed. ``name`` and ``sha256`` (of the file) are what a bundle may record about it."""

    name: str
    path: Path
    sha256: str
    entries: list[Entry] = field(default_factory=list)
    unsupported: dict[str, int] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What may be written into a bundle about this list: its name, its file's hash, its size. No entries."""
        return {"name": self.name, "sha256": self.sha256, "entries": len(self.entries)}


def _entry(
    path: Path, where: str, signal_type: Any, value: Any, label: Any, unsupported: dict[str, int]
) -> Entry | None:
    kind = str(signal_type or "").strip().lower()
    if not kind:
        raise UsageError(f"{path}: {where}: no signal_type")
    canonical = ALIASES.get(kind)
    if canonical is None:
        unsupported[kind] = unsupported.get(kind, 0) + 1
        return None
    text = str(value or "").strip().lower()
    if not _HEX[canonical].match(text):
        raise UsageError(f"{path}: {where}: {kind} value {str(value)[:80]!r} is not a valid {canonical} hash")
    return Entry(canonical, text, str(label or "").strip(), where)


def _pick(row: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if row.get(key) not in (None, ""):
            return row[key]
    return None


def _from_objects(path: Path, rows: Iterable[tuple[str, Any]], unsupported: dict[str, int]) -> Iterator[Entry]:
    for where, row in rows:
        if not isinstance(row, dict):
            raise UsageError(f"{path}: {where}: expected an object with signal_type and signal_value")
        label = _pick(row, _LABEL_KEYS)
        if isinstance(label, list):
            label = " ".join(str(x) for x in label)
        entry = _entry(path, where, row.get("signal_type"), _pick(row, _VALUE_KEYS), label, unsupported)
        if entry is not None:
            yield entry


def _parse_json(path: Path, text: str, unsupported: dict[str, int]) -> tuple[str | None, list[Entry]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1 and lines[0].lstrip().startswith("{"):
            return None, list(_parse_jsonl(path, text, unsupported))
        raise UsageError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    name = None
    if isinstance(data, dict):
        name = data.get("name") if isinstance(data.get("name"), str) else None
        data = data.get("signals", data.get("entries"))
    if not isinstance(data, list):
        raise UsageError(f"{path}: line 1: expected a list of signals, or an object with a \"signals\" list")
    rows = ((f"entry {i + 1}", row) for i, row in enumerate(data))
    return name, list(_from_objects(path, rows, unsupported))


def _parse_jsonl(path: Path, text: str, unsupported: dict[str, int]) -> Iterator[Entry]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: line {number}: not valid JSON ({exc.msg})") from None
        yield from _from_objects(path, [(f"line {number}", row)], unsupported)


def _cell(cells: list[str], index: int | None) -> str:
    return cells[index] if index is not None and index < len(cells) else ""


def _parse_csv(path: Path, text: str, unsupported: dict[str, int]) -> Iterator[Entry]:
    rows = csv.reader(io.StringIO(text))
    columns: tuple[int, int, int | None] | None = None  # signal_type, value, label positions from a header
    seen = False
    for row in rows:
        number = rows.line_num
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        first, seen = not seen, True
        if first and "signal_type" in [c.lower() for c in cells]:
            header = [c.lower() for c in cells]
            value = next((header.index(k) for k in _VALUE_KEYS if k in header), None)
            if value is None:
                raise UsageError(f"{path}: line {number}: header has no signal_value (or signal_str) column")
            label = next((header.index(k) for k in _LABEL_KEYS if k in header), None)
            columns = (header.index("signal_type"), value, label)
            continue
        where = f"line {number}"
        if columns is not None:
            kind_at, value_at, label_at = columns
            found = _entry(path, where, _cell(cells, kind_at), _cell(cells, value_at), _cell(cells, label_at),
                           unsupported)  # fmt: skip
            if found is not None:
                yield found
            continue
        if len(cells) == 1 and " " in cells[0]:  # ThreatExchange's plain file: "pdq <hex>"
            cells = cells[0].split(None, 1)
        if len(cells) < 2:
            raise UsageError(f"{path}: {where}: expected signal_type,signal_value[,label]")
        found = _entry(path, where, cells[0], cells[1], cells[2] if len(cells) > 2 else "", unsupported)
        if found is not None:
            yield found


def load_list(path: Path) -> HashList:
    """Parse one list file. Raises UsageError (exit 2) naming the file and the line for anything malformed."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read hash list: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path}: line {line}: not UTF-8 text") from None
    unsupported: dict[str, int] = {}
    name: str | None = None
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        name, entries = _parse_json(path, text, unsupported)
    else:
        entries = list(_parse_csv(path, text, unsupported))
    if not entries and not unsupported:
        raise UsageError(f"{path}: line 1: the hash list has no entries")
    return HashList(name or path.stem, path, hashlib.sha256(raw).hexdigest(), entries, unsupported)


def load_lists(paths: Iterable[str | Path]) -> list[HashList]:
    lists = [load_list(Path(p)) for p in paths]
    names = [x.name for x in lists]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"two hash lists are both named {name!r}: rename one file (or its JSON \"name\")")
    return lists
