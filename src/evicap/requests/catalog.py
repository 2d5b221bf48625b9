"""Instruments and providers, as the YAML files shipped in requests/data describe them.

The data is the law and the providers' published practice, not code: each file names its legal reference,
where it came from and what could not be confirmed. This module only loads and types it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from evicap.errors import UsageError

KINDS = ("preservation", "disclosure", "emergency", "removal")
LANGUAGES = ("en", "fr", "ar")


@dataclass(frozen=True)
class Section:
    id: str
    title: dict[str, str]
    fields: tuple[str, ...]
    only_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Instrument:
    id: str
    title: dict[str, str]
    kinds: tuple[str, ...]
    providers: tuple[str, ...]
    legal_reference: dict[str, str]
    """Per language (en always); see ``text``."""
    layout: dict[str, str]
    retention: dict[str, Any]
    deadline: dict[str, Any]
    sources: tuple[str, ...]
    not_confirmed: tuple[str, ...]
    required: tuple[str, ...]
    required_by_kind: dict[str, tuple[str, ...]]
    sections: tuple[Section, ...]

    @staticmethod
    def text(value: dict[str, str], lang: str) -> str:
        return value.get(lang) or value["en"]

    def required_for(self, kind: str) -> tuple[str, ...]:
        return self.required + self.required_by_kind.get(kind, ())


@dataclass(frozen=True)
class IdentifierRule:
    pattern: str
    form: str


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    platforms: tuple[str, ...]
    jurisdiction: tuple[str, ...]
    entities: dict[str, str]
    portal: str
    identifiers: dict[str, IdentifierRule]
    accepts_any: tuple[str, ...]
    document: tuple[str, ...]
    retention: dict[str, Any]
    emergency: dict[str, Any]
    sources: tuple[str, ...]
    not_confirmed: tuple[str, ...]

    def serves(self, platform: str) -> bool:
        return "*" in self.platforms or platform in self.platforms


def _load(folder: str, name: str) -> dict[str, Any]:
    file = resources.files("evicap.requests") / "data" / folder / f"{name}.yaml"
    if not file.is_file():
        known = ", ".join(names(folder))
        raise UsageError(f"unknown {folder[:-1]} {name!r}", hint=f"one of: {known}")
    data: dict[str, Any] = yaml.safe_load(file.read_text("utf-8"))
    return data


def names(folder: str) -> list[str]:
    root = resources.files("evicap.requests") / "data" / folder
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


@cache
def instrument(name: str) -> Instrument:
    d = _load("instruments", name)
    sections = tuple(Section(s["id"], s["title"], tuple(s["fields"]), tuple(s.get("only_kinds", ())))
                     for s in d["sections"])
    def per_language(value: str | dict[str, str]) -> dict[str, str]:
        return {"en": value} if isinstance(value, str) else value

    return Instrument(d["id"], d["title"], tuple(d["kinds"]), tuple(d["providers"]),
                      per_language(d["legal_reference"]), per_language(d["layout"]), d.get("retention") or {},
                      d.get("deadline") or {}, tuple(d.get("sources", ())),
                      tuple(d.get("not_confirmed") or ()), tuple(d["required"]),
                      {k: tuple(v) for k, v in (d.get("required_by_kind") or {}).items()}, sections)


@cache
def provider(name: str) -> Provider:
    d = _load("providers", name)
    rules = {k: IdentifierRule(v["pattern"], v["form"]) for k, v in d["identifiers"].items()}
    return Provider(d["id"], d["name"], tuple(d["platforms"]), tuple(d["jurisdiction"]), d.get("entities") or {},
                    d["portal"], rules, tuple(d["accepts_any"]), tuple(d.get("document", ())),
                    d.get("retention") or {}, d.get("emergency") or {}, tuple(d.get("sources", ())),
                    tuple(d.get("not_confirmed") or ()))


@cache
def labels() -> dict[str, Any]:
    file = resources.files("evicap.requests") / "data" / "labels.yaml"
    data: dict[str, Any] = yaml.safe_load(file.read_text("utf-8"))
    return data


def schema(name: str) -> dict[str, Any]:
    import json

    file = resources.files("evicap.requests") / "schemas" / f"{name}.schema.json"
    data: dict[str, Any] = json.loads(file.read_text("utf-8"))
    return data
