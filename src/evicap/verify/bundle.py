"""verify_bundle(): every check on one bundle, as a BundleReport.

Order follows what a recipient asks first: is the manifest what was signed, by whom and when, is the custody
chain unbroken, and only then are the files the manifest lists still exactly those bytes. Files are read once
each (the WARC is parsed while it is hashed).

WARC record digests (WARC-Block-Digest, WARC-Payload-Digest) are recomputed when they can tell the reader
something the seal does not: when the signature is missing, invalid or by an untrusted key, when the WARC's bytes
differ from the signed file digests (a second read then names the altered records), or always with ``deep``.
When a trusted signature covers the WARC's SHA-256 and SHA-512 and both match, the file is bit for bit the one
that was sealed, so its record digests are necessarily the sealed ones; recomputing them costs two more SHA-256
passes over every WARC byte and proves only that the writer computed them right (docs/architecture.md, "verify").
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from evicap.bundle import layout
from evicap.config import DEFAULT_CLOCK_TOLERANCE
from evicap.errors import EvicapError, VerificationError, first_line
from evicap.machine import cores
from evicap.verify.artifacts import HashingReader, check_artifact, compare_digest, open_artifact
from evicap.verify.inventory import bundle_inventory, root_checks
from evicap.verify.paths import PathProblem, path_problem, read_small
from evicap.verify.report import BundleReport, Check, failed, not_checked, passed
from evicap.verify.seal import custody_check, signature_checks, trusted_fingerprints
from evicap.verify.timestamps import timestamp_checks
from evicap.verify.urls import url_key
from evicap.verify.warc import WarcScan, scan_warc

# Bounds that keep verify's memory under 200 MB whatever a bundle holds (docs/architecture.md, "Verify"): a manifest
# of 4 MiB lists some 10,000 artifacts; parsed JSON costs up to ~15x its size, so the cap is what bounds memory.
MAX_MANIFEST = 4 * 1024 * 1024
MAX_CHECKSUMS = 4 * 1024 * 1024
MAX_CUSTODY = 64 * 1024 * 1024
MAX_VERIFY_THREADS = 2  # bundles of a case directory checked at once (one per core, at most two: the bound above holds)


def _load_manifest(root: Path) -> tuple[bytes | None, dict[str, Any] | None, list[Check]]:
    try:
        data = read_small(root, layout.MANIFEST, MAX_MANIFEST)
    except PathProblem as problem:
        return None, None, [failed("manifest", f"{layout.MANIFEST}: {problem}")]
    except OSError as error:
        return None, None, [failed("manifest", f"{layout.MANIFEST}: unreadable: {error.strerror or error}")]
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else first_line(error, 200)
        return data, None, [failed("manifest", f"{layout.MANIFEST} is not valid UTF-8 JSON: {reason}")]
    if not isinstance(parsed, dict):
        return data, None, [failed("manifest", f"{layout.MANIFEST} is not a JSON object")]
    from evicap.bundle.manifest import validate

    try:
        validate(parsed)
    except EvicapError as error:
        return data, parsed, [failed("manifest", f"{layout.MANIFEST} breaks the schema: {error.one_line()}")]
    except RecursionError:
        return data, parsed, [failed("manifest", f"{layout.MANIFEST} is nested too deeply to validate")]
    return data, parsed, [passed("manifest", f"{layout.MANIFEST} is valid JSON and matches the manifest schema")]


def _listed_artifacts(manifest: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], list[Check]]:
    """The manifest's artifact entries that are usable; a failed check for each that is not."""
    raw = manifest.get("artifacts")
    if not isinstance(raw, list):
        return [], [failed("artifact", "manifest has no artifact list")]
    usable: list[Mapping[str, Any]] = []
    checks: list[Check] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        path = entry.get("path") if isinstance(entry, Mapping) else None
        if not isinstance(path, str):
            checks.append(failed("artifact", f"manifest artifact #{index} has no path"))
            continue
        reason = path_problem(path)
        if not reason and not unicodedata.is_normalized("NFC", path):
            reason = "path is not in Unicode NFC form"
        if reason:
            checks.append(failed("artifact", f"unsafe path in manifest: {reason}", path))
        elif path in seen:
            checks.append(failed("artifact", "listed twice in the manifest", path))
        else:
            seen.add(path)
            usable.append(entry)
    return usable, checks


def _checksums_checks(root: Path, manifest: Mapping[str, Any], artifacts: Sequence[Mapping[str, Any]]) -> Check:
    """SHA256SUMS: its own hash is the one the signed manifest names, and its lines agree with the manifest."""
    try:
        data = read_small(root, layout.CHECKSUMS, MAX_CHECKSUMS)
    except (PathProblem, OSError) as problem:
        return failed("checksums", f"{layout.CHECKSUMS}: {problem}")
    named = manifest.get("checksums")
    expected = named.get("sha256") if isinstance(named, Mapping) else None
    if hashlib.sha256(data).hexdigest() != expected:
        return failed("checksums", f"{layout.CHECKSUMS} does not match the SHA-256 the manifest names (edited)")
    listed: dict[str, str] = {}
    for number, raw in enumerate(io.BytesIO(data), 1):  # lazily: a file of blank lines must not become a list
        if number > len(artifacts):
            return failed("checksums", f"{layout.CHECKSUMS} has more lines than the manifest lists artifacts")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        digest, sep, name = line.partition("  ")
        if not sep:
            digest, sep, name = line.partition(" *")
        if not sep or len(digest) != 64:
            return failed("checksums", f"{layout.CHECKSUMS} line {number} is not a sha256sum line")
        listed[name] = digest.lower()
    in_manifest = {str(a["path"]): str(a.get("sha256")) for a in artifacts}
    if listed != in_manifest:
        differ = sorted(set(listed.items()) ^ set(in_manifest.items()))
        names = sorted({name for name, _ in differ})[:5]
        return failed("checksums", f"{layout.CHECKSUMS} disagrees with the manifest on: {', '.join(names)}")
    return passed("checksums", f"{layout.CHECKSUMS} matches the manifest ({len(listed)} entries)")


def _warc_checks(rel: str, scan: WarcScan, recomputed: bool) -> list[Check]:
    if scan.problems:
        more = f" (and {scan.more_problems} more)" if scan.more_problems else ""
        return [failed("warc", "; ".join(scan.problems[:3]) + more, rel)]
    if recomputed:
        digests = f"{scan.digests_checked} record digests recomputed and match"
    else:
        digests = (f"its {scan.digests_listed} record digests are the sealed ones (the file matches the signed "
                   "SHA-256 and SHA-512; --deep recomputes them)")
    return [passed("warc", f"{scan.records} records parse to the end; {digests}", rel)]


def _scan_warc_artifact(
    root: Path, entry: Mapping[str, Any], wanted: set[str], recompute: bool, grammar: bool
) -> tuple[list[Check], WarcScan | None]:
    """One read: the file's size, SHA-256 and SHA-512 while its records are parsed. If the bytes are not the
    sealed ones and digests were not recomputed, a second read recomputes them to say which records changed."""
    rel = str(entry["path"])
    digests = recompute
    while True:
        try:
            stream, _size = open_artifact(root, rel)
        except PathProblem as problem:
            return [failed("artifact", str(problem), rel), not_checked("warc", "WARC could not be opened", rel)], None
        with stream:
            reader = HashingReader(stream)
            try:
                scan = scan_warc(reader, wanted, digests=digests, grammar=grammar)
                artifact = compare_digest(rel, entry, reader.finish())
            except OSError as error:
                return [failed("artifact", f"unreadable: {error.strerror or error}", rel)], None
        if digests or artifact.status == "pass":
            return [artifact, *_warc_checks(rel, scan, recomputed=digests)], scan
        digests = True


def _relied_on(
    manifest: Mapping[str, Any], artifacts: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, str], dict[str, str]]:
    """(record URIs the artifacts point at, URLs that must have a response record), each as url_key -> as listed."""
    uris = {url_key(str(a["warc_record"])): str(a["warc_record"]) for a in artifacts
            if isinstance(a.get("warc_record"), str)}
    urls: dict[str, str] = {}
    target = manifest.get("target")
    if isinstance(target, Mapping) and target.get("http_status") is not None:
        for key in ("requested_url", "final_url"):
            if isinstance(target.get(key), str):
                urls[url_key(target[key])] = target[key]
    return uris, urls


def _records_check(uris: Mapping[str, str], urls: Mapping[str, str], scans: Sequence[WarcScan]) -> Check:
    found = set().union(*(s.found_uris for s in scans)) if scans else set()
    responses = set().union(*(s.responses for s in scans)) if scans else set()
    missing = sorted(uris[k] for k in set(uris) - found)
    missing += [f"response for {urls[k]}" for k in sorted(set(urls) - responses)]
    if not uris and not urls:
        return not_checked("warc-records", "the manifest relies on no WARC record")
    if not scans:
        return failed("warc-records", "the manifest relies on WARC records but lists no WARC")
    if missing:
        return failed("warc-records", f"missing from the WARC: {', '.join(missing[:5])}")
    return passed("warc-records", f"all {len(uris) + len(urls)} records the manifest relies on are present")


def _check_files(
    root: Path,
    manifest: Mapping[str, Any],
    artifacts: Sequence[Mapping[str, Any]],
    recompute: bool,
) -> list[Check]:
    uris, urls = _relied_on(manifest, artifacts)
    checks: list[Check] = []
    scans: list[WarcScan] = []
    for entry in artifacts:
        if entry.get("role") != "warc":
            checks.append(check_artifact(root, entry))
            continue
        # Format 1.0 wrote padded base32 digests and WARC-Refers-To-Target-URI on attachments: read, not judged.
        grammar = manifest.get("format_version") != "1.0"
        found, scan = _scan_warc_artifact(root, entry, set(uris) | set(urls), recompute, grammar)
        checks += found
        if scan is not None:
            scans.append(scan)
    checks.append(_records_check(uris, urls, scans))
    return checks


def _seal_trusted(checks: Sequence[Check]) -> bool:
    """True when the manifest's signature verifies and its signer is trusted."""
    status = {check.name: check.status for check in checks}
    return status.get("signature") == "pass" and status.get("signer-trust") == "pass"


def verify_bundle(
    path: Path,
    trusted_keys: Iterable[Path] = (),
    tsa_cas: Iterable[Path] = (),
    lenient: bool = False,
    deep: bool = False,
    *,
    clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE,
) -> BundleReport:
    """Run every check on the bundle at ``path``.

    ``trusted_keys``: public key files (or directories of them) whose signatures are trusted; ``tsa_cas``: PEM trust
    anchors for time-stamp tokens. The caller merges configured defaults (the CLI does). ``deep`` recomputes WARC
    record digests even when a trusted seal already proves the WARC bit-identical. Strict by default: any file that
    neither the manifest, the seal nor a custody event accounts for fails (inventory.py); ``lenient`` reports plain
    unlisted files as not-checked instead. Raises VerificationError
    only when ``path`` is not a bundle at all; every problem inside a bundle is a failed Check.
    """
    root = Path(path)
    if not root.is_dir() or not os.path.lexists(root / layout.MANIFEST):
        raise VerificationError(f"not an evicap bundle: {root} has no {layout.MANIFEST}",
                                hint="give the bundle directory (the one holding manifest.json)")
    trusted = trusted_fingerprints(trusted_keys)
    anchors = list(tsa_cas)
    rooted = root_checks(Path(path))
    manifest_bytes, manifest, checks = _load_manifest(root)
    checks = rooted + checks
    if manifest_bytes is None:
        return BundleReport(str(root), tuple(checks))
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    checks += signature_checks(root, manifest_bytes, manifest, trusted)
    checks += timestamp_checks(root, manifest_bytes, manifest, anchors, clock_tolerance)
    checks.append(custody_check(root, manifest_bytes, trusted))
    if manifest is None:
        checks.append(not_checked("artifact", "manifest unreadable: no artifact list to check"))
        return BundleReport(str(root), tuple(checks), manifest_sha256)
    artifacts, problems = _listed_artifacts(manifest)
    checks += problems
    checks.append(_checksums_checks(root, manifest, artifacts))
    recompute = deep or not _seal_trusted(checks)
    checks += _check_files(root, manifest, artifacts, recompute)
    checks += bundle_inventory(root, [str(a["path"]) for a in artifacts], MAX_CUSTODY, lenient=lenient)
    return BundleReport(str(root), tuple(checks), manifest_sha256)


def verify_path(
    path: Path,
    trusted_keys: Iterable[Path] = (),
    tsa_cas: Iterable[Path] = (),
    lenient: bool = False,
    deep: bool = False,
    *,
    clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE,
) -> list[BundleReport]:
    """A bundle gives one report; a batch directory (holding layout.INDEX) gives the index's report from
    ``evicap.batch.index_check.check_index`` (index seal + each listed bundle's manifest hash), then one full report
    per bundle directory in it. The index check is imported directly: a build that cannot run it is broken, and a
    broken build must not let a case directory verify."""

    root = Path(path)
    if not root.exists():
        raise VerificationError(f"no such bundle: {root}")
    if not root.is_dir():
        raise VerificationError(f"not an evicap bundle: {root} is not a directory")
    keys, cas = list(trusted_keys), list(tsa_cas)
    if os.path.lexists(root / layout.MANIFEST) or not os.path.lexists(root / layout.INDEX):
        return [verify_bundle(root, keys, cas, lenient, deep, clock_tolerance=clock_tolerance)]
    try:
        from evicap.batch.index_check import check_index  # here, not at the top: batch imports verify
    except ImportError as error:
        index_checks = [failed("case-index", f"this evicap build cannot check case indexes ({error}): reinstall")]
    else:
        index_checks = check_index(root, trusted_keys=keys, tsa_cas=cas)
    bundles = [child for child in sorted(root.iterdir())
               if child.is_dir() and not child.is_symlink() and (child / layout.MANIFEST).exists()]

    def one(bundle: Path) -> BundleReport:
        return verify_bundle(bundle, keys, cas, lenient, deep, clock_tolerance=clock_tolerance)

    # The bundles are independent and most of a check is hashing and reading, which release the GIL: one thread
    # per core (in order; each thread holds one bundle's bounded buffers).
    with ThreadPoolExecutor(max_workers=min(cores(), MAX_VERIFY_THREADS), thread_name_prefix="evicap-verify") as pool:
        return [BundleReport(str(root / layout.INDEX), tuple(index_checks)), *pool.map(one, bundles)]
