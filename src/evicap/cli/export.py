"""`evicap export --format wacz`: bundles (or whole case directories) into one WACZ file.

Every bundle is verified first; one that does not verify is refused (exit 1) unless --include-failing, so a
corrupted exhibit never slips into an archive unnoticed. Exit 2 for unusable input or an unwritable output.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click
from rich.markup import escape

from evicap.cli.output import Output


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["wacz"]), default="wacz", show_default=True)
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The .wacz file to write.")
@click.option("--include-failing", is_flag=True, help="Export bundles that do not verify too (each named on stderr).")
@click.option("--trusted-key", "trusted_keys", multiple=True, type=click.Path(path_type=Path, exists=True),
              help="Public key (PEM) whose signatures verification trusts; adds to the config keyring.")
@click.option("--tsa-ca", "tsa_cas", multiple=True, type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="PEM trust anchor for time-stamp authorities; adds to tsa_ca in the config.")
@click.option("--key", type=click.Path(dir_okay=False), help="Signing key for the custody events (default: config).")
@click.option("--actor", help="Who exports (default: investigator from config, else the login name).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON line on stdout.")
def export(paths: tuple[Path, ...], fmt: str, output: Path, include_failing: bool, trusted_keys: tuple[Path, ...],
           tsa_cas: tuple[Path, ...], key: str | None, actor: str | None, as_json: bool) -> None:
    """Package each BUNDLE (a case directory: every bundle in it) into one WACZ, and log it in their custody."""
    from evicap.cli.report import trust_anchors
    from evicap.cli.seal import _signer
    from evicap.errors import EnvironmentProblem, UsageError
    from evicap.export import export_wacz
    from evicap.report.writer import input_kind
    from evicap.verify import verify_path

    if output.suffix.lower() != ".wacz":
        raise UsageError(f"{output}: the output of --format wacz must end in .wacz")
    if not output.parent.is_dir():
        raise EnvironmentProblem(f"cannot write {output}: {output.parent} is not a directory")
    out = Output()
    keys, cas = trust_anchors()
    bundles: list[Path] = []
    failing: list[str] = []
    for path in paths:
        input_kind(path)
        for verdict in verify_path(path, [*trusted_keys, *keys], [*tsa_cas, *cas]):
            root = Path(verdict.path)
            if root.name == "case-index.json":
                if not verdict.ok:
                    failing.append(f"{root}: {verdict.verdict}")
                continue
            if verdict.ok or include_failing:
                bundles.append(root)
            if not verdict.ok:
                failing.append(f"{root}: {verdict.verdict}")
    for line in failing:
        out.err.print(f"[bold red]does not verify[/] {escape(line)}")
    if failing and not include_failing:
        out.error(f"not exported: {len(failing)} input(s) do not verify (--include-failing exports them anyway)")
        sys.exit(1)
    settings, signer = _signer(key)
    result = export_wacz(bundles, output, signer=signer, actor=actor or settings.investigator or getpass.getuser())
    if as_json:
        out.json_line({"wacz": str(result.path), "sha256": result.sha256, "size": result.size,
                       "pages": result.pages, "records": result.records,
                       "bundles": [{"bundle": str(b.root), "manifest_sha256": b.manifest_sha256,
                                    "custody_seq": b.custody_seq} for b in result.bundles]})
    else:
        out.info(f"wrote {result.path} ({result.size:,} bytes, {result.pages} page(s), {result.records} records)")
        out.info(f"sha256 {result.sha256} (recorded as 'exported' in {len(result.bundles)} custody log(s))")
    sys.exit(1 if failing else 0)
