"""`evicap verify`: a table of checks per bundle and a one-line verdict (stderr), or a JSON report (stdout).

Exit 0 when every bundle passes, 1 when any check fails, 2 when verify cannot run (raised as EvicapError and turned
into one line by the group's handler).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from evicap.cli.output import Output
from evicap.config import Config, load_config
from evicap.verify import BundleReport, verify_path

_STYLE = {"pass": "green", "fail": "bold red", "not-checked": "yellow"}


def _table(report: BundleReport) -> Table:
    table = Table(title=report.path, title_justify="left", show_lines=False, expand=False)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("subject", overflow="fold")
    table.add_column("reason", overflow="fold")
    for check in report.checks:
        table.add_row(check.name, Text(check.status, style=_STYLE[check.status]), check.subject or "",
                      Text(check.reason))
    return table


def own_public_keys(config: Config) -> list[Path]:
    """This machine's own signing key is trusted here: bundles its investigator sealed verify without extra flags.

    A recipient elsewhere trusts the investigator's key explicitly (--trusted-key or trusted_keys in the config).
    """
    key = config.key or config.default_key_path
    public = key.with_name(key.name + ".pub")
    return [public] if public.is_file() else []


def _verify_one(
    path: Path, keys: list[Path], cas: list[Path], lenient: bool, deep: bool, clock_tolerance: float
) -> list[BundleReport]:
    """A transfer package (FILE.zip or its unpacked directory) goes to evicap.package; all else to verify_path."""
    from evicap.package.verify import is_package, verify_package

    if is_package(path):
        return verify_package(path, keys, cas, lenient, deep, clock_tolerance=clock_tolerance)
    return verify_path(path, keys, cas, lenient, deep, clock_tolerance=clock_tolerance)


@click.command()
@click.argument("bundles", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--trusted-key", "trusted_keys", multiple=True, type=click.Path(path_type=Path, exists=True),
              help="Public key (PEM) or directory of keys whose signatures you trust; adds to the config keyring.")
@click.option("--tsa-ca", "tsa_cas", multiple=True, type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="PEM trust anchor for time-stamp authorities; adds to tsa_ca in the config.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine report (one JSON line per bundle) on stdout.")
@click.option("--strict", is_flag=True, hidden=True, help="The default since format 1.1; accepted so old scripts run.")
@click.option("--lenient", is_flag=True,
              help="Report files that neither the manifest nor a custody event lists as not checked instead of "
                   "failing (links, hard links, look-alike names still fail).")
@click.option("--deep", is_flag=True,
              help="Recompute every WARC record digest even when a trusted seal proves the WARC unchanged.")
@click.option("--clock-tolerance", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Seconds a token may precede the capture's end beyond its accuracy (default: clock_tolerance, 10).")
def verify(bundles: tuple[Path, ...], trusted_keys: tuple[Path, ...], tsa_cas: tuple[Path, ...], as_json: bool,
           strict: bool, lenient: bool, deep: bool, clock_tolerance: float | None) -> None:
    """Check that each BUNDLE is intact, sealed by a trusted key, timestamped and in custody.

    A directory holding a batch case index is checked as a whole: the index, then every bundle in it. A transfer
    package (FILE.zip from evicap package, or the directory it was unpacked into) is checked, then each bundle.
    """
    config = load_config()
    keys = [*trusted_keys, *config.trusted_keys, *own_public_keys(config)]
    cas = [*tsa_cas, *config.tsa_ca]
    # Every input is checked before anything is printed, so an unusable argument (exit 2) never leaves half a report.
    tolerance = config.clock_tolerance if clock_tolerance is None else clock_tolerance
    reports = [report for bundle in bundles
               for report in _verify_one(bundle, keys, cas, lenient and not strict, deep, tolerance)]
    out = Output()
    for report in reports:
        if as_json:
            out.json_line(report.to_json())
        else:
            out.err.print(_table(report))
        style = "bold green" if report.ok else "bold red"
        out.err.print(Text(f"{report.path}: {report.verdict}", style=style))
    sys.exit(0 if all(r.ok for r in reports) else 1)
