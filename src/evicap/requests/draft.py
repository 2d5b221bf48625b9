"""Draft a request: validate everything, then write request.json, request.html, request.pdf, SHA256SUMS.

Order matters: all checks run before anything is written (``build_request`` raises ``RequestInvalid`` with
every problem); the files are made in a staging directory next to the output and renamed into place; only then
does each bundle's custody log get a ``requested`` event naming the request and the hash of request.json.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from evicap.bundle import layout
from evicap.errors import UsageError
from evicap.requests import prefill, validate
from evicap.requests.catalog import Instrument, Provider, instrument, provider, schema
from evicap.seal.custody import Actor, append_event
from evicap.seal.keys import Signer

FORMAT = "evicap-request"
FORMAT_VERSION = 1
REQUEST_JSON = "request.json"
REQUEST_HTML = "request.html"
REQUEST_PDF = "request.pdf"
SUMS = "SHA256SUMS"
_POST_KINDS = ("post_id", "video_id", "message_id")
_EU = ("eu-epoc", "eu-epoc-pr", "eu-tco-removal")


@dataclass(frozen=True)
class RequestSpec:
    """What the investigator asked for on the command line, plus the --from file and the config's authority."""

    kind: str
    instrument: str
    provider: str
    bundles: tuple[Path, ...]
    inputs: Mapping[str, Any] = field(default_factory=dict)
    input_file: str | None = None
    authority: Mapping[str, str] = field(default_factory=dict)
    """requesting_authority from the config file."""
    language: str = "en"
    prompted: tuple[str, ...] = ()
    """Keys answered at a terminal prompt rather than in the --from file."""
    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())


def _entity(inst: Instrument, prov: Provider, inputs: Mapping[str, Any]) -> tuple[str, str]:
    wanted = inputs.get("provider_entity") or ("eu" if inst.id in _EU else "us" if inst.id == "us-2703f" else None)
    if wanted and wanted in prov.entities:
        return wanted, prov.entities[wanted]
    if prov.entities:
        key = next(iter(prov.entities))
        return key, prov.entities[key]
    return "", str(inputs.get("provider_contact") or prov.name)


def _retention(inst: Instrument, prov: Provider, kind: str) -> dict[str, Any] | None:
    if kind not in ("preservation", "removal"):
        return None
    data = prov.retention if inst.retention.get("from_provider") else inst.retention
    if not data.get("days"):
        return {"days": None, "note": data.get("note") or "no preservation period published"}
    notice = prov.retention.get("renew_notice_days", 7)
    return {"days": data["days"], "extension_days": data.get("extension_days"), "renew_notice_days": notice,
            "note": data.get("note")}


def _fields(spec: RequestSpec, inst: Instrument, prov: Provider, bundles: list[prefill.BundleFacts],
            request_id: str) -> dict[str, dict[str, Any]]:
    """Every value of the request with where it came from."""
    given = {"from": "input", "file": spec.input_file or "prompt"}
    fields: dict[str, dict[str, Any]] = {}
    authority: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    for key, value in spec.authority.items():
        authority[key], sources[key] = value, {"from": "config"}
    for key, value in (spec.inputs.get("requesting_authority") or {}).items():
        authority[key], sources[key] = value, given
    fields["requesting_authority"] = {"value": authority, "source": {"from": "config+input", "keys": sources}}
    for key, value in spec.inputs.items():
        if key != "requesting_authority":
            source = {"from": "input", "file": "prompt"} if key in spec.prompted else given
            fields[key] = {"value": value, "source": source}
    catalog = {"from": "catalog", "file": f"providers/{prov.id}.yaml"}
    fields["date"] = {"value": spec.today.isoformat(), "source": {"from": "derived", "how": "today (UTC)"}}
    fields["reference"] = {"value": request_id, "source": {"from": "derived", "how": "request id"}}
    fields["kind"] = {"value": spec.kind, "source": {"from": "command line"}}
    fields.setdefault("status", {"value": "new", "source": {"from": "derived", "how": "default"}})
    entity_key, entity = _entity(inst, prov, spec.inputs)
    fields["addressee"] = {"value": entity, "source": {**catalog, "entity": entity_key or "contact"}}
    fields["provider_portal"] = {"value": prov.portal, "source": catalog}
    fields["provider_requirements"] = {"value": list(prov.document), "source": catalog}
    if spec.kind == "emergency":
        fields["emergency_criteria"] = {"value": prov.emergency.get("criteria"), "source": catalog}
    if "date_range" not in fields:
        fields["date_range"] = {"value": prefill.default_date_range(bundles),
                                "source": {"from": "derived", "how": "30 days before the first capture to the last"}}
    retention = _retention(inst, prov, spec.kind)
    if retention is not None:
        fields["retention"] = {"value": retention, "source": {"from": "catalog", "file": f"instruments/{inst.id}.yaml"}}
    deadline = inst.deadline.get(spec.kind)
    if deadline:
        fields["deadline"] = {"value": deadline, "source": {"from": "catalog", "file": f"instruments/{inst.id}.yaml"}}
    return fields


def _identifiers(bundles: list[prefill.BundleFacts], prov: Provider) -> tuple[list[dict[str, Any]], list[str]]:
    found = []
    for b in bundles:
        for number, ident in enumerate(b.identifiers):
            pointer = f"/identifiers/{number}" if b.identifiers_from == "manifest" else "artifacts/capture.warc.gz"
            found.append({**ident, "source": b.source(pointer, record_id=ident["record_id"], uri=ident["uri"],
                                                       read_from=b.identifiers_from)})
    kept, problems = validate.usable_identifiers(found, prov)
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for ident in kept:
        unique.setdefault((ident["kind"], ident["value"]), ident)
    return list(unique.values()), problems


def build_request(spec: RequestSpec) -> dict[str, Any]:
    """The whole request.json, or RequestInvalid naming every problem. Writes nothing."""
    inst, prov = instrument(spec.instrument), provider(spec.provider)
    problems = validate.applicability(inst, prov, spec.kind)
    if problems:
        raise validate.RequestInvalid(problems)
    if not spec.bundles:
        raise UsageError("give at least one bundle")
    bundles = [prefill.load_bundle(path) for path in spec.bundles]
    request_id = "REQ-" + spec.today.strftime("%Y%m%d") + "-" + uuid.uuid4().hex[:8]
    fields = _fields(spec, inst, prov, bundles, request_id)
    values = {k: v["value"] for k, v in fields.items()}
    identifiers, problems = _identifiers(bundles, prov)
    problems = [f"missing {key}" for key in validate.missing(values, inst.required_for(spec.kind))] + problems
    problems += validate.check_date_range(values.get("date_range"), spec.today)
    if "data_categories" in inst.required_for(spec.kind) or "data_categories" in values:
        problems += validate.check_categories(values.get("data_categories"))
    problems += validate.check_wording(values)
    if values.get("status") == "extension" and not values.get("previous_reference"):
        problems.append("missing previous_reference (status is extension)")
    if problems:
        raise validate.RequestInvalid(problems)
    zone_name = values["requesting_authority"].get("time_zone")
    captures = prefill.captures(bundles, zone_name)
    fields["identifiers"] = {"value": identifiers, "source": {"from": "bundle", "each": "see its source"}}
    fields["captures"] = {"value": captures, "source": {"from": "bundle", "each": "see its source"}}
    fields["bundles"] = {"value": [{"bundle": b.name, "capture_id": b.capture_id, "manifest_sha256": b.manifest_sha256,
                                    "status": b.status} for b in bundles],
                         "source": {"from": "bundle", "pointer": "sha256 of manifest.json"}}
    if spec.kind == "removal":
        urls = [i["form"] for i in identifiers if i["kind"] in _POST_KINDS and i.get("form")]
        urls += [i["value"] for i in identifiers if i["kind"] == "canonical_url"]
        how = "post URLs and canonical URLs read from the WARC"
        fields["content_location"] = {"value": list(dict.fromkeys(urls)) or [c["url"] for c in captures],
                                      "source": {"from": "bundle", "how": how}}
    request = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "id": request_id,
        "kind": spec.kind,
        "language": spec.language,
        "drafted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "instrument": {"id": inst.id, "title": inst.title.get(spec.language, inst.title["en"]),
                       "legal_reference": inst.text(inst.legal_reference, spec.language),
                       "layout": inst.text(inst.layout, spec.language), "sources": list(inst.sources),
                       "not_confirmed": list(inst.not_confirmed)},
        "provider": {"id": prov.id, "name": prov.name, "portal": prov.portal, "document": list(prov.document),
                     "sources": list(prov.sources), "not_confirmed": list(prov.not_confirmed)},
        "fields": fields,
    }
    jsonschema.Draft202012Validator(schema("request")).validate(request)
    return request


@dataclass(frozen=True)
class DraftResult:
    request_id: str
    directory: Path
    files: dict[str, str]
    """File name -> SHA-256."""
    custody: list[str]
    """Bundles whose custody log got the ``requested`` event."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for piece in iter(lambda: handle.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def write_request(request: dict[str, Any], output: Path, bundles: tuple[Path, ...], *, pdf: bool,
                  signer: Signer, actor: Actor, browser_path: str | None = None) -> DraftResult:
    """Render into a staging directory, publish it as ``output``, then log the request in each bundle."""
    from evicap.requests.render import render_html, render_pdf

    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise UsageError(f"{output} already exists and is not empty", hint="choose a new --output directory")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.parent / f".staging-request-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        (staging / REQUEST_JSON).write_text(json.dumps(request, indent=2, ensure_ascii=False) + "\n", "utf-8")
        (staging / REQUEST_HTML).write_text(render_html(request), "utf-8")
        if pdf:
            render_pdf(request, staging / REQUEST_HTML, staging / REQUEST_PDF, browser_path=browser_path)
        files = {p.name: _sha256(p) for p in sorted(staging.iterdir())}
        (staging / SUMS).write_text("".join(f"{h}  {n}\n" for n, h in files.items()), "utf-8")
        if output.exists():
            output.rmdir()
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logged = []
    for bundle in bundles:
        manifest_sha256 = hashlib.sha256((bundle / layout.MANIFEST).read_bytes()).hexdigest()
        details = {"request_id": request["id"], "kind": request["kind"], "instrument": request["instrument"]["id"],
                   "provider": request["provider"]["id"], "output": str(output.resolve()),
                   "request_sha256": files[REQUEST_JSON]}
        append_event(bundle / layout.CUSTODY, signer, actor, "requested", details, manifest_sha256)
        logged.append(str(bundle))
    return DraftResult(request["id"], output, files, logged)
