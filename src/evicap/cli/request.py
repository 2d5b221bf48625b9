"""`evicap request` (draft a cross-border request from bundles) and `evicap requests list|sent`."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click
import yaml
from rich.table import Table

from evicap.cli.output import Output
from evicap.cli.seal import _actor_name, _signer
from evicap.config import load_config
from evicap.errors import UsageError
from evicap.requests.catalog import KINDS, LANGUAGES, instrument, names
from evicap.requests.validate import RequestInvalid, check_input_schema

# What a prompt may ask when no --from file gives it (text answers only; lists are comma-separated).
_PROMPTABLE = ("case_reference", "offence", "summary_of_facts", "legal_basis", "necessity", "follow_up",
               "requested_authority", "preferred_channel", "prosecution_office", "court_case_numbers",
               "issuing_state", "reasons")


def _read_from(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise UsageError(f"{path}{f' line {mark.line + 1}' if mark else ''}: YAML syntax error") from None
    data = data or {}
    # YAML reads 2026-11-01 as a date; the schema wants the ISO text.
    if isinstance(data, dict) and isinstance(data.get("date_range"), dict):
        data["date_range"] = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in data["date_range"].items()}
    for key in ("previous_preservation", "previous_mla"):
        if isinstance(data, dict) and isinstance(data.get(key), dict) and isinstance(data[key].get("date"), dt.date):
            data[key]["date"] = data[key]["date"].isoformat()
    check_input_schema(data, str(path))
    return dict(data)


def _interactive() -> bool:
    return sys.stdin.isatty()


def _prompt_missing(spec_inputs: dict[str, Any], error: RequestInvalid) -> list[str]:
    """Ask at a terminal for the text fields the error says are missing; returns the keys asked."""
    asked = []
    for problem in error.problems:
        key = problem.removeprefix("missing ").split(" ")[0]
        if problem.startswith("missing ") and key in _PROMPTABLE:
            spec_inputs[key] = click.prompt(key.replace("_", " "))
            asked.append(key)
    return asked


@click.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("bundles", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--instrument", "instrument_name", required=True, type=click.Choice(names("instruments")),
              help="Legal instrument the request is made under.")
@click.option("--provider", "provider_name", required=True, type=click.Choice(names("providers")),
              help="Service provider holding the data.")
@click.option("--from", "from_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="YAML with case reference, offence, facts, legal basis... (keys: docs/requests.md).")
@click.option("--lang", type=click.Choice(LANGUAGES), default="en", show_default=True, help="Language of the draft.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="New directory for request.json, request.html, request.pdf (keep it in the case directory).")
@click.option("--no-pdf", is_flag=True, help="Write request.json and request.html only (no browser needed).")
@click.option("--browser", type=click.Path(dir_okay=False), help="Browser executable for the PDF.")
@click.option("--key", type=click.Path(dir_okay=False), help="Signing key for the custody events.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object on stdout.")
def request(kind: str, bundles: tuple[Path, ...], instrument_name: str, provider_name: str, from_file: Path | None,
            lang: str, output: Path, no_pdf: bool, browser: str | None, key: str | None, as_json: bool) -> None:
    """Draft a KIND (preservation, disclosure, emergency, removal) request from sealed BUNDLES.

    Identifiers, URLs, capture times and manifest hashes come from the bundles; the requesting authority from
    the config (requesting_authority); the rest from --from or, at a terminal, prompts. Nothing is written until
    every check passes; each bundle's custody log then gets a `requested` event.
    """
    from evicap.requests.draft import RequestSpec, build_request, write_request

    config = load_config()
    inputs = _read_from(from_file)
    spec_inputs = dict(inputs)
    prompted: list[str] = []
    while True:
        spec = RequestSpec(kind=kind, instrument=instrument_name, provider=provider_name, bundles=bundles,
                           inputs=spec_inputs, input_file=str(from_file) if from_file else None,
                           authority=dict(config.requesting_authority), language=lang,
                           prompted=tuple(prompted))
        try:
            drafted = build_request(spec)
            break
        except RequestInvalid as error:
            asked = [] if as_json or not _interactive() else _prompt_missing(spec_inputs, error)
            if not asked:
                raise
            prompted += asked
    settings, signer = _signer(key)
    from evicap.seal.custody import Actor

    person = drafted["fields"]["requesting_authority"]["value"].get("person")
    actor = Actor(_actor_name(person, settings), signer.fingerprint)
    result = write_request(drafted, output, bundles, pdf=not no_pdf, signer=signer, actor=actor,
                           browser_path=browser)
    out = Output()
    if as_json:
        out.json_line({"id": result.request_id, "directory": str(result.directory), "files": result.files,
                       "custody": result.custody, "instrument": instrument_name, "provider": provider_name,
                       "kind": kind})
        return
    inst = instrument(instrument_name)
    out.info(f"drafted {result.request_id}: {inst.title.get(lang, inst.title['en'])} to {provider_name}")
    for name, digest in result.files.items():
        out.info(f"  {result.directory / name}  sha256 {digest}")
    out.info(f"  custody: 'requested' event added to {len(result.custody)} bundle(s)")
    out.info("  check, sign and send it yourself; then: evicap requests sent "
             f"{result.request_id} --on YYYY-MM-DD")


@click.group()
def requests() -> None:
    """Requests kept in a case directory: list them, mark one sent."""


@requests.command("list")
@click.argument("case_dir", required=False, default=".", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per request on stdout.")
def list_command(case_dir: Path, as_json: bool) -> None:
    """Each request under CASE_DIR: provider, instrument, date sent, preservation expiry and renewal date."""
    from evicap.requests.store import list_requests

    found = list_requests(case_dir)
    out = Output()
    if as_json:
        for item in found:
            out.json_line(item.to_json())
        return
    table = Table(title=f"requests under {case_dir}", title_justify="left")
    for column in ("id", "kind", "instrument", "provider", "drafted", "sent", "expires", "renew by", "state"):
        table.add_column(column, no_wrap=True)
    today = dt.datetime.now(dt.UTC).date()
    style = {"renew now": "bold yellow", "expired": "bold red"}
    for item in found:
        state = item.state(today)
        table.add_row(item.id, item.kind, item.instrument, item.provider, item.drafted_at[:10],
                      item.sent_on or "not sent", item.expires_on or ("-" if not item.retention_days else "when sent"),
                      item.renew_by or "-", f"[{style[state]}]{state}[/]" if state in style else state)
    out.err.print(table)
    if not found:
        out.info("no requests found")


@requests.command("sent")
@click.argument("request_id")
@click.option("--on", "sent_on", required=True, help="Date the request was sent (YYYY-MM-DD).")
@click.option("--case-dir", type=click.Path(path_type=Path, file_okay=False), default=".", show_default=True,
              help="Case directory holding the request.")
def sent_command(request_id: str, sent_on: str, case_dir: Path) -> None:
    """Mark REQUEST_ID sent on a date; preservation expiry and renewal dates count from it."""
    from evicap.requests.store import mark_sent

    try:
        day = dt.date.fromisoformat(sent_on)
    except ValueError:
        raise UsageError(f"--on {sent_on!r}: expected a date YYYY-MM-DD") from None
    item = mark_sent(case_dir, request_id, day)
    tail = f"; preservation expires {item.expires_on}, renew by {item.renew_by}" if item.expires_on else ""
    Output().info(f"{item.id} marked sent on {item.sent_on}{tail}")
