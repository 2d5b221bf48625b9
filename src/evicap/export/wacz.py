"""WACZ 1.1.1 (Web Archive Collection Zipped): the bundles' WARCs, a CDXJ index, a page list, and evicap's own
seal files beside them, in one ZIP any ReplayWeb.page or pywb replays.

Layout written (every file but the two datapackage files listed with its SHA-256 in datapackage.json):

    archive/<bundle>.warc.gz          each bundle's WARC, byte for byte (ZIP "stored": replay reads by offset)
    indexes/index.cdxj                CDXJ over every WARC
    pages/pages.jsonl                 one line per bundle: its final URL, page title, capture time
    evicap/<bundle>.<file>            manifest.json, its signature, public key, timestamp token, custody log,
                                      SHA256SUMS, the screenshots and the reports: the seal travels with the
                                      replayable copy (the screenshots are also resource records in the WARC)
    datapackage.json, datapackage-digest.json

Why no WACZ signature: the WACZ signing specification (wacz-auth 0.1.0) carries ECDSA P-256 signatures (anonymous
key or domain certificate); our seal is Ed25519, which it cannot carry. Instead each bundle's manifest, signature
and custody log are inside, and the WACZ's own SHA-256 is appended to each bundle's custody log (``exported``).
Files are streamed into the ZIP and hashed on the way; the package is written as FILE.part and renamed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from evicap import __version__
from evicap.bundle import layout
from evicap.bundle.hashing import digest_file
from evicap.errors import BundleError, EnvironmentProblem
from evicap.export.cdxj import cdxj, index_lines
from evicap.report.facts import load_bundle
from evicap.seal.custody import Actor, append_event
from evicap.seal.keys import Signer

WACZ_VERSION = "1.1.1"
CHUNK = 4 * 1024 * 1024
SEAL_COPIES = (layout.MANIFEST, layout.CHECKSUMS, layout.SIGNATURE, layout.SIGNER_KEY, layout.TIMESTAMP,
               layout.CUSTODY)


@dataclass(frozen=True)
class ExportedBundle:
    root: Path
    manifest_sha256: str
    custody_seq: int | None


@dataclass(frozen=True)
class WaczResult:
    path: Path
    sha256: str
    size: int
    bundles: tuple[ExportedBundle, ...]
    pages: int
    records: int


def _name(path: str) -> str:
    """A resource name as the Data Package spec allows: lower case, [-a-z0-9._/]."""
    return "".join(ch if ch.isalnum() or ch in "-._/" else "-" for ch in path.lower())


class _Package:
    def __init__(self, handle: IO[bytes]) -> None:
        self.zip = zipfile.ZipFile(handle, "w", allowZip64=True)
        self.resources: list[dict[str, Any]] = []

    def add_file(self, arcname: str, source: Path, *, compress: bool) -> None:
        info = zipfile.ZipInfo(arcname, date_time=dt.datetime.now(dt.UTC).timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        digest, size = hashlib.sha256(), 0
        # ZIP64 headers only when needed: ReplayWeb.page reads sizes from the local headers, and a ZIP64 local
        # header (sizes 0xFFFFFFFF, real ones in the extra field) makes it find nothing (replaywebpage 2.4.6).
        large = source.stat().st_size >= zipfile.ZIP64_LIMIT - CHUNK
        with open(source, "rb") as reader, self.zip.open(info, "w", force_zip64=large) as writer:
            while block := reader.read(CHUNK):
                digest.update(block)
                size += len(block)
                writer.write(block)
        self._listed(arcname, digest.hexdigest(), size)

    def add_bytes(self, arcname: str, data: bytes, *, listed: bool = True) -> None:
        # Stored, not deflated: ReplayWeb.page reads indexes/index.cdxj by byte range and finds nothing in a
        # deflated entry (checked with replaywebpage 2.4.6), and these files are small.
        info = zipfile.ZipInfo(arcname, date_time=dt.datetime.now(dt.UTC).timetuple()[:6])
        info.compress_type = zipfile.ZIP_STORED
        self.zip.writestr(info, data)
        if listed:
            self._listed(arcname, hashlib.sha256(data).hexdigest(), len(data))

    def _listed(self, arcname: str, sha256: str, size: int) -> None:
        self.resources.append({"name": _name(os.path.basename(arcname)), "path": arcname,
                               "hash": f"sha256:{sha256}", "bytes": size})


def _unique(names: set[str], wanted: str) -> str:
    name, n = wanted, 1
    while name in names:
        n += 1
        name = f"{wanted}-{n}"
    names.add(name)
    return name


def export_wacz(bundles: Sequence[Path], output: Path, *, signer: Signer | None = None, actor: str | None = None,
                title: str | None = None) -> WaczResult:
    """Package ``bundles`` into the WACZ ``output``; append an ``exported`` event to each bundle's custody log
    when ``signer`` is given. Verification is the caller's: only bundles it accepted should come here."""
    loaded = [load_bundle(root) for root in bundles]
    if not loaded:
        raise BundleError("nothing to export: no bundle given")
    part = output.with_name(output.name + ".part")
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    entries: list[tuple[str, str, dict[str, Any]]] = []
    pages: list[dict[str, Any]] = []
    used: set[str] = set()
    try:
        with open(part, "wb") as handle:
            package = _Package(handle)
            for facts in loaded:
                stem = _unique(used, facts.root.resolve().name)
                warcs = [a for a in facts.manifest.get("artifacts") or [] if a.get("role") == "warc"]
                for number, artifact in enumerate(warcs):
                    filename = f"{stem}.warc.gz" if number == 0 else f"{stem}-{number + 1}.warc.gz"
                    source = facts.root / str(artifact["path"])
                    if source.is_symlink() or not source.is_file():
                        raise BundleError(f"{facts.root}: {artifact['path']} is missing or not a regular file")
                    package.add_file(f"archive/{filename}", source, compress=False)
                    entries += index_lines(source, filename)
                for name in SEAL_COPIES:
                    if (facts.root / name).is_file():
                        package.add_file(f"evicap/{stem}.{name}", facts.root / name, compress=True)
                for shot in (facts.full_shot, facts.viewport_shot):
                    if shot is not None and not (facts.root / shot.path).is_symlink():
                        package.add_file(f"evicap/{stem}.{Path(shot.path).name}", facts.root / shot.path,
                                         compress=False)
                reports = facts.root / "reports"
                if reports.is_dir():
                    for report in sorted(reports.iterdir()):
                        if report.is_file() and not report.is_symlink() and report.suffix in (".html", ".pdf"):
                            package.add_file(f"evicap/{stem}.{report.name}", report, compress=True)
                target, capture = facts.target, facts.capture
                url = target.get("final_url") or target.get("requested_url")
                if url:
                    page = {"id": facts.manifest.get("capture_id") or stem, "url": url,
                            "ts": capture.get("started_at"), "title": facts.title or url}
                    pages.append({k: v for k, v in page.items() if v})
            package.add_bytes("indexes/index.cdxj", cdxj(entries))
            header = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
            lines = [json.dumps(header, ensure_ascii=False)] + [json.dumps(p, ensure_ascii=False) for p in pages]
            package.add_bytes("pages/pages.jsonl", ("\n".join(lines) + "\n").encode())
            first = pages[0] if pages else {}
            datapackage: dict[str, Any] = {
                "profile": "data-package",
                "wacz_version": WACZ_VERSION,
                "title": title or ", ".join(str(f.case.get("item_id") or f.root.name) for f in loaded)[:200],
                "description": "evicap evidence bundles; the seal of each is under evicap/ (manifest.json, "
                               "manifest.sig, signer.pub.pem, custody.jsonl)",
                "created": created,
                "software": f"evicap {__version__}",
                "mainPageUrl": first.get("url"),
                "mainPageDate": first.get("ts"),
                "resources": package.resources,
            }
            data = json.dumps(datapackage, indent=2, ensure_ascii=False).encode()
            package.add_bytes("datapackage.json", data, listed=False)
            digest = {"path": "datapackage.json", "hash": f"sha256:{hashlib.sha256(data).hexdigest()}"}
            package.add_bytes("datapackage-digest.json", json.dumps(digest, indent=2).encode(), listed=False)
            package.zip.close()
            handle.flush()
            os.fsync(handle.fileno())
        part.replace(output)
    except OSError as error:
        part.unlink(missing_ok=True)
        raise EnvironmentProblem(f"cannot write {output}: {error.strerror or error}") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    final = digest_file(output)
    exported = []
    for facts in loaded:
        seq = None
        if signer is not None:
            details = {"format": "wacz", "wacz_version": WACZ_VERSION, "file": output.name,
                       "sha256": final.sha256, "size": final.size}
            event = append_event(facts.root / layout.CUSTODY, signer, Actor(actor or "unknown", signer.fingerprint),
                                 "exported", details, facts.manifest_sha256)
            seq = event.seq
        exported.append(ExportedBundle(facts.root, facts.manifest_sha256, seq))
    return WaczResult(output, final.sha256, final.size, tuple(exported), len(pages), len(entries))
