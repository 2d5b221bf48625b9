"""Bundles after sealing: find them, read their media hashes, record later matches as `matched` custody events.

A bundle's ``artifacts/media-hashes.json`` is used only when its SHA-256 is the one the manifest lists; a bundle
made before media hashing existed has its hashes computed from its WARC into a temporary directory (nothing is
written into the bundle but the custody event).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evicap.bundle import layout
from evicap.detect.lists import HashList
from evicap.detect.matching import Thresholds
from evicap.detect.media import hash_media
from evicap.errors import BundleError, UsageError

# A custody line is read with a 1 MiB cap; a match is a few hundred bytes. The rest are counted, and
# `evicap match --json` still prints them all.
MAX_EVENT_MATCHES = 1000


@dataclass(frozen=True)
class BundleHashes:
    """One bundle's media-hashes document and where it came from ("sealed" or "computed from the WARC")."""

    bundle: Path
    manifest: dict[str, Any]
    document: dict[str, Any]
    origin: str


def find_bundles(paths: Iterable[str | Path]) -> list[Path]:
    """Each path is a bundle (has manifest.json) or a case directory whose sub-directories are bundles."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if (path / layout.MANIFEST).is_file():
            found.append(path)
            continue
        if not path.is_dir():
            raise UsageError(f"{path}: no such bundle or case directory")
        children = sorted(
            child for child in path.iterdir()
            if child.is_dir() and not child.name.startswith(".") and (child / layout.MANIFEST).is_file()
        )  # fmt: skip
        if not children:
            raise UsageError(f"{path}: not an evidence bundle and holds none (no {layout.MANIFEST})")
        found.extend(children)
    return found


def read_manifest(bundle: Path) -> dict[str, Any]:
    try:
        data = json.loads((bundle / layout.MANIFEST).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{bundle / layout.MANIFEST}: unreadable manifest ({exc})") from None
    if not isinstance(data, dict):
        raise BundleError(f"{bundle / layout.MANIFEST}: not a manifest object")
    return data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def bundle_hashes(bundle: Path) -> BundleHashes:
    manifest = read_manifest(bundle)
    artifacts = [a for a in manifest.get("artifacts", []) if isinstance(a, dict)]
    listed = next((a for a in artifacts if a.get("path") == layout.MEDIA_HASHES), None)
    path = bundle / layout.MEDIA_HASHES
    if listed is not None:
        if not path.is_file() or _sha256(path) != listed.get("sha256"):
            raise BundleError(
                f"{path}: missing or not the sealed file (SHA-256 differs from the manifest)",
                hint="run `evicap verify` on the bundle",
            )
        document = json.loads(path.read_text("utf-8"))
        return BundleHashes(bundle, manifest, document, "sealed")
    warc = bundle / layout.WARC
    if not warc.is_file():
        raise BundleError(f"{bundle}: no {layout.MEDIA_HASHES} and no WARC to hash")
    sealed = next((a for a in artifacts if a.get("path") == layout.WARC), {})
    if _sha256(warc) != sealed.get("sha256"):  # only the sealed bytes are hashed: no match from altered evidence
        raise BundleError(f"{warc}: not the sealed WARC (SHA-256 differs from the manifest)",
                          hint="run `evicap verify` on the bundle")  # fmt: skip
    from warcio.exceptions import ArchiveLoadFailed

    try:
        document = hash_media(bundle, warc, artifacts, capture_id=manifest.get("capture_id"))
    except (ArchiveLoadFailed, OSError, EOFError, ValueError, zlib.error) as exc:
        # The exception's text may quote the garbage it met: only its kind goes into the one line.
        raise BundleError(f"{warc}: cannot be read for media hashes ({type(exc).__name__})",
                          hint="run `evicap verify` on the bundle") from None  # fmt: skip
    return BundleHashes(bundle, manifest, document, "computed from the WARC")


def each_bundle(bundles: Iterable[Path]) -> Iterator[BundleHashes | BundleError]:
    """Each bundle's hashes, or the BundleError that kept them from being read: one bad bundle in a case
    directory does not hide the others."""
    for bundle in bundles:
        try:
            yield bundle_hashes(bundle)
        except BundleError as error:
            yield error


def record_matches(
    bundle: BundleHashes, matches: list[dict[str, Any]], lists: list[HashList], thresholds: Thresholds,
    signer: Any, actor: Any,
) -> Any:
    """Append a signed `matched` custody event (list names and hashes of their files, thresholds, matches)."""
    from evicap.seal.custody import append_event

    manifest_sha256 = _sha256(bundle.bundle / layout.MANIFEST)
    details = {
        "lists": [hash_list.describe() for hash_list in lists],
        "thresholds": thresholds.to_json(),
        "hashes": bundle.origin,
        "matches": matches[:MAX_EVENT_MATCHES],
        "matches_total": len(matches),
    }
    return append_event(bundle.bundle / layout.CUSTODY, signer, actor, "matched", details, manifest_sha256)
