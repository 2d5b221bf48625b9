"""`evicap package`: bundles, their reports and a request in one signed, timestamped zip for a recipient."""

from __future__ import annotations

from pathlib import Path

import click

from evicap.cli.output import Output
from evicap.cli.seal import _actor_name, _signer
from evicap.requests.catalog import LANGUAGES
from evicap.seal.custody import Actor


@click.command()
@click.argument("bundles", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--request", "request_dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Request directory (evicap request --output) to enclose.")
@click.option("--to", "recipient", required=True, help="The recipient (authority or provider), named in custody.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="The package to write (FILE.zip).")
@click.option("--lang", type=click.Choice(LANGUAGES), default="en", show_default=True, help="Language of README.txt.")
@click.option("--key", type=click.Path(dir_okay=False), help="Signing key (default from config).")
@click.option("--tsa", multiple=True, help="RFC 3161 time-stamp authority URL (repeatable; default from config).")
@click.option("--tsa-ca", "tsa_ca", multiple=True, type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Trust anchor PEM for the time-stamp authority.")
@click.option("--no-timestamp", is_flag=True, help="Do not ask for a trusted timestamp.")
@click.option("--actor", help="Who sends the package (default: investigator from config).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object on stdout.")
def package(bundles: tuple[Path, ...], request_dir: Path | None, recipient: str, output: Path, lang: str,
            key: str | None, tsa: tuple[str, ...], tsa_ca: tuple[Path, ...], no_timestamp: bool, actor: str | None,
            as_json: bool) -> None:
    """Package BUNDLES (and a request) for RECIPIENT: SHA-256 of every file, signed, timestamped, with a README.

    Each bundle's custody log first gets a `transferred` event naming the recipient; the copy carries it.
    """
    from dataclasses import replace

    from evicap.package.build import build_package

    settings, signer = _signer(key)
    settings = replace(settings, tsa=tuple(tsa) or settings.tsa, tsa_ca=tuple(tsa_ca) or settings.tsa_ca,
                       no_timestamp=no_timestamp)
    who = Actor(_actor_name(actor, settings), signer.fingerprint)
    result = build_package(bundles, request_dir, recipient, output, signer=signer, actor=who, settings=settings,
                           lang=lang)
    out = Output()
    for failure in result.timestamp_failures:
        out.warn(f"time-stamp authority failed: {failure}")
    if as_json:
        out.json_line({"package": str(result.path), "sha256": result.sha256, "files": result.files,
                       "timestamped": result.timestamped, "bundles": list(result.bundles)})
        return
    out.info(f"package {result.path} ({result.files} files), sha256 {result.sha256}")
    out.info(f"  custody: 'transferred' to {recipient} recorded in {len(result.bundles)} bundle(s)")
    if not result.timestamped:
        out.warn("package has no trusted timestamp")
    out.info(f"  the recipient checks it with: evicap verify {result.path.name} --trusted-key signer.pub.pem "
             "(or the README's openssl commands)")
