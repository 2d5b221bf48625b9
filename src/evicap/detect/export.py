"""Media hashes in a sharing format: rows of ``signal_type,signal_value,label,...`` as ThreatExchange's tools
exchange signals (its dataset CSV begins ``signal_type,signal_str``), so a unit shares hashes, never content.

Signal type names follow python-threatexchange: ``pdq``; ``video_md5`` / ``video_sha256`` for videos; for images
``md5`` / ``sha256`` (ThreatExchange has no photo MD5 type; evicap's lists read all of these names back).
The export is itself a valid hash list for `evicap match --list`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from evicap.detect.bundles import BundleHashes

COLUMNS = ("signal_type", "signal_value", "label", "media_type", "quality", "frame_time", "capture_id",
           "target_uri", "warc_record_id", "artifact")  # fmt: skip
SOURCE_COLUMNS = ("capture_id", "target_uri", "warc_record_id", "artifact")


def signals(hashes: Iterable[BundleHashes], label: str = "", with_sources: bool = True) -> Iterator[dict[str, Any]]:
    """One row per hash: MD5 and SHA-256 of every medium, PDQ of every image and of every sampled video frame."""
    seen: set[tuple[str, str]] = set()
    for bundle in hashes:
        capture_id = bundle.document.get("capture_id") or bundle.manifest.get("capture_id")
        for item in bundle.document.get("media", []):
            video = item.get("kind") == "video"
            base = {"label": label, "media_type": item.get("media_type")}
            if with_sources:
                base.update({"capture_id": capture_id, **{k: item.get(k) for k in SOURCE_COLUMNS[1:]}})
            rows: list[dict[str, Any]] = []
            for kind in ("md5", "sha256"):
                if item.get(kind):
                    rows.append({"signal_type": f"video_{kind}" if video else kind, "signal_value": item[kind]})
            if isinstance(item.get("pdq"), dict):
                rows.append({"signal_type": "pdq", "signal_value": item["pdq"]["hash"],
                             "quality": item["pdq"]["quality"]})  # fmt: skip
            for frame in item.get("frames") or []:
                rows.append({"signal_type": "pdq", "signal_value": frame["hash"], "quality": frame["quality"],
                             "frame_time": frame["time"]})  # fmt: skip
            for row in rows:
                key = (row["signal_type"], row["signal_value"])
                if not with_sources and key in seen:
                    continue
                seen.add(key)
                yield {**base, **row}


def to_csv(rows: Iterable[dict[str, Any]], with_sources: bool = True) -> str:
    columns = [c for c in COLUMNS if with_sources or c not in SOURCE_COLUMNS]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return out.getvalue()
