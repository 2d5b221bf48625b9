"""`evicap report`: court reports (HTML and PDF, en/fr/ar) of bundles and batch case directories.

Also the default report after `evicap capture` and `evicap batch` (``write_after_capture``). Exit 0 when every
input verified, 1 when a report was written about a bundle that does not verify, 2 when nothing could be written.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from evicap.cli.output import Output
from evicap.config import load_config
from evicap.render import LANGUAGES
from evicap.seal.keys import Signer

if TYPE_CHECKING:
    from playwright.async_api import Browser

    from evicap.report import ReportRequest, WrittenReport


def trust_anchors() -> tuple[list[Path], list[Path]]:
    """Keys and time-stamp CAs verification trusts here, as `evicap verify` has them: config + this machine's key."""
    from evicap.cli.verify import own_public_keys

    config = load_config()
    return [*config.trusted_keys, *own_public_keys(config)], list(config.tsa_ca)


def _request(paths: Sequence[Path], langs: Sequence[str], *, signer: Signer | None, actor: str | None,
             output: Path | None = None, paper: str = "A4", pdf: bool = True,
             trusted_keys: Sequence[Path] = (), tsa_cas: Sequence[Path] = (),
             browser_path: str | None = None, bundles_of_case: bool = False) -> ReportRequest:
    from evicap.report import ReportRequest

    keys, cas = trust_anchors()
    return ReportRequest(
        paths=list(paths), langs=list(langs), output=output, paper=paper, pdf=pdf,
        trusted_keys=[*trusted_keys, *keys], tsa_cas=[*tsa_cas, *cas], signer=signer, actor_name=actor,
        browser_path=browser_path, bundles_of_case=bundles_of_case,
    )


def make_reports(paths: Sequence[Path], langs: Sequence[str], **options: Any) -> list[WrittenReport]:
    from evicap.report import write_reports

    return write_reports(_request(paths, langs, **options))


def show(out: Output, written: Sequence[WrittenReport], as_json: bool) -> None:
    for report in written:
        if as_json:
            out.json_line({
                "source": str(report.source), "kind": report.kind, "lang": report.lang, "html": str(report.html),
                "pdf": str(report.pdf) if report.pdf else None, "verified": report.verified,
                "verdict": report.verdict, "custody_seq": report.custody_seq, "not_recorded": report.not_recorded,
            })
            continue
        style = "green" if report.verified else "bold red"
        files = ", ".join(escape(str(p)) for p in (report.html, report.pdf) if p)
        out.err.print(f"[{style}]{report.kind} report ({report.lang})[/] {files}")
        if not report.verified:
            out.err.print(f"  [bold red]{escape(str(report.source))} does not verify: {escape(report.verdict)}[/]")
        if report.not_recorded:
            out.warn(f"not recorded in the custody log: {escape(report.not_recorded)}")


def write_after_capture(out: Output, paths: Sequence[Path], sealing: Any, langs: Sequence[str] = ("en",),
                        browser_path: str | None = None) -> None:
    """The default report after a capture or batch (``sealing``: the capture's loaded signer and settings, whose
    time-stamp trust anchors verification uses too). A failure to write it is a warning: the evidence is sealed."""
    from evicap.errors import EvicapError

    try:
        written = make_reports(paths, langs, signer=sealing.signer, actor=sealing.actor_name,
                               tsa_cas=list(sealing.settings.tsa_ca), browser_path=browser_path)
        show(out, written, False)
    except EvicapError as error:
        out.warn(f"report not written: {error.one_line()} (run `evicap report` later)")


async def write_after_capture_async(out: Output, browser: Browser, paths: Sequence[Path], sealing: Any,
                                    langs: Sequence[str] = ("en",)) -> None:
    """The default report after `evicap capture`, printed by the capture's own browser before it closes."""
    from evicap.errors import EvicapError
    from evicap.report import write_reports_async

    try:
        request = _request(paths, langs, signer=sealing.signer, actor=sealing.actor_name,
                           tsa_cas=list(sealing.settings.tsa_ca))
        show(out, await write_reports_async(request, browser), False)
    except EvicapError as error:
        out.warn(f"report not written: {error.one_line()} (run `evicap report` later)")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--lang", "langs", multiple=True, default=("en",), show_default=True,
              help=f"Report language, repeatable: {', '.join(LANGUAGES)}.")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path),
              help="Write reports here (one sub-directory per input) instead of each bundle's reports/.")
@click.option("--paper", type=click.Choice(["A4", "Letter"]), default="A4", show_default=True)
@click.option("--no-pdf", is_flag=True, help="HTML only.")
@click.option("--bundles", "bundles_of_case", is_flag=True,
              help="For a case directory, also write each bundle's exhibit report.")
@click.option("--trusted-key", "trusted_keys", multiple=True, type=click.Path(path_type=Path, exists=True),
              help="Public key (PEM) whose signatures verification trusts; adds to the config keyring.")
@click.option("--tsa-ca", "tsa_cas", multiple=True, type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="PEM trust anchor for time-stamp authorities.")
@click.option("--key", type=click.Path(dir_okay=False), help="Signing key for the custody events (default: config).")
@click.option("--actor", help="Who writes the report (default: investigator from config, else the login name).")
@click.option("--browser", "browser_path", type=click.Path(dir_okay=False), help="Browser executable for the PDF.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per report on stdout.")
def report(paths: tuple[Path, ...], langs: tuple[str, ...], output: Path | None, paper: str, no_pdf: bool,
           bundles_of_case: bool, trusted_keys: tuple[Path, ...], tsa_cas: tuple[Path, ...], key: str | None,
           actor: str | None, browser_path: str | None, as_json: bool) -> None:
    """Write the court report of each BUNDLE or batch case directory, and record it in the custody log.

    Every input is verified first; a bundle that does not verify gets its report, marked as failing, and the
    command exits 1.
    """
    from evicap.cli.seal import _signer
    from evicap.render import check_language
    from evicap.report.writer import input_kind

    for lang in langs:
        check_language(lang)
    for path in paths:
        input_kind(path)  # every input checked before a key is loaded or a file written
    settings, signer = _signer(key)
    name = actor or settings.investigator or getpass.getuser()
    written = make_reports(paths, langs, signer=signer, actor=name, output=output, paper=paper, pdf=not no_pdf,
                           trusted_keys=trusted_keys, tsa_cas=tsa_cas, browser_path=browser_path,
                           bundles_of_case=bundles_of_case)
    show(Output(), written, as_json)
    sys.exit(0 if all(r.verified for r in written) else 1)
