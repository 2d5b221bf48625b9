"""The manifest validator, built once with the schema's local references inlined, judges as the schema itself does."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from evicap.bundle import layout
from evicap.bundle.hashing import digest_file
from evicap.bundle.manifest import CHECK, schema, validate
from evicap.bundle.model import Artifact
from evicap.errors import BundleError
from tests.sealed import manifest_for
from tests.variants import variants

WRONG = (None, 7, "text", [], {"unexpected": True})


def a_manifest(tmp_path: Path) -> dict[str, Any]:
    page = tmp_path / "dom.html"
    page.write_text("<!doctype html><title>Post 9</title>\n", encoding="utf-8")
    ended = datetime.now(timezone.utc)
    manifest = manifest_for([Artifact(layout.DOM, "dom", "text/html", digest_file(page))], "ab" * 32,
                            ended - timedelta(seconds=2), ended)  # fmt: skip
    manifest["target"]["redirects"] = [{"url": "http://example.test/9", "status": 301, "location": "/post/9"}]
    manifest["capture"]["warnings"] = [{"code": "slow", "message": "the page took long"}]
    return manifest


def judged(validator: jsonschema.Draft202012Validator, manifest: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(("/".join(map(str, e.absolute_path)), e.message) for e in validator.iter_errors(manifest))


def test_the_inlined_validator_finds_the_same_errors_as_the_schema(tmp_path: Path) -> None:
    manifest = a_manifest(tmp_path)
    as_written = jsonschema.Draft202012Validator(schema())
    inlined = CHECK.reference
    assert "$ref" not in str(inlined.schema)
    assert judged(inlined, manifest) == judged(as_written, manifest) == []
    broken = 0
    for changed in variants(manifest, WRONG):
        expected = judged(as_written, changed)
        assert judged(inlined, changed) == expected
        assert inlined.is_valid(changed) == (not expected)
        broken += bool(expected)
    assert broken > 100  # the variants do reach the referenced definitions


def test_a_bad_manifest_is_refused_naming_the_field(tmp_path: Path) -> None:
    manifest = a_manifest(tmp_path)
    manifest["target"]["redirects"][0]["location"] = 5
    with pytest.raises(BundleError, match=r"manifest field target/redirects/0/location: 5 is not of type"):
        validate(manifest)


def test_the_fast_validator_never_accepts_a_manifest_the_reference_refuses(tmp_path: Path) -> None:
    manifest = a_manifest(tmp_path)
    assert CHECK.surely_valid(manifest)  # the fast path is taken for a good manifest
    refused = 0
    for changed in variants(manifest, WRONG):
        expected = judged(CHECK.reference, changed)
        if CHECK.surely_valid(changed):
            assert expected == [], f"jsonschema-rs accepted a manifest python-jsonschema refuses: {expected}"
        else:
            refused += 1
            assert expected, "jsonschema-rs refused a manifest python-jsonschema accepts"
    assert refused > 100


def test_without_the_fast_validator_the_reference_decides_alone(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(CHECK.__dict__, "fast", None)  # as on a platform without a jsonschema-rs wheel
    manifest = a_manifest(tmp_path)
    validate(manifest)
    manifest["capture"]["warnings"][0]["code"] = 5
    with pytest.raises(BundleError, match=r"manifest field capture/warnings/0/code: 5 is not of type"):
        validate(manifest)


def test_a_valid_manifest_is_checked_without_importing_python_jsonschema(tmp_path: Path) -> None:
    manifest = a_manifest(tmp_path)
    script = (
        "import json, sys\n"
        "from evicap.bundle.manifest import validate\n"
        "validate(json.loads(sys.stdin.read()))\n"
        "print('jsonschema' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(manifest), capture_output=True,
                          text=True, check=True, timeout=120)
    assert done.stdout.strip() == "False"
