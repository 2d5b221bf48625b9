"""request.html and request.pdf through the shared document machinery (evicap.render): no script, CSP, fonts
for Arabic, right-to-left layout for ``ar``. Labels come from requests/data/labels.yaml, so the wording of a
legal form stays data; the layout is the instrument's list of sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evicap.render import Document, pdf_files
from evicap.requests.catalog import instrument, labels

TEMPLATES = Path(__file__).with_name("templates")
_TABLES = {"identifiers", "captures", "bundles"}
_NESTED = {"requesting_authority", "emergency", "previous_preservation", "previous_mla"}
_LISTS = {"provider_requirements", "content_location"}


def _label(key: str, lang: str) -> str:
    entry = labels()["fields"].get(key)
    return entry.get(lang, entry["en"]) if entry else key


def _phrase(key: str, lang: str) -> str:
    entry = labels()["phrases"][key]
    return str(entry.get(lang, entry["en"]))


def _text(key: str, value: Any, lang: str) -> str:
    if isinstance(value, bool):
        return _phrase("yes" if value else "no", lang)
    if key == "status":
        return _phrase("extension" if value == "extension" else "new", lang)
    if key == "kind":
        return _phrase("kind_emergency" if value == "emergency" else value, lang)
    if key == "date_range":
        return f"{value.get('from')} 00:00:00 UTC — {value.get('to')} 23:59:59 UTC"
    if key == "retention":
        if not value.get("days"):
            return str(value.get("note") or _phrase("not_set", lang))
        text = f"{value['days']} {_phrase('days', lang)}"
        if value.get("extension_days"):
            text += f", {_phrase('extendable', lang)} {value['extension_days']} {_phrase('days', lang)}"
        return text + (f" ({value['note']})" if value.get("note") else "")
    if key == "deadline":
        amount = f"{value['hours']} {_phrase('hours', lang)}" if "hours" in value else \
            f"{value['days']} {_phrase('days', lang)}"
        return f"{amount}: {value.get('note', '')}"
    return str(value)


def _row(key: str, value: Any, lang: str) -> dict[str, Any]:
    row: dict[str, Any] = {"key": key, "label": _label(key, lang)}
    if value is None or value == "" or value == []:
        return {**row, "type": "text", "text": _phrase("not_set", lang)}
    if key == "identifiers":
        kinds = labels()["kinds"]
        entries = [{**i, "kind_label": kinds.get(i["kind"], {}).get(lang, i["kind"])} for i in value]
        return {**row, "type": key, "entries": entries}
    if key in _TABLES:
        return {**row, "type": key, "entries": value}
    if key in _NESTED and isinstance(value, dict):
        return {**row, "type": "pairs", "pairs": [(_label(k, lang), str(v)) for k, v in value.items()]}
    if key == "data_categories":
        cats = labels()["categories"]
        return {**row, "type": "list", "entries": [cats[c].get(lang, cats[c]["en"]) if c in cats else c for c in value]}
    if key == "tco_reasons":
        reasons = labels()["tco_reasons"]
        return {**row, "type": "list", "entries": [reasons[r].get(lang, reasons[r]["en"]) for r in value]}
    if key in _LISTS:
        return {**row, "type": "list", "entries": [str(v) for v in value]}
    return {**row, "type": "text", "text": _text(key, value, lang)}


def document_model(request: dict[str, Any]) -> dict[str, Any]:
    lang, kind = request["language"], request["kind"]
    inst = instrument(request["instrument"]["id"])
    values = {k: v["value"] for k, v in request["fields"].items()}
    sections = []
    for section in inst.sections:
        if section.only_kinds and kind not in section.only_kinds:
            continue
        rows = [_row(key, values.get(key), lang) for key in section.fields
                if key in values or key in inst.required_for(kind)]
        if rows:
            sections.append({"title": section.title.get(lang, section.title["en"]), "rows": rows})
    return {
        "request": request,
        "title": request["instrument"]["title"],
        "sections": sections,
        "phrases": {k: _phrase(k, lang) for k in ("draft", "legal_reference", "layout", "signature", "record",
                                                   "captured")},
    }


def render_html(request: dict[str, Any]) -> str:
    return Document(request["language"], [TEMPLATES]).render("request.html", document_model(request))


def render_pdf(request: dict[str, Any], html: Path, pdf: Path, *, browser_path: str | None = None) -> None:
    doc = Document(request["language"], [TEMPLATES])
    header = doc.pdf_header([f"{request['id']} · {request['instrument']['id']} · {request['provider']['name']}"])
    pdf_files([(html, pdf, header)], paper="A4", browser_path=browser_path)
