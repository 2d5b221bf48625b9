"""Build a transfer package: the bundles (with their reports), a request, a signed and timestamped manifest.

    PACKAGE.zip
      NAME/                   (NAME: the zip's stem; everything sits under one folder)
        README.txt            how to check it with sha256sum and openssl, in the recipient's language
        package.json          recipient, sender, bundles with their manifest SHA-256, request, every file's SHA-256
        package.sig           raw Ed25519 signature over package.json
        package.tsr           RFC 3161 token over SHA-256(package.json) (absent when no authority answered)
        signer.pub.pem        the signer's public key
        SHA256SUMS            `sha256sum -c` lines for every file but package.json/.sig/.tsr and itself
        bundles/NAME/...      each bundle as it stands after its `transferred` custody event
        request/...           the request directory (request.json, .html, .pdf, SHA256SUMS), when given

Each bundle's custody log gets a `transferred` event naming the recipient BEFORE it is copied, so the copy
carries the event. The zip is written beside the output and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evicap.bundle import layout
from evicap.errors import BundleError, UsageError
from evicap.package.readme import readme
from evicap.seal.custody import Actor, append_event, utc_now
from evicap.seal.keys import Signer
from evicap.seal.sealer import SealSettings
from evicap.seal.signing import SignatureMismatch, verify_signature
from evicap.seal.timestamp import load_trust_anchors, request_timestamp

FORMAT = "evicap-package"
PACKAGE_JSON = "package.json"
PACKAGE_SIG = "package.sig"
PACKAGE_TSR = "package.tsr"
SIGNER_KEY = "signer.pub.pem"
SUMS = "SHA256SUMS"
README = "README.txt"
SEAL = (PACKAGE_JSON, PACKAGE_SIG, PACKAGE_TSR, SUMS)


@dataclass(frozen=True)
class PackageResult:
    path: Path
    sha256: str
    files: int
    timestamped: bool
    timestamp_failures: tuple[str, ...]
    bundles: tuple[str, ...]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for piece in iter(lambda: handle.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def _check_inputs(bundles: tuple[Path, ...], request_dir: Path | None, output: Path) -> None:
    names = [b.name for b in bundles]
    if len(set(names)) != len(names):
        raise UsageError("two bundles have the same directory name; a package keeps one folder per bundle")
    for bundle in bundles:
        if not (bundle / layout.MANIFEST).is_file() or not (bundle / layout.CUSTODY).is_file():
            raise UsageError(f"{bundle} is not a sealed evicap bundle (manifest.json and custody.jsonl needed)")
    for bundle in bundles:
        try:
            verify_signature((bundle / layout.MANIFEST).read_bytes(), (bundle / layout.SIGNATURE).read_bytes(),
                             (bundle / layout.SIGNER_KEY).read_bytes())
        except (OSError, SignatureMismatch):
            raise BundleError(f"{bundle}: manifest.json does not verify with its signature; not packaging it",
                              hint="run evicap verify on it", path=str(bundle)) from None
    if request_dir is not None:
        if not (request_dir / "request.json").is_file():
            raise UsageError(f"{request_dir} is not a request directory (no request.json)",
                             hint="give the --output directory of evicap request")
        if not (request_dir / SUMS).is_file():
            raise UsageError(f"{request_dir} has no {SUMS}: not a request directory evicap request wrote")
        for line in (request_dir / SUMS).read_text("utf-8").splitlines():
            digest, _, name = line.partition("  ")
            if not (request_dir / name).is_file() or _sha256(request_dir / name) != digest:
                raise BundleError(f"{request_dir / name} changed since the request was drafted (SHA256SUMS)",
                                  path=str(request_dir))
    if output.suffix.lower() != ".zip":
        raise UsageError(f"--output {output}: the package is a .zip file")
    if output.exists():
        raise UsageError(f"{output} already exists", hint="choose a new file name")


def _copy_tree(source: Path, target: Path) -> None:
    """Regular files and directories only: a symlink in a bundle is refused, never followed."""
    for root, dirs, files in os.walk(source):
        rel = Path(root).relative_to(source)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".staging-"))
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in sorted(files) + [d for d in dirs if (Path(root) / d).is_symlink()]:
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                raise UsageError(f"{path}: not a regular file; a package holds regular files only")
            shutil.copy2(path, target / rel / name)


def build_package(bundles: tuple[Path, ...], request_dir: Path | None, recipient: str, output: Path, *,
                  signer: Signer, actor: Actor, settings: SealSettings, lang: str = "en") -> PackageResult:
    if not recipient.strip():
        raise UsageError("--to needs the recipient's name")
    _check_inputs(bundles, request_dir, output)
    root = output.stem
    request: dict[str, Any] | None = None
    if request_dir is not None:
        data = json.loads((request_dir / "request.json").read_text("utf-8"))
        request = {"id": data["id"], "kind": data["kind"], "instrument": data["instrument"]["id"],
                   "provider": data["provider"]["id"], "path": "request/"}
    created = utc_now()
    listed = []
    for bundle in bundles:
        manifest_sha256 = hashlib.sha256((bundle / layout.MANIFEST).read_bytes()).hexdigest()
        details = {"recipient": recipient, "package": output.name, "package_created_at": created,
                   "request_id": request["id"] if request else None}
        append_event(bundle / layout.CUSTODY, signer, actor, "transferred", details, manifest_sha256)
        listed.append({"name": bundle.name, "path": f"bundles/{bundle.name}/", "manifest_sha256": manifest_sha256,
                       "timestamped": (bundle / layout.TIMESTAMP).is_file()})
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".staging-package-", dir=output.parent))
    try:
        top = work / root
        for bundle in bundles:
            _copy_tree(bundle, top / "bundles" / bundle.name)
        if request_dir is not None:
            _copy_tree(request_dir, top / "request")
        (top / SIGNER_KEY).write_bytes(signer.public_pem)
        package: dict[str, Any] = {
            "format": FORMAT, "format_version": 1, "created_at": created, "recipient": recipient,
            "sender": actor.name, "signer_fingerprint": signer.fingerprint, "language": lang,
            "bundles": listed, "request": request,
        }
        tsa_urls = () if settings.no_timestamp else settings.tsa
        (top / README).write_text(readme(lang, package, root, bool(tsa_urls)), "utf-8")
        files = []
        for path in sorted(p for p in top.rglob("*") if p.is_file()):
            rel = path.relative_to(top).as_posix()
            files.append({"path": rel, "sha256": _sha256(path), "size": path.stat().st_size})
        sums = "".join(f"{f['sha256']}  {f['path']}\n" for f in files).encode("utf-8")
        (top / SUMS).write_bytes(sums)
        package["sha256sums"] = hashlib.sha256(sums).hexdigest()
        package["files"] = files
        manifest = (json.dumps(package, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        (top / PACKAGE_JSON).write_bytes(manifest)
        (top / PACKAGE_SIG).write_bytes(signer.sign(manifest))
        failures: tuple[str, ...] = ()
        timestamped = False
        if tsa_urls:
            outcome = request_timestamp(manifest, tsa_urls, load_trust_anchors(settings.tsa_ca), settings.tsa_timeout)
            failures = tuple(f"{f.tsa_url}: {f.reason}" for f in outcome.failures)
            if outcome.stamp is not None:
                (top / PACKAGE_TSR).write_bytes(outcome.stamp.token)
                timestamped = True
        partial = output.with_name(f".{output.name}.{uuid.uuid4().hex[:8]}.partial")
        count = 0
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for path in sorted(p for p in top.rglob("*") if p.is_file()):
                archive.write(path, f"{root}/{path.relative_to(top).as_posix()}")
                count += 1
        os.replace(partial, output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return PackageResult(output, _sha256(output), count, timestamped, failures, tuple(b.name for b in bundles))
