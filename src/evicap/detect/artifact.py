"""At capture time: the media-hashes document of a staged bundle, and the manifest's detection part."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evicap.bundle import layout
from evicap.bundle.warcmembers import Member
from evicap.detect.lists import load_lists
from evicap.detect.matching import Thresholds, match_media
from evicap.detect.media import Limits, WarcMedia, hash_media


def media_detection(
    staging: Path,
    warc_bytes: int,
    artifacts: Sequence[dict[str, Any]],
    capture_id: str,
    match_lists: Sequence[str] = (),
    thresholds: Thresholds | None = None,
    limits: Limits | None = None,
    ahead: WarcMedia | None = None,
    members: Sequence[Member] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Hash the media of the staged bundle (its WARC's first ``warc_bytes``, a record boundary, while the capture
    still writes; and its screenshots) and match them against the lists. ``ahead``: the media of the WARC's
    beginning, hashed while the snapshots were taken (evicap.detect.media.hash_warc_media). ``members``: where the
    WARC's records lie (bundle/warcmembers.py).

    Returns the media-hashes document (the caller stores it as artifacts/media-hashes.json and in the WARC) and the
    manifest's ``detection`` object: list names and file hashes, thresholds, matches; never a list's entries.
    """
    thresholds = thresholds or Thresholds()
    lists = load_lists(match_lists)
    document = hash_media(staging, staging / layout.WARC, artifacts, capture_id=capture_id, warc_bytes=warc_bytes,
                          spool_dir=staging, limits=limits, ahead=ahead, members=members)  # fmt: skip
    detection = {
        "media_hashes": layout.MEDIA_HASHES,
        "media_hashed": len(document["media"]),
        "media_not_hashed": len(document["not_hashed"]),
        "lists": [hash_list.describe() for hash_list in lists],
        "thresholds": thresholds.to_json(),
        "matches": match_media(document, lists, thresholds) if lists else [],
    }
    return document, detection
