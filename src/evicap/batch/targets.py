"""Target lists: the URLs a batch captures, read from .txt, .csv, .yaml or standard input.

A list is user input typed by hand or exported from a spreadsheet, so one bad line must never sink the batch:
each problem is kept with its line number and the line is skipped. Duplicate URLs are captured once and the
duplication is reported once. Every target gets an item id (the exhibit number in the case): the one the file
gives, or one generated from the target's position in the file (T0001, T0002, ...) so that re-reading the same
file, for instance on --resume, gives every target the same id again.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import urlsplit, urlunsplit

import yaml

from evicap.errors import UsageError

Format = Literal["txt", "csv", "yaml"]
FORMATS: tuple[Format, ...] = ("txt", "csv", "yaml")
SCHEMES = ("http", "https")

# Item ids end up in bundle names and file paths: keep them to characters that are safe everywhere.
ITEM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_URL = 8192
KNOWN_COLUMNS = ("url", "item", "profile", "note", "description")


@dataclass(frozen=True)
class Target:
    """One URL to capture, and where in the list it came from."""

    url: str  # as given, stripped of surrounding blanks
    item: str  # exhibit / item id: from the list or generated from the position
    line: int  # 1-based line of the list where the target starts
    profile: str | None = None  # per-target site profile, overriding the batch's --profile
    note: str | None = None  # free text from the list, kept in the index and the capture options
    description: str | None = None  # the exhibit's description: into its manifest (case.description)
    extra: Mapping[str, str] = field(default_factory=dict)  # any other columns, kept in the index

    @property
    def host(self) -> str:
        """Host (with port) the per-host limits apply to."""
        return urlsplit(self.url).netloc.lower()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"item": self.item, "url": self.url, "line": self.line}
        if self.profile:
            data["profile"] = self.profile
        if self.note:
            data["note"] = self.note
        if self.description:
            data["description"] = self.description
        if self.extra:
            data["extra"] = dict(self.extra)
        return data


@dataclass(frozen=True)
class TargetProblem:
    """A line that was skipped (or a duplicate that was merged), with the reason."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "message": self.message}


@dataclass(frozen=True)
class TargetList:
    """The parsed list: targets in file order, and every problem met on the way."""

    source: str  # file path, or "-" for standard input
    format: Format
    targets: tuple[Target, ...]
    problems: tuple[TargetProblem, ...]


@dataclass(frozen=True)
class _Entry:
    """One raw entry before validation: a line of text, a CSV row or a YAML list item."""

    line: int
    position: int  # 1-based position among the list's entries; drives generated item ids
    fields: Mapping[str, Any]


def load_targets(source: str | Path, *, fmt: Format | None = None, stdin: TextIO | None = None) -> TargetList:
    """Read and validate a target list from a file, or from ``stdin`` when ``source`` is ``-``.

    Raises UsageError when the list cannot be read at all or yields no target; bad lines are problems.
    """
    name = str(source)
    if name == "-":
        stream = stdin if stdin is not None else _default_stdin()
        text = stream.read()
    else:
        path = Path(source)
        try:
            with open(path, encoding="utf-8-sig") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise UsageError(f"target list not found: {path}") from None
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"target list {path} is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8"
            ) from None
        except OSError as exc:
            raise UsageError(f"cannot read target list {path}: {exc.strerror}") from None
    text = text.removeprefix("\ufeff")
    chosen = fmt or detect_format(name, text)
    result = parse_targets(text, chosen, source=name)
    if not result.targets:
        detail = f"; first problem: {result.problems[0]}" if result.problems else ""
        raise UsageError(f"no valid target in {name}{detail}", hint="one http(s) URL per line, or a url column")
    return result


def _default_stdin() -> TextIO:
    import sys

    return sys.stdin


def detect_format(name: str, text: str) -> Format:
    """Format from the file extension; for stdin or unknown extensions, from the first meaningful line."""
    suffix = Path(name).suffix.lower()
    if suffix in (".txt", ".list", ".urls"):
        return "txt"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("- ") or line == "-" or line.startswith("targets:") or line == "---":
            return "yaml"
        first_cell = re.split(r"[,;\t]", line, maxsplit=1)[0].strip().strip('"').lower()
        if first_cell in KNOWN_COLUMNS and re.search(r"[,;\t]", line):
            return "csv"
        return "txt"
    return "txt"


def parse_targets(text: str, fmt: Format, *, source: str = "-") -> TargetList:
    """Validate the entries of ``text`` in format ``fmt``. Never raises for a bad entry."""
    problems: list[TargetProblem] = []
    if fmt == "txt":
        entries = list(_txt_entries(text))
    elif fmt == "csv":
        entries = list(_csv_entries(text, problems))
    elif fmt == "yaml":
        entries = list(_yaml_entries(text, problems))
    else:  # pragma: no cover - click restricts the choice
        raise UsageError(f"unknown target list format: {fmt}")
    targets = _validate(entries, problems)
    problems.sort(key=lambda p: p.line)
    return TargetList(source=source, format=fmt, targets=tuple(targets), problems=tuple(problems))


def _txt_entries(text: str) -> Iterator[_Entry]:
    position = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        position += 1
        # Allow a trailing comment after the URL, separated by blanks: "https://x/y   # seized 2024-05-01".
        url = re.split(r"\s+#", line, maxsplit=1)[0].strip()
        yield _Entry(number, position, {"url": url})


def _csv_entries(text: str, problems: list[TargetProblem]) -> Iterator[_Entry]:
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    header: list[str] | None = None
    position = 0
    start = 1  # line where the row being read starts (rows may span lines inside quotes)
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in row]
                if "url" not in header:
                    problems.append(TargetProblem(line, "CSV header has no 'url' column; no target read"))
                    return
                continue
            position += 1
            if len(row) > len(header):
                problems.append(TargetProblem(line, f"{len(row)} cells but the header has {len(header)}"))
                continue
            fields = {name: cell.strip() for name, cell in zip(header, row, strict=False) if name}
            yield _Entry(line, position, fields)
    except csv.Error as exc:
        problems.append(TargetProblem(reader.line_num, f"CSV syntax error: {exc}; the rest is skipped"))


def _yaml_entries(text: str, problems: list[TargetProblem]) -> Iterator[_Entry]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problems.append(TargetProblem(line, f"YAML syntax error: {getattr(exc, 'problem', exc)}"))
        return
    finally:
        loader.dispose()
    if root is None:
        return
    if isinstance(root, yaml.MappingNode):  # also accept {targets: [...]} so a list can carry other keys
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "targets":
                root = value
                break
    if not isinstance(root, yaml.SequenceNode):
        problems.append(TargetProblem(root.start_mark.line + 1, "expected a YAML list of URLs or mappings"))
        return
    constructor = yaml.SafeLoader("")
    for position, node in enumerate(root.value, start=1):
        line = node.start_mark.line + 1
        try:
            value = constructor.construct_document(node)
        except yaml.YAMLError as exc:
            problems.append(TargetProblem(line, f"unreadable entry: {exc}"))
            continue
        if isinstance(value, str):
            yield _Entry(line, position, {"url": value.strip()})
        elif isinstance(value, dict):
            fields = {str(k).strip().lower(): "" if v is None else v for k, v in value.items()}
            yield _Entry(line, position, fields)
        else:
            problems.append(TargetProblem(line, "entry is neither a URL nor a mapping with a 'url' key"))


def normalize_url(url: str) -> str:
    """The form two URLs are compared in for duplicates: scheme and host lowercased, default port dropped."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    netloc = parts.netloc.rsplit("@", 1)[-1].lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, parts.fragment))


def check_url(url: str) -> str | None:
    """Why ``url`` cannot be captured, or None when it can."""
    if not url:
        return "no URL"
    if len(url) > MAX_URL:
        return f"URL longer than {MAX_URL} characters"
    if any(c.isspace() for c in url):
        return "URL contains blanks"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        return f"malformed URL ({exc})"
    if not parts.scheme:
        return "no scheme; write the full URL, e.g. https://" + url
    if parts.scheme.lower() not in SCHEMES:
        return f"scheme '{parts.scheme}:' is refused; only http and https pages are captured"
    if not parts.hostname:
        return "no host in URL"
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _validate(entries: list[_Entry], problems: list[TargetProblem]) -> list[Target]:
    seen_url: dict[str, int] = {}
    duplicates: dict[str, list[int]] = {}
    explicit_items = {_text(e.fields.get("item")) for e in entries} - {""}
    width = max(4, len(str(len(entries))))
    items: dict[str, int] = {}
    targets: list[Target] = []
    for entry in entries:
        url = _text(entry.fields.get("url"))
        reason = check_url(url)
        if reason:
            shown = f" ({url[:80]})" if url else ""
            problems.append(TargetProblem(entry.line, f"{reason}{shown}; skipped"))
            continue
        key = normalize_url(url)
        if key in seen_url:
            duplicates.setdefault(key, []).append(entry.line)
            continue
        item = _text(entry.fields.get("item"))
        if item and not ITEM_RE.match(item):
            problems.append(
                TargetProblem(entry.line, f"item id {item!r} must be 1-64 letters, digits, '.', '_' or '-'")
            )
            continue
        if not item:
            item = f"T{entry.position:0{width}d}"
            suffix = 2
            while item in explicit_items or item in items:  # never steal an id the list gives elsewhere
                item, suffix = f"T{entry.position:0{width}d}-{suffix}", suffix + 1
        if item in items:
            problems.append(TargetProblem(entry.line, f"item id {item} already used on line {items[item]}"))
            continue
        items[item] = entry.line
        seen_url[key] = entry.line
        extra = {k: _text(v) for k, v in entry.fields.items() if k not in KNOWN_COLUMNS and k and _text(v) != ""}
        targets.append(
            Target(
                url=url,
                item=item,
                line=entry.line,
                profile=_text(entry.fields.get("profile")) or None,
                note=_text(entry.fields.get("note")) or None,
                description=_text(entry.fields.get("description")) or None,
                extra=extra,
            )
        )
    for key, lines in duplicates.items():
        first = seen_url[key]
        also = ", ".join(str(n) for n in lines)
        problems.append(TargetProblem(first, f"duplicate URL also on line(s) {also}; captured once ({key})"))
    return targets
