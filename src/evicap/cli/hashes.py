"""`evicap hashes`: the media hashes of bundles or case directories in a sharing format (no content)."""

from __future__ import annotations

import json
import sys

import click

from evicap.cli.output import Output
from evicap.errors import BundleError


@click.command("hashes")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="csv: signal_type,signal_value,label,... rows; json: one object per signal per line.")
@click.option("--label", default="", help="Label to put on every exported signal (e.g. your unit's reference).")
@click.option("--no-sources", is_flag=True,
              help="Leave out capture ids, URLs and WARC record ids (and repeated hashes): hashes only.")
def hashes(paths: tuple[str, ...], fmt: str, label: str, no_sources: bool) -> None:
    """Export MD5, SHA-256 and PDQ of every image and video in BUNDLE_OR_CASE_DIR... to stdout."""
    from evicap.detect.bundles import each_bundle, find_bundles
    from evicap.detect.export import signals, to_csv

    out = Output()
    bundles = find_bundles(paths)
    loaded, failed = [], 0
    for item in each_bundle(bundles):
        if isinstance(item, BundleError):
            failed += 1
            out.error(item.one_line())
        else:
            loaded.append(item)
    for item in loaded:
        if item.origin != "sealed":
            out.warn(f"{item.bundle}: no media-hashes.json; hashes {item.origin}")
    rows = list(signals(loaded, label=label, with_sources=not no_sources))
    if fmt == "csv":
        sys.stdout.write(to_csv(rows, with_sources=not no_sources))
    else:
        for row in rows:
            sys.stdout.write(json.dumps({k: v for k, v in row.items() if v is not None}, ensure_ascii=False) + "\n")
    out.info(f"{len(rows)} signals from {len(loaded)} bundle(s)" + (f"; {failed} unreadable" if failed else ""))
    if failed:
        sys.exit(1)
