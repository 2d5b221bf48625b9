"""The shipped instruments and providers hold together, and the validation rules say what is wrong."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from evicap.requests import validate
from evicap.requests.catalog import KINDS, LANGUAGES, instrument, labels, names, provider, schema

INPUT_KEYS = set(schema("request-input")["properties"])
PREFILLED = {"date", "reference", "kind", "addressee", "provider_portal", "provider_requirements", "identifiers",
             "captures", "bundles", "retention", "deadline", "emergency_criteria", "content_location"}


@pytest.mark.parametrize("name", names("instruments"))
def test_instrument_file_is_complete(name: str) -> None:
    inst = instrument(name)
    assert inst.id == name and inst.sources and inst.legal_reference and inst.layout
    assert set(inst.kinds) <= set(KINDS)
    assert all(p in names("providers") for p in inst.providers)
    for lang in LANGUAGES:
        assert inst.title[lang] and inst.legal_reference[lang] and inst.layout[lang]
        assert all(section.title[lang] for section in inst.sections)
    for section in inst.sections:
        for key in section.fields:
            assert key in INPUT_KEYS | PREFILLED, f"{name}: section {section.id} shows unknown field {key}"
            assert all(labels()["fields"][key][lang] for lang in LANGUAGES), key
    for kind in inst.kinds:
        for key in inst.required_for(kind):
            assert key.split(".")[0] in INPUT_KEYS | PREFILLED, f"{name}: requires unknown {key}"


@pytest.mark.parametrize("name", names("providers"))
def test_provider_file_is_complete(name: str) -> None:
    prov = provider(name)
    assert prov.id == name and prov.portal and prov.sources and prov.platforms
    assert set(prov.accepts_any) <= set(prov.identifiers)
    for rule in prov.identifiers.values():
        re.compile(rule.pattern)
        assert rule.form


def _ident(kind: str, value: str, platform: str = "x") -> dict[str, str]:
    return {"platform": platform, "kind": kind, "value": value, "record_id": "<urn:uuid:0>", "uri": "u"}


def test_identifiers_in_the_wrong_form_are_named() -> None:
    kept, problems = validate.usable_identifiers(
        [_ident("username", "@a_name_far_too_long_for_x"), _ident("account_id", "12345"),
         _ident("channel_id", "UCxyz", "youtube")], provider("x"))
    assert [i["value"] for i in kept] == ["12345"]
    assert problems == ["identifier '@a_name_far_too_long_for_x' (username) is not in the form x accepts: "
                        "@username with its URL https://x.com/username"]


def test_only_identifiers_of_the_providers_platforms_count() -> None:
    kept, problems = validate.usable_identifiers([_ident("channel_id", "UC0123456789abcdefghijkl", "youtube")],
                                                 provider("meta"))
    assert kept == [] and "no identifier meta acts on" in problems[0] and "youtube channel_id" in problems[0]


def test_date_range_rules() -> None:
    today = dt.date(2026, 12, 1)
    assert validate.check_date_range({"from": "2026-01-01", "to": "2026-06-30"}, today) == []
    assert "open range is too broad" in validate.check_date_range({"from": "2026-01-01"}, today)[0]
    assert "not ISO dates" in validate.check_date_range({"from": "1/1/2026", "to": "2026-02-01"}, today)[0]
    assert "spans 730 days" in validate.check_date_range({"from": "2024-12-01", "to": "2026-12-01"}, today)[0]


def test_categories_and_wording() -> None:
    assert validate.check_categories(["subscriber_data", "content_data"]) == []
    assert "too broad" in validate.check_categories(["everything"])[0]
    assert "unknown" in validate.check_categories(["passwords"])[0]
    assert "too vague" in validate.check_wording({"summary_of_facts": "He posted bad things online."})[0]
    assert validate.check_wording({"offence": "all"}) == ["offence 'all': too vague"]
