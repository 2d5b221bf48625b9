"""Match a capture's media hashes against hash lists: PDQ by Hamming distance (all eight rotations and flips),
MD5 and SHA-256 exactly.

A match names the list, the entry's label, the distance and the transform, and where the media is (WARC record
and target URI, or the artifact). It never carries the list's hash values: those stay in the list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from evicap.detect.lists import HashList
from evicap.detect.pdq import DIHEDRAL

DEFAULT_MAX_DISTANCE = 31  # Meta's recommended PDQ match threshold
DEFAULT_MIN_QUALITY = 50  # PDQ hashes of quality 49 or less are too uncertain to match on


@dataclass(frozen=True)
class Thresholds:
    max_distance: int = DEFAULT_MAX_DISTANCE
    min_quality: int = DEFAULT_MIN_QUALITY

    def to_json(self) -> dict[str, int]:
        return {"pdq_max_distance": self.max_distance, "pdq_min_quality": self.min_quality}


class _PdqIndex:
    """One list's PDQ entries as a (N, 4) uint64 array, searched with numpy's popcount."""

    def __init__(self, hash_list: HashList) -> None:
        import numpy as np

        self.entries = [e for e in hash_list.entries if e.signal_type == "pdq"]
        packed = b"".join(bytes.fromhex(e.value) for e in self.entries)
        words = np.frombuffer(packed, dtype=">u8").astype(np.uint64).reshape(len(self.entries), 4)
        # One contiguous array per 64-bit word: 1-D XOR and popcount are numpy's fastest path.
        self.words = [np.ascontiguousarray(words[:, i]) for i in range(4)]

    def nearest(self, hexes: Iterable[str], max_distance: int) -> list[tuple[int, int, int]]:
        """(entry index, distance, transform index) for every entry within max_distance of any variant."""
        import numpy as np

        best: dict[int, tuple[int, int]] = {}
        if not self.entries:
            return []
        for transform, value in enumerate(hexes):
            query = np.frombuffer(bytes.fromhex(value), dtype=">u8").astype(np.uint64)
            # The distance over the first 128 bits bounds the whole: only entries within max_distance there can
            # match, and for unrelated hashes that is almost none (their expected distance there is 64).
            w0, w1, w2, w3 = self.words
            head = np.bitwise_count(w0 ^ query[0]) + np.bitwise_count(w1 ^ query[1])  # uint8: at most 128
            candidates = np.flatnonzero(head <= max_distance)
            if not len(candidates):
                continue
            tail = np.bitwise_count(w2[candidates] ^ query[2]) + np.bitwise_count(w3[candidates] ^ query[3])
            distances = head[candidates].astype(np.uint16) + tail
            for position in np.flatnonzero(distances <= max_distance):
                index, distance = int(candidates[position]), int(distances[position])
                if index not in best or distance < best[index][0]:
                    best[index] = (distance, transform)
        return [(index, d, t) for index, (d, t) in sorted(best.items())]


def _where(item: dict[str, Any]) -> dict[str, Any]:
    keys = ("source", "warc_record_id", "target_uri", "artifact", "warc_record_uri", "media_type", "kind")
    return {k: item[k] for k in keys if item.get(k) is not None}


def match_media(document: dict[str, Any], lists: list[HashList], thresholds: Thresholds) -> list[dict[str, Any]]:
    """Every match of a media-hashes document against the lists, in media order."""
    return Matcher(lists, thresholds).match(document)


class Matcher:
    """The lists indexed once (exact tables, PDQ arrays), then matched against any number of bundles."""

    def __init__(self, lists: list[HashList], thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.exact: list[tuple[HashList, dict[tuple[str, str], list[str]]]] = []
        self.indexes: list[tuple[HashList, _PdqIndex]] = []
        for hash_list in lists:
            table: dict[tuple[str, str], list[str]] = {}
            for entry in hash_list.entries:
                if entry.signal_type != "pdq":
                    table.setdefault((entry.signal_type, entry.value), []).append(entry.label)
            self.exact.append((hash_list, table))
            self.indexes.append((hash_list, _PdqIndex(hash_list)))

    def match(self, document: dict[str, Any]) -> list[dict[str, Any]]:
        return _match(document, self.exact, self.indexes, self.thresholds)


def _match(
    document: dict[str, Any],
    exact: list[tuple[HashList, dict[tuple[str, str], list[str]]]],
    indexes: list[tuple[HashList, _PdqIndex]],
    thresholds: Thresholds,
) -> list[dict[str, Any]]:
    matches: list[dict[str, Any]] = []
    for item in document.get("media", []):
        where = _where(item)
        for hash_list, table in exact:
            for kind in ("md5", "sha256"):
                for label in table.get((kind, str(item.get(kind, ""))), []):
                    matches.append({"list": hash_list.name, "label": label, "signal_type": kind, "distance": 0,
                                    "value": item[kind], **where})  # fmt: skip
        candidates: list[tuple[float | None, dict[str, Any]]] = []
        if isinstance(item.get("pdq"), dict):
            candidates.append((None, item["pdq"]))
        for frame in item.get("frames") or []:
            candidates.append((frame.get("time"), frame))
        for hash_list, index in indexes:
            found: dict[int, dict[str, Any]] = {}
            for time, pdq in candidates:
                if int(pdq.get("quality", 0)) < thresholds.min_quality:
                    continue
                variants = pdq.get("dihedral") or [pdq["hash"]]
                for entry_index, distance, transform in index.nearest(variants, thresholds.max_distance):
                    previous = found.get(entry_index)
                    if previous is not None:
                        previous["frames_matched"] = previous.get("frames_matched", 1) + (time is not None)
                        if distance >= previous["distance"]:
                            continue
                    entry = index.entries[entry_index]
                    match = {"list": hash_list.name, "label": entry.label, "signal_type": "pdq",
                             "distance": distance, "transform": DIHEDRAL[transform], "quality": int(pdq["quality"]),
                             "value": pdq["hash"], **where}  # fmt: skip
                    if time is not None:
                        match["frame_time"] = time
                        match["frames_matched"] = previous.get("frames_matched", 1) if previous else 1
                    found[entry_index] = match
            matches.extend(found[i] for i in sorted(found))
    return matches
