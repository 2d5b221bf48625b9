"""`evicap session import|list|delete`: sessions an investigator brings from their own browser."""

from __future__ import annotations

import json
from pathlib import Path

import click

from evicap.cli.output import Output
from evicap.sessions import delete_session, import_session, list_sessions, session_summary


@click.group("session")
def session_group() -> None:
    """Saved login sessions of investigation accounts (private files, never bundled)."""


@session_group.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def import_command(name: str, file: Path) -> None:
    """Import FILE (Playwright storage-state JSON or Netscape cookies.txt) as session NAME."""
    path = import_session(name, file)
    summary = session_summary(name)
    Output().info(
        f"[green]saved[/] session {name!r}: {summary['cookies']} cookie(s), {summary['storage_items']} storage "
        f"item(s) to {path} (mode 0600); use `evicap capture --session {name} URL`"
    )


@session_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per session.")
def list_command(as_json: bool) -> None:
    """Saved sessions, with their cookie counts and domains (never a value)."""
    out = Output()
    for name in list_sessions():
        summary = session_summary(name)
        if as_json:
            click.echo(json.dumps(summary))
        else:
            domains = ", ".join(summary["domains"]) or "-"
            out.info(f"{name}  {summary['cookies']} cookie(s), {summary['storage_items']} storage item(s)  {domains}")


@session_group.command("delete")
@click.argument("name")
def delete_command(name: str) -> None:
    """Delete session NAME."""
    delete_session(name)
    Output().info(f"deleted session {name!r}")
