"""`evicap match`: bundles or case directories against hash lists; each bundle with matches gets a signed
`matched` custody event (its manifest never changes, so it still verifies)."""

from __future__ import annotations

import sys

import click

from evicap.cli.output import Output
from evicap.errors import BundleError


def _describe(match: dict) -> str:
    where = match.get("target_uri") or match.get("artifact") or "?"
    record = f" record {match['warc_record_id']}" if match.get("warc_record_id") else ""
    extra = ""
    if match["signal_type"] == "pdq":
        extra = f" distance {match['distance']} ({match.get('transform', 'original')}, quality {match.get('quality')})"
        if "frame_time" in match:
            extra += f" at {match['frame_time']:.0f} s, {match.get('frames_matched', 1)} frame(s)"
    return f"{match['list']}: {match['label'] or '(no label)'} [{match['signal_type']}{extra}] {where}{record}"


@click.command("match")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--list", "lists", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Hash list file: CSV or JSON of signal_type, signal_value, label (repeatable).")
@click.option("--max-distance", type=click.IntRange(0, 128), default=31, show_default=True,
              help="Largest PDQ Hamming distance that counts as a match.")
@click.option("--min-quality", type=click.IntRange(0, 100), default=50, show_default=True,
              help="PDQ hashes of lower quality are not matched.")
@click.option("--no-record", is_flag=True, help="Only report; write no custody event.")
@click.option("--actor", help="Who records the match (default: investigator from config, else the login name).")
@click.option("--key", type=click.Path(dir_okay=False), help="Signing key for the custody event (default from config).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per bundle on stdout.")
def match(
    paths: tuple[str, ...], lists: tuple[str, ...], max_distance: int, min_quality: int, no_record: bool,
    actor: str | None, key: str | None, as_json: bool,
) -> None:
    """Match the images and videos of BUNDLE_OR_CASE_DIR... against hash lists (PDQ, MD5, SHA-256)."""
    from evicap.detect.bundles import each_bundle, find_bundles, record_matches
    from evicap.detect.lists import load_lists
    from evicap.detect.matching import Matcher, Thresholds
    from evicap.seal.custody import Actor

    out = Output()
    hash_lists = load_lists(lists)
    for hash_list in hash_lists:
        for kind, count in sorted(hash_list.unsupported.items()):
            out.warn(f"{hash_list.path}: {count} {kind} entr{'y' if count == 1 else 'ies'} not supported, skipped")
    thresholds = Thresholds(max_distance=max_distance, min_quality=min_quality)
    matcher = Matcher(hash_lists, thresholds)
    bundles = find_bundles(paths)
    signer = settings = None
    if not no_record:
        from evicap.cli.seal import _actor_name, _signer

        settings, signer = _signer(key)
    total = failed = 0
    for item in each_bundle(bundles):
        if isinstance(item, BundleError):
            failed += 1
            out.error(item.one_line())
            continue
        matches = matcher.match(item.document)
        total += len(matches)
        event = None
        if matches and signer is not None:
            who = Actor(_actor_name(actor, settings), signer.fingerprint)  # type: ignore[arg-type]
            event = record_matches(item, matches, hash_lists, thresholds, signer, who)
        if as_json:
            out.json_line({"bundle": str(item.bundle), "hashes": item.origin, "matches": matches,
                           "custody_seq": event.seq if event is not None else None})  # fmt: skip
        for found in matches:
            out.info(f"MATCH {item.bundle.name}: {_describe(found)}")
        if not matches:
            out.info(f"no match  {item.bundle.name}")
        elif event is not None:
            out.info(f"recorded  {item.bundle.name}: custody event {event.seq} (matched)")
    out.info(f"{total} match(es) in {len(bundles) - failed} bundle(s)" + (f"; {failed} unreadable" if failed else ""))
    if failed:
        sys.exit(1)
