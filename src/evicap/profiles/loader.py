"""Load site profiles from YAML, validate them against the schema, and pick one for a URL.

Profiles are data. A bad file is reported with the file, the key path, the line and what the schema
expected, because the person fixing it is an investigator editing YAML, not a developer reading a traceback.
Built-in profiles ship in the package (``evicap/builtin_profiles``, a link to the top-level ``profiles/``);
user profiles in ``<config dir>/profiles/*.yaml`` override built-ins of the same name.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from evicap.config import load_config
from evicap.errors import ProfileError
from evicap.schema_check import SchemaCheck

if TYPE_CHECKING:
    import jsonschema

GENERIC = "generic"
AUTO = "auto"


@dataclass(frozen=True)
class Step:
    """One step of a profile, as written in the file."""

    kind: str  # wait, scroll, click, dismiss, hide, type, press, screenshot, extract
    params: dict[str, Any] = field(default_factory=dict)
    line: int | None = None  # line in the profile file, for error messages and `profiles show`

    @property
    def label(self) -> str:
        """Short human name used in the manifest's step list."""
        given = self.params.get("label")
        if given:
            return str(given)
        for key in ("selector", "text", "extractor", "key", "name"):
            value = self.params.get(key)
            if value:
                shown = value if isinstance(value, str) else "|".join(map(str, value))
                return f"{self.kind} {shown}"[:120]
        return self.kind


@dataclass(frozen=True)
class Profile:
    """A validated profile: where it came from (path + SHA-256 go into the manifest) and what it does."""

    name: str
    path: Path
    sha256: str  # of the file's exact bytes
    description: str = ""
    domains: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    walls: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    builtin: bool = False

    def matches(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in self.domains)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "sha256": self.sha256, "builtin": self.builtin}


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("evicap").joinpath("schemas/profile.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


_CHECK = SchemaCheck(_schema)


@cache
def builtin_profiles_dir() -> Path:
    """Where the shipped profiles are (a symlink to the repository's top-level profiles/ in a checkout); fixed for
    the process, so asked of importlib.resources once."""
    return Path(str(resources.files("evicap").joinpath("builtin_profiles")))


def user_profiles_dir() -> Path:
    """``profiles_dir`` from the config (file or EVICAP_PROFILES_DIR), else ``<config dir>/profiles``."""
    config = load_config()
    return config.profiles_dir or config.config_dir / "profiles"


def _line_map(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> None:
    """Record the 1-based line of every key path, from the composer's node marks."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _line_map(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), lines)


def _key_path(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _leaf(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """The most specific error under a oneOf/anyOf: the one deepest in the file (e.g. the bad option's key)."""
    while error.context:
        error = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
    return error


def _describe(error: jsonschema.ValidationError) -> str:
    """What was expected, in words an editor of the file understands."""
    if "propertyNames" in error.absolute_schema_path:
        return f"unknown step {error.instance!r}; the step kinds are " + ", ".join(error.validator_value)
    return error.message


# libyaml's parser when PyYAML was built with it: about ten times faster than the pure-Python one, with which
# parsing the built-in profiles cost about 0.1 s of the first capture of a process.
_FAST_LOADER: type[Any] | None = getattr(yaml, "CSafeLoader", None)


def _compose_and_construct(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (its marks give the line numbers) and the data built from it as ``yaml.safe_load`` builds it,
    in one parse. Text the fast parser refuses is parsed again by the pure-Python one, so that a syntax error reads
    (and names its line) the same with or without libyaml."""
    if _FAST_LOADER is not None:
        try:
            return _one_parse(_FAST_LOADER, text)
        except yaml.YAMLError:
            pass
    return _one_parse(yaml.SafeLoader, text)


def _one_parse(loader_class: type[Any], text: str) -> tuple[yaml.Node | None, Any]:
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        return root, (None if root is None else loader.construct_document(root))
    finally:
        loader.dispose()


def parse_profile(text: str, path: Path, *, builtin: bool = False) -> Profile:
    """Validate a profile's text; ProfileError names file, key path and line on any problem."""
    try:
        root, data = _compose_and_construct(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}" if mark else ""
        raise ProfileError(
            f"{path}{where}: not valid YAML: {exc.problem or exc}", hint="fix the YAML syntax at that line"
        ) from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    lines: dict[tuple[Any, ...], int] = {}
    if root is not None:
        _line_map(root, (), lines)
    errors = sorted(_CHECK.errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors:
        error = _leaf(errors[0])
        key = tuple(error.absolute_path)
        line = next((lines[key[:n]] for n in range(len(key), -1, -1) if key[:n] in lines), None)
        where = f":{line}" if line else ""
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ProfileError(
            f"{path}{where}: at {_key_path(key)}: {_describe(error)}{more}",
            hint="see docs/profiles.md for the profile format",
        )
    steps = []
    for index, raw in enumerate(data.get("steps") or []):
        ((kind, params),) = raw.items()
        steps.append(Step(kind, dict(params or {}), lines.get(("steps", index))))
    return Profile(
        name=data["name"],
        path=path,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        description=str(data.get("description", "")).strip(),
        domains=tuple(data.get("domains") or ()),
        steps=tuple(steps),
        walls=dict(data.get("walls") or {}),
        builtin=builtin,
    )


# Parsed profiles by (path, exact bytes): YAML parsing in pure Python costs tens of milliseconds a file, and a batch
# resolves a profile for every target on the event loop. Keyed by content, so an edited file is parsed afresh.
_PARSED: dict[tuple[str, bool, bytes], Profile] = {}


def load_profile_file(path: Path, *, builtin: bool = False) -> Profile:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror or exc}") from exc
    key = (str(path), builtin, raw)
    cached = _PARSED.get(key)
    if cached is None:
        cached = _PARSED[key] = _parse_file(path, raw, builtin)
    return cached


def _parse_file(path: Path, raw: bytes, builtin: bool) -> Profile:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text", hint="save the profile as UTF-8") from exc
    profile = parse_profile(text, path, builtin=builtin)
    # The digest must be of the exact bytes on disk, whatever their line endings.
    return Profile(**{**profile.__dict__, "sha256": hashlib.sha256(raw).hexdigest()})


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def available_profiles() -> dict[str, Path]:
    """Profile name -> file, built-ins first, user files overriding by name (name taken from the file stem)."""
    found: dict[str, Path] = {}
    for directory in (builtin_profiles_dir(), user_profiles_dir()):
        for path in _files(directory):
            found[path.stem] = path
    return found


def load_profile(name: str) -> Profile:
    """Load a profile by name (user profiles win) or by path to a YAML file."""
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        return load_profile_file(Path(name))
    return _load_named(name, available_profiles())


def _load_named(name: str, files: dict[str, Path]) -> Profile:
    if name not in files:
        known = ", ".join(sorted(files)) or "none"
        raise ProfileError(f"no profile named {name!r}", hint=f"known profiles: {known}")
    path = files[name]
    profile = load_profile_file(path, builtin=path.parent == builtin_profiles_dir())
    if profile.name != name:
        raise ProfileError(f"{path}: at name: the file is {name}.yaml but says name: {profile.name}")
    return profile


def resolve_profile(name: str | None, url: str) -> Profile:
    """The profile a capture of ``url`` runs: the named one, or for ``auto`` the first whose domains match.

    The profile directories are listed once per call (not once per candidate: ``auto`` tries every profile)."""
    if name and name != AUTO:
        return load_profile(name)
    host = urlsplit(url).hostname or ""
    files = available_profiles()
    for candidate in sorted(files):
        if candidate == GENERIC:
            continue
        profile = _load_named(candidate, files)
        if profile.matches(host):
            return profile
    return _load_named(GENERIC, files)
