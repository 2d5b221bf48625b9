"""The manifest: every capture fact and every artifact's hashes, in one signed JSON file.

The schema (``evicap/schemas/manifest.schema.json``) is the contract; every manifest written is validated against it
before it is signed, and docs/bundle-format.md documents each field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from evicap.bundle.hashing import FileDigest, write_bytes
from evicap.bundle.layout import CHECKSUMS, MANIFEST
from evicap.bundle.model import Artifact
from evicap.errors import BundleError
from evicap.schema_check import SchemaCheck

FORMAT = "evicap-bundle"
FORMAT_VERSION = "1.1"
"""1.1: WARC record digests as lower-case hex tokens, no WARC-Refers-To-Target-URI outside revisit records.
verify still reads 1.0 bundles (padded base32 digests); docs/bundle-format.md, "Format versions"."""


def utc_iso(moment: datetime) -> str:
    """UTC time as ISO 8601 with millisecond precision and a literal Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def utc_now() -> str:
    """This moment, as utc_iso writes it."""
    return utc_iso(datetime.now(timezone.utc))


def local_zone(moment: datetime) -> tuple[str, str]:
    """The capturing machine's time zone name and UTC offset (+HH:MM) at `moment`."""
    local = moment.astimezone()
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return (local.tzname() or "UTC", f"{sign}{minutes // 60:02d}:{minutes % 60:02d}")


@cache
def schema() -> dict[str, Any]:
    text = resources.files("evicap").joinpath("schemas/manifest.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _inline_refs(node: Any, defs: dict[str, Any], within: tuple[str, ...] = ()) -> Any:
    """``node`` with every ``{"$ref": "#/$defs/NAME"}`` replaced by a copy of that definition (a recursive one is
    left as a reference). The same checks and messages, without the reference lookups that cost about a third of
    a manifest's validation (benchmarks/bench_batch.py validates two manifests a capture)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if len(node) == 1 and isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in defs and name not in within:
                return _inline_refs(defs[name], defs, (*within, name))
        return {key: _inline_refs(value, defs, within) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(item, defs, within) for item in node]
    return node


def _inline_schema_refs(loaded: dict[str, Any]) -> dict[str, Any]:
    inlined: dict[str, Any] = _inline_refs(loaded, loaded.get("$defs", {}))
    return inlined


# python-jsonschema, which explains a refused manifest, reads the schema with its local references inlined.
CHECK = SchemaCheck(schema, reference=_inline_schema_refs)


def validate(manifest: dict[str, Any]) -> None:
    """Raise BundleError naming the first field that breaks the schema."""
    errors = sorted(CHECK.errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise BundleError(f"manifest field {where}: {first.message}")


def checksums_text(artifacts: Iterable[Artifact]) -> bytes:
    """`sha256sum -c` lines, two spaces (text mode marker absent: binary-safe for GNU sha256sum)."""
    lines = []
    for artifact in artifacts:
        if "\n" in artifact.path or "\\" in artifact.path:
            raise BundleError(f"artifact path not representable in SHA256SUMS: {artifact.path!r}")
        lines.append(f"{artifact.digest.sha256}  {artifact.path}\n")
    return "".join(lines).encode("utf-8")


def write_checksums(bundle: Path, artifacts: Iterable[Artifact]) -> FileDigest:
    return write_bytes(bundle / CHECKSUMS, checksums_text(artifacts))


def serialize(manifest: dict[str, Any]) -> bytes:
    """The exact bytes that get signed: UTF-8, 2-space indent, key order as built, trailing newline."""
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_manifest(bundle: Path, manifest: dict[str, Any]) -> FileDigest:
    validate(manifest)
    return write_bytes(bundle / MANIFEST, serialize(manifest))
