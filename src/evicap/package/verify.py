"""`evicap verify PACKAGE.zip` (or the directory it was unpacked into): the package, then every bundle in it.

A zip from elsewhere is hostile until checked. Before anything is written to disk every entry is examined:
absolute names, ``..`` parts, backslashes, drive letters, symlinks and other non-regular entries, duplicate names,
more than ``MAX_ENTRIES`` entries, a declared total over ``MAX_TOTAL`` or a compression ratio over ``MAX_RATIO``
(zip bombs) are refused. Extraction then counts the bytes actually inflated, so a size that lies in the central
directory cannot get past the limit either. The package checks are the same a recipient runs with the README's
stock commands: signature over package.json, signer trust, token, SHA256SUMS bound to package.json, every file's
hash, no file that package.json does not list.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from evicap.errors import EvicapError, VerificationError
from evicap.package.build import PACKAGE_JSON, PACKAGE_SIG, PACKAGE_TSR, SEAL, SIGNER_KEY, SUMS
from evicap.seal.keys import public_key_fingerprint
from evicap.seal.signing import verify_signature
from evicap.seal.timestamp import verify_timestamp
from evicap.verify.report import BundleReport, Check, failed, not_checked, passed
from evicap.verify.seal import trusted_fingerprints

MAX_ENTRIES = 200_000
MAX_TOTAL = 64 * 1024**3
MAX_RATIO = 200
_RATIO_FLOOR = 1024 * 1024  # small entries may compress well without being a bomb


class UnsafeZip(VerificationError):
    exit_code = 1


def is_package(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".zip"
    return path.is_dir() and (path / PACKAGE_JSON).is_file()


def check_zip(archive: zipfile.ZipFile, source: str) -> str:
    """The single top folder of a safe archive; UnsafeZip names the first entry that is not."""
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise UnsafeZip(f"{source}: {len(infos)} entries (more than {MAX_ENTRIES}): refused")
    seen: set[str] = set()
    total = 0
    tops: set[str] = set()
    for info in infos:
        name = info.filename
        mode = info.external_attr >> 16
        pure = PurePosixPath(name)
        if (name.startswith("/") or "\\" in name or ".." in pure.parts or (len(name) > 1 and name[1] == ":")
                or "\x00" in name):
            raise UnsafeZip(f"{source}: entry {name!r} would be written outside the package: refused")
        kind = stat.S_IFMT(mode)  # 0 when the archiver recorded no Unix file type
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeZip(f"{source}: entry {name!r} is a symlink or special file: refused")
        if name in seen:
            raise UnsafeZip(f"{source}: entry {name!r} appears twice: refused")
        seen.add(name)
        total += info.file_size
        if total > MAX_TOTAL:
            raise UnsafeZip(f"{source}: inflates to more than {MAX_TOTAL} bytes: refused (zip bomb?)")
        if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise UnsafeZip(f"{source}: entry {name!r} compresses {info.file_size // max(info.compress_size, 1)}:1 "
                            "(zip bomb?): refused")
        tops.add(pure.parts[0] if pure.parts else "")
    if len(tops) != 1 or "" in tops:
        raise UnsafeZip(f"{source}: a package has exactly one top folder; found {len(tops)}")
    return tops.pop()


def extract(archive: zipfile.ZipFile, target: Path) -> None:
    """Write each regular entry under ``target``, counting inflated bytes against the declared sizes."""
    for info in archive.infolist():
        if info.is_dir():
            continue
        dest = target.joinpath(*PurePosixPath(info.filename).parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with archive.open(info) as src, open(dest, "xb") as out:
            while piece := src.read(1 << 20):
                written += len(piece)
                if written > info.file_size:
                    raise UnsafeZip(f"entry {info.filename!r} inflates past its declared size: refused")
                out.write(piece)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for piece in iter(lambda: handle.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def package_checks(root: Path, trusted: dict[str, str], tsa_cas: list[Path]) -> tuple[list[Check], dict[str, Any]]:
    checks: list[Check] = []
    try:
        manifest = (root / PACKAGE_JSON).read_bytes()
        package = json.loads(manifest)
    except (OSError, ValueError) as error:
        return [failed("package", f"{PACKAGE_JSON} unreadable: {error}")], {}
    try:
        pem = (root / SIGNER_KEY).read_bytes()
        verify_signature(manifest, (root / PACKAGE_SIG).read_bytes(), pem)
        fingerprint = public_key_fingerprint(pem)
        checks.append(passed("package-signature", f"Ed25519 signature over {PACKAGE_JSON} verifies with {SIGNER_KEY}"))
        if fingerprint != package.get("signer_fingerprint"):
            checks.append(failed("package-signer", f"{PACKAGE_JSON} names {package.get('signer_fingerprint')} "
                                                   f"but {SIGNER_KEY} is {fingerprint}"))
        elif fingerprint in trusted:
            checks.append(passed("package-signer", f"signer {fingerprint} is trusted ({trusted[fingerprint]})"))
        else:
            checks.append(failed("package-signer", f"valid signature by unknown key {fingerprint} "
                                                   "(--trusted-key PUB.pem)"))
    except (OSError, EvicapError) as error:
        reason = error.one_line() if isinstance(error, EvicapError) else str(error)
        checks.append(failed("package-signature", f"{PACKAGE_SIG} does not verify over {PACKAGE_JSON}: {reason}"))
    if (root / PACKAGE_TSR).is_file():
        try:
            info = verify_timestamp((root / PACKAGE_TSR).read_bytes(), manifest, tsa_cas)
            checks.append(passed("package-timestamp", f"RFC 3161 token over SHA-256({PACKAGE_JSON}) verifies; "
                                                      f"time {info.gen_time.isoformat()}"))
        except EvicapError as error:
            checks.append(failed("package-timestamp", f"{PACKAGE_TSR}: {error.one_line()}"))
    else:
        checks.append(not_checked("package-timestamp", "package has no trusted timestamp (no package.tsr)"))
    sums = root / SUMS
    if sums.is_file() and _sha256(sums) == package.get("sha256sums"):
        checks.append(passed("package-checksums", f"{SUMS} is the one {PACKAGE_JSON} names"))
    else:
        checks.append(failed("package-checksums", f"{SUMS} missing or not the one {PACKAGE_JSON} names"))
    listed = {f["path"]: f for f in package.get("files", [])}
    bad = 0
    for rel, entry in listed.items():
        path = root.joinpath(*PurePosixPath(rel).parts)
        if ".." in PurePosixPath(rel).parts or not path.is_file() or path.is_symlink():
            checks.append(failed("package-file", "missing", rel))
            bad += 1
        elif _sha256(path) != entry["sha256"]:
            checks.append(failed("package-file", "SHA-256 differs from package.json", rel))
            bad += 1
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}
    for extra in sorted(present - set(listed) - set(SEAL) - {SIGNER_KEY}):
        checks.append(failed("package-file", f"not listed in {PACKAGE_JSON}", extra))
        bad += 1
    if not bad:
        checks.append(passed("package-files", f"all {len(listed)} files match their SHA-256 in {PACKAGE_JSON}"))
    return checks, package


def verify_package(path: Path, trusted_keys: Iterable[Path] = (), tsa_cas: Iterable[Path] = (),
                   lenient: bool = False, deep: bool = False, *,
                   clock_tolerance: float | None = None) -> list[BundleReport]:
    """The package's report first, then one report per bundle in it.

    Every file of the package, reports included, is bound to the signed package.json whatever ``lenient`` says;
    ``lenient`` is passed on to each bundle's own check of files nobody listed (strict by default).
    """
    from evicap.verify import verify_bundle

    trusted_keys, tsa_cas = list(trusted_keys), list(tsa_cas)
    trusted = trusted_fingerprints(trusted_keys)
    work: Path | None = None
    try:
        if path.is_file():
            try:
                with zipfile.ZipFile(path) as archive:
                    top = check_zip(archive, str(path))
                    work = Path(tempfile.mkdtemp(prefix="evicap-package-"))
                    extract(archive, work)
            except zipfile.BadZipFile as error:
                if work is None:
                    raise VerificationError(f"{path}: not a zip file ({error})") from None
                raise UnsafeZip(f"{path}: corrupt entry ({error}): refused") from None
            except (zlib.error, EOFError) as error:
                raise UnsafeZip(f"{path}: corrupt entry ({error}): refused") from None
            root = work / top
        else:
            root = path
        checks, package = package_checks(root, trusted, tsa_cas)
        reports = [BundleReport(str(path), tuple(checks), package.get("sha256sums"))]
        for bundle in package.get("bundles", []):
            folder = root / "bundles" / bundle["name"]
            if not folder.is_dir():
                reports.append(BundleReport(f"{path}:bundles/{bundle['name']}",
                                            (failed("bundle", "missing from the package"),)))
                continue
            tolerance = {} if clock_tolerance is None else {"clock_tolerance": clock_tolerance}
            report = verify_bundle(folder, trusted_keys, tsa_cas, lenient=lenient, deep=deep, **tolerance)
            if report.manifest_sha256 != bundle["manifest_sha256"]:
                extra = failed("package-bundle", f"manifest.json SHA-256 {report.manifest_sha256} is not the "
                                                 f"{bundle['manifest_sha256']} package.json names")
                report = BundleReport(report.path, (*report.checks, extra), report.manifest_sha256)
            reports.append(BundleReport(f"{path}:bundles/{bundle['name']}", report.checks, report.manifest_sha256))
        return reports
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)

