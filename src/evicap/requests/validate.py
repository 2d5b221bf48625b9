"""Everything wrong with a request, found before anything is written.

Providers refuse requests for a few recurring reasons (SIRIUS reports): wrong identifiers, overly broad
requests, no valid legal basis, missing facts. Each check here returns problems as sentences that say what to
fix; ``RequestInvalid`` carries all of them at once, so the investigator fixes the file in one pass.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import jsonschema

from evicap.errors import UsageError
from evicap.requests.catalog import Instrument, Provider, labels, schema

MAX_RANGE_DAYS = 366
MIN_SUMMARY_WORDS = 12
CATEGORIES = ("subscriber_data", "identification_data", "traffic_data", "content_data")
_VAGUE = re.compile(r"^\s*(all|any|every(thing)?|all data|all records|all information|everything available|"
                    r"tout|toutes|كل)\b", re.I)


class RequestInvalid(UsageError):
    """The request cannot be drafted as given; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"request not drafted, {len(problems)} problem(s): " + "; ".join(problems),
                         hint="fix them in the --from file (keys: docs/requests.md) and run again")


def check_input_schema(data: Any, where: str) -> None:
    """The --from file against request-input.schema.json; every error named by its key."""
    validator = jsonschema.Draft202012Validator(schema("request-input"))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        problems = [f"{where}: {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors]
        raise RequestInvalid(problems)


def lookup(fields: Mapping[str, Any], dotted: str) -> Any:
    value: Any = fields
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def missing(fields: Mapping[str, Any], required: tuple[str, ...]) -> list[str]:
    out = []
    for key in required:
        value = lookup(fields, key)
        if value is None or value == "" or value == [] or value == {}:
            out.append(key)
    return out


def check_date_range(value: Any, today: dt.date) -> list[str]:
    if not isinstance(value, Mapping) or not value.get("from") or not value.get("to"):
        return ["date_range needs both from and to (ISO dates): an open range is too broad"]
    try:
        start, end = dt.date.fromisoformat(value["from"]), dt.date.fromisoformat(value["to"])
    except (TypeError, ValueError):
        return [f"date_range {value.get('from')}..{value.get('to')}: not ISO dates (YYYY-MM-DD)"]
    problems = []
    if start > end:
        problems.append(f"date_range from {start} is after to {end}")
    if end > today + dt.timedelta(days=1):
        problems.append(f"date_range ends {end}, in the future: records cannot be asked for before they exist")
    span = (end - start).days
    if span > MAX_RANGE_DAYS:
        problems.append(f"date_range {start}..{end} spans {span} days: too broad (at most {MAX_RANGE_DAYS}); "
                        "narrow it to the period the facts concern")
    return problems


def check_categories(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        return [f"data_categories: name at least one of {', '.join(CATEGORIES)}"]
    problems = []
    for item in value:
        if not isinstance(item, str) or _VAGUE.match(item):
            problems.append(f"data_categories {item!r}: too broad; name the categories ({', '.join(CATEGORIES)})")
        elif item not in CATEGORIES:
            problems.append(f"data_categories {item!r}: unknown; use {', '.join(CATEGORIES)}")
    return problems


def check_wording(fields: Mapping[str, Any]) -> list[str]:
    problems = []
    summary = fields.get("summary_of_facts")
    if isinstance(summary, str) and len(summary.split()) < MIN_SUMMARY_WORDS:
        problems.append(f"summary_of_facts has {len(summary.split())} words: too vague to show how the data relate "
                        f"to the offence (write at least {MIN_SUMMARY_WORDS})")
    for key in ("offence", "necessity", "legal_basis"):
        value = fields.get(key)
        if isinstance(value, str) and _VAGUE.match(value):
            problems.append(f"{key} {value!r}: too vague")
    reasons = fields.get("tco_reasons")
    if reasons is not None and not reasons:
        problems.append(f"tco_reasons: name at least one of {', '.join(labels()['tco_reasons'])}")
    return problems


def usable_identifiers(identifiers: list[dict[str, Any]], provider: Provider) -> tuple[list[dict[str, Any]], list[str]]:
    """The identifiers this provider accepts (its platform, its kinds, its forms), and what is wrong."""
    kept, problems = [], []
    for ident in identifiers:
        if not provider.serves(ident["platform"]):
            continue
        rule = provider.identifiers.get(ident["kind"])
        if rule is None:
            continue
        if not re.search(rule.pattern, ident["value"]):
            problems.append(f"identifier {ident['value']!r} ({ident['kind']}) is not in the form {provider.id} "
                            f"accepts: {rule.form}")
            continue
        kept.append(ident)
    if not any(i["kind"] in provider.accepts_any for i in kept):
        found = ", ".join(sorted({f"{i['platform']} {i['kind']}" for i in identifiers})) or "none"
        problems.append(f"no identifier {provider.id} acts on was found in the bundles: it needs one of "
                        f"{', '.join(provider.accepts_any)} ({', '.join(provider.platforms)}); found: {found}")
    return kept, problems


def applicability(instrument: Instrument, provider: Provider, kind: str) -> list[str]:
    problems = []
    if kind not in instrument.kinds:
        problems.append(f"instrument {instrument.id} is for {', '.join(instrument.kinds)} requests, not {kind}")
    if provider.id not in instrument.providers:
        problems.append(f"instrument {instrument.id} does not apply to provider {provider.id} "
                        f"(applies to: {', '.join(instrument.providers)})")
    return problems
