"""Hashes of every image and video in a capture: MD5, SHA-256, PDQ (images) or PDQ per second (videos).

Sources: the WARC's response records (each body streamed to a spool file while MD5 and SHA-256 are computed,
so memory stays bounded whatever the size) and the screenshots among the bundle's artifacts. The result is the
``media-hashes.json`` document (see docs/detect.md); anything that could not be hashed is listed with the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from evicap.bundle.warcmembers import Member, inflating, records_of
from evicap.detect import pdq, video

FORMAT = "evicap-media-hashes"
VERSION = 1
CHUNK = 1024 * 1024
DEFAULT_MAX_BODY = 1024**3  # bodies beyond 1 GiB get MD5/SHA-256 only; nothing is spooled past it
SCREENSHOT_ROLES = ("screenshot", "screenshot-viewport", "screenshot-element")

# Magic numbers for bodies served without an image/video Content-Type.
_SNIFF: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"BM", 0, "image/bmp"),
    (b"\x1a\x45\xdf\xa3", 0, "video/webm"),
    (b"ftyp", 4, "video/mp4"),
)


_NOT_MEDIA = ("json", "javascript", "ecmascript", "xml", "html", "css", "mpegurl", "dash+xml", "font", "wasm")


@dataclass(frozen=True)
class Limits:
    """Bounds on what one hostile file may cost."""

    max_pixels: int = pdq.DEFAULT_MAX_PIXELS
    max_body: int = DEFAULT_MAX_BODY
    video_timeout: float = video.DEFAULT_TIMEOUT
    max_frames: int = video.DEFAULT_MAX_FRAMES
    video_budget: float = 600.0  # seconds of ffmpeg for all the videos of one capture together

    def to_json(self) -> dict[str, Any]:
        return {"max_pixels": self.max_pixels, "max_body_bytes": self.max_body,
                "video_timeout_seconds": self.video_timeout, "max_video_frames": self.max_frames,
                "video_budget_seconds": self.video_budget}  # fmt: skip


def media_kind(content_type: str | None, head: bytes) -> tuple[str | None, str | None]:
    """('image' | 'video' | None, media type) from the Content-Type, else from the first bytes."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared.startswith("image/"):
        return "image", declared
    if declared.startswith("video/"):
        return "video", declared
    if declared.startswith("text/") or any(word in declared for word in _NOT_MEDIA):
        return None, declared  # no sniffing of documents: a script that starts with "BM" is not a bitmap
    for magic, offset, sniffed in _SNIFF:
        if head[offset : offset + len(magic)] == magic:
            if sniffed == "video/mp4" and head[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1"):
                return "image", "image/avif" if head[8:12].startswith(b"avi") else "image/heic"
            return sniffed.split("/")[0], sniffed
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "image/webp"
    return None, declared or None


def _spool(stream: BinaryIO, spool: BinaryIO, max_body: int, first: bytes) -> tuple[str, str, int, bool]:
    """Copy the rest of a body into ``spool`` (up to max_body), hashing all of it. Returns md5, sha256, size,
    and whether the spool holds the whole body."""
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    size, whole = 0, True
    chunk = first
    while chunk:
        md5.update(chunk)
        sha256.update(chunk)
        if whole and size + len(chunk) <= max_body:
            spool.write(chunk)
        else:
            whole = False
        size += len(chunk)
        chunk = stream.read(CHUNK)
    return md5.hexdigest(), sha256.hexdigest(), size, whole


class _Budget:
    """What is left of the capture's ffmpeg time: many videos must not add up to hours."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    def spend(self, started: float) -> None:
        self.left -= time.monotonic() - started


def _perceptual(
    kind: str, media_type: str | None, path: Path, limits: Limits, budget: _Budget | None = None,
    sha256: str | None = None,
) -> dict[str, Any]:
    """The perceptual part of an entry: {"pdq": ...} or {"frames": [...]}, plus "problem" when incomplete.
    ``sha256`` (of the whole file): an image's PDQ may be one this process already computed for the same bytes."""
    if kind == "image":
        if media_type == "image/svg+xml":
            return {"problem": "vector image (SVG): PDQ needs pixels"}
        try:
            if sha256 is not None:
                return {"pdq": pdq.pdq_of_body(path, sha256, max_pixels=limits.max_pixels).to_json()}
            return {"pdq": pdq.pdq_of_file(path, max_pixels=limits.max_pixels).to_json()}
        except pdq.Unhashable as exc:
            return {"problem": str(exc)}
    try:
        if budget is not None and budget.left < 1:
            return {"problem": f"not sampled: this capture's {limits.video_budget:.0f} s for video frames was spent"}
        timeout = limits.video_timeout if budget is None else min(limits.video_timeout, budget.left)
        started = time.monotonic()
        try:
            frames, problem = video.frame_hashes(path, timeout=timeout, max_frames=limits.max_frames)
        finally:
            if budget is not None:
                budget.spend(started)
    except pdq.Unhashable as exc:
        return {"problem": str(exc)}
    entry: dict[str, Any] = {"frames": [frame.to_json() for frame in frames]}
    if problem:
        entry["problem"] = problem
    return entry


def _warc_entries(
    warc: Path, limits: Limits, skipped: list[dict[str, Any]], warc_bytes: int | None, spool_dir: Path | None,
    start: int = 0, members: Sequence[Member] | None = None,
) -> Iterator[dict[str, Any]]:
    """Media of the WARC's response records from byte ``start`` (a record boundary) to ``warc_bytes``. With
    ``members`` (where the writer put each record: bundle/warcmembers.py) only response records are opened, and
    one that is not media is left after its first read; without, the file is walked from ``start``. Either way
    each read inflates at most what it asks for (warcio is given the inflated stream)."""
    from warcio.archiveiterator import ArchiveIterator

    budget = _Budget(limits.video_budget)
    with open(warc, "rb") as raw:
        if members is not None:
            for stream in records_of(raw, members, "response", start):
                for record in ArchiveIterator(stream):
                    entry = _entry(record, limits, skipped, spool_dir, budget)
                    if entry is not None:
                        yield entry
                    break  # one record per member: the rest of its body is never read
            return
        end = warc_bytes if warc_bytes is not None else os.fstat(raw.fileno()).st_size
        raw.seek(start)
        with inflating(raw, end - start) as stream:
            for record in ArchiveIterator(stream):
                entry = _entry(record, limits, skipped, spool_dir, budget)
                if entry is not None:
                    yield entry


def _entry(record: Any, limits: Limits, skipped: list[dict[str, Any]], spool_dir: Path | None, budget: _Budget
           ) -> dict[str, Any] | None:
    """The media entry of one WARC record (warcio's), or None when it is not a whole media response (a body that
    cannot be hashed whole is added to ``skipped`` with the reason)."""
    if record.rec_type != "response" or record.http_headers is None:
        return None
    headers = record.rec_headers
    record_id = headers.get_header("WARC-Record-ID")
    uri = headers.get_header("WARC-Target-URI")
    status = record.http_headers.get_statuscode()
    content_type = record.http_headers.get_header("Content-Type")
    stream = record.content_stream()
    head = stream.read(CHUNK)
    kind, media_type = media_kind(content_type, head)
    if kind is None:
        return None
    where = {"source": "warc", "warc_record_id": record_id, "target_uri": uri}
    if status != "200":
        skipped.append({**where, "reason": f"HTTP {status}: not a whole body"
                        + (" (the whole file is hashed from its re-fetch, when there is one)"
                           if status == "206" else "")})  # fmt: skip
        return None
    truncated = headers.get_header("WARC-Truncated")
    if truncated:
        skipped.append({**where, "reason": f"body truncated in the WARC (WARC-Truncated: {truncated})"})
        return None
    with tempfile.NamedTemporaryFile(prefix=".evicap-media-", dir=spool_dir) as spool:
        md5, sha256, size, whole = _spool(stream, spool, limits.max_body, head)  # type: ignore[arg-type]
        spool.flush()
        entry = {**where, "kind": kind, "media_type": media_type, "size": size, "md5": md5,
                 "sha256": sha256}  # fmt: skip
        if whole:
            entry.update(_perceptual(kind, media_type, Path(spool.name), limits, budget, sha256))
        else:
            entry["problem"] = f"body of {size:,} bytes over the {limits.max_body:,}-byte cap: no PDQ"
    return entry


def remember_screenshots(root: Path, artifacts: Iterable[dict[str, Any]], limits: Limits | None = None) -> None:
    """Compute the PDQ of the screenshots among ``artifacts`` (their SHA-256 as listed) ahead of time: the entries
    made later for the same bytes take it from the process's memory (``pdq.pdq_of_body``), wherever the file
    then lies. What cannot be hashed is left for that later entry to report."""
    limits = limits or Limits()
    for artifact in artifacts:
        if artifact.get("role") in SCREENSHOT_ROLES and artifact.get("media_type", "image/png") != "image/svg+xml":
            try:
                pdq.pdq_of_body(root / artifact["path"], artifact["sha256"], max_pixels=limits.max_pixels)
            except pdq.Unhashable:
                pass


def _artifact_entries(root: Path, artifacts: Iterable[dict[str, Any]], limits: Limits) -> Iterator[dict[str, Any]]:
    for artifact in artifacts:
        if artifact.get("role") not in SCREENSHOT_ROLES:
            continue
        path = root / artifact["path"]
        md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
        size = 0
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                md5.update(chunk)
                sha256.update(chunk)
                size += len(chunk)
        entry: dict[str, Any] = {"source": "artifact", "artifact": artifact["path"]}
        if artifact.get("warc_record"):
            entry["warc_record_uri"] = artifact["warc_record"]
        entry.update({"kind": "image", "media_type": artifact.get("media_type", "image/png"), "size": size,
                      "md5": md5.hexdigest(), "sha256": sha256.hexdigest()})  # fmt: skip
        # By SHA-256: a page that fits the window has its viewport screenshot twice (evicap.capture.screenshot).
        entry.update(_perceptual("image", entry["media_type"], path, limits, sha256=entry["sha256"]))
        yield entry


@dataclass(frozen=True)
class WarcMedia:
    """The media of a WARC's first ``upto`` bytes, hashed ahead (a capture hashes the page's media while the
    browser takes its snapshots); ``hash_media`` then reads only what was written after."""

    media: list[dict[str, Any]]
    not_hashed: list[dict[str, Any]]
    upto: int
    limits: Limits
    artifact_media: tuple[dict[str, Any], ...] = ()  # screenshots hashed ahead too (``with_artifacts``)

    def with_artifacts(self, root: Path, artifacts: Iterable[dict[str, Any]]) -> WarcMedia:
        """The same, plus the screenshots among ``artifacts`` hashed now (not those hashed ahead already)."""
        done = {entry["artifact"] for entry in self.artifact_media}
        fresh = [a for a in artifacts if a.get("path") not in done]
        more = tuple(_artifact_entries(root, fresh, self.limits))
        return dataclasses.replace(self, artifact_media=self.artifact_media + more)


def hash_warc_media(warc: Path, warc_bytes: int, *, limits: Limits | None = None,
                    spool_dir: Path | None = None, members: Sequence[Member] | None = None) -> WarcMedia:
    """Hash the media of the first ``warc_bytes`` (a record boundary) of a WARC still being written; ``members``:
    where its records lie, as the writer listed them."""
    limits = limits or Limits()
    skipped: list[dict[str, Any]] = []
    media = list(_warc_entries(warc, limits, skipped, warc_bytes, spool_dir, members=members))
    return WarcMedia(media, skipped, warc_bytes, limits)


def hash_media(
    root: Path,
    warc: Path,
    artifacts: Iterable[dict[str, Any]],
    *,
    capture_id: str | None,
    limits: Limits | None = None,
    warc_bytes: int | None = None,
    spool_dir: Path | None = None,
    ahead: WarcMedia | None = None,
    members: Sequence[Member] | None = None,
) -> dict[str, Any]:
    """The media-hashes document of a bundle (staged or published) whose WARC is ``warc`` (only its first
    ``warc_bytes`` when given: a WARC still open for writing, and then ``members``, where its records lie).
    Bodies are spooled in ``spool_dir`` (a capture's staging directory, on the disk that holds the evidence
    anyway), else in the system's temporary directory.
    ``ahead``: the media of the WARC's beginning, already hashed (``hash_warc_media``); ``limits`` bound the rest,
    and the document names the limits of the part hashed ahead (they bounded the page's media)."""
    limits = limits or Limits()
    skipped: list[dict[str, Any]] = list(ahead.not_hashed) if ahead is not None else []
    media = list(ahead.media) if ahead is not None else []
    media.extend(_warc_entries(warc, limits, skipped, warc_bytes, spool_dir, start=ahead.upto if ahead else 0,
                               members=members))
    done = {entry["artifact"] for entry in ahead.artifact_media} if ahead is not None else set()
    media.extend(ahead.artifact_media if ahead is not None else ())
    media.extend(_artifact_entries(root, [a for a in artifacts if a.get("path") not in done], limits))
    if ahead is not None:
        limits = ahead.limits
    return {
        "format": FORMAT,
        "version": VERSION,
        "capture_id": capture_id,
        "algorithms": {
            "md5": "MD5 of the HTTP payload as stored in the WARC (or of the artifact file)",
            "sha256": "SHA-256 of the same bytes",
            "pdq": f"PDQ (pdqhash {pdq.pdq_version() or 'unknown'}), 256 bits as 64 hex digits, quality 0-100, "
            "with its 8 dihedral variants",
            "video": f"PDQ of one frame per second, decoded by {video.ffmpeg_version() or 'ffmpeg (not found)'}",
        },
        "limits": limits.to_json(),
        "media": media,
        "not_hashed": skipped,
    }
