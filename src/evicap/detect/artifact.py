"""At capture time: media-hashes.json into the staged bundle (a sealed artifact) and the manifest's detection part."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evicap.bundle import layout
from evicap.bundle.hashing import write_bytes
from evicap.bundle.model import Artifact
from evicap.detect.lists import load_lists
from evicap.detect.matching import Thresholds, match_media
from evicap.detect.media import hash_media


def media_hashes_artifact(
    staging: Path,
    artifacts: Sequence[Artifact],
    capture_id: str,
    match_lists: Sequence[str] = (),
    thresholds: Thresholds | None = None,
) -> tuple[Artifact, dict[str, Any]]:
    """Hash the staged bundle's media, write artifacts/media-hashes.json, match against the lists.

    Returns the new artifact and the manifest's ``detection`` object (list names and file hashes, thresholds,
    matches: never a list's entries). Runs after the WARC is closed: it reads the WARC back, streaming.
    """
    thresholds = thresholds or Thresholds()
    lists = load_lists(match_lists)
    document = hash_media(staging, staging / layout.WARC, [a.to_json() for a in artifacts], capture_id=capture_id)
    body = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    digest = write_bytes(staging / layout.MEDIA_HASHES, body)
    artifact = Artifact(layout.MEDIA_HASHES, "media-hashes", "application/json", digest,
                        description="MD5, SHA-256 and PDQ of every image and video in the capture")  # fmt: skip
    detection = {
        "media_hashes": layout.MEDIA_HASHES,
        "media_hashed": len(document["media"]),
        "media_not_hashed": len(document["not_hashed"]),
        "lists": [hash_list.describe() for hash_list in lists],
        "thresholds": thresholds.to_json(),
        "matches": match_media(document, lists, thresholds) if lists else [],
    }
    return artifact, detection
