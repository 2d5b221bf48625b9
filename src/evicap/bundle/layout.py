"""Names of the files in an evidence bundle. One place, so writer and verifier agree.

    BUNDLE/
      manifest.json        capture facts + artifact list (signed)
      SHA256SUMS           `sha256sum -c` lines for every artifact (its own hash is in the manifest)
      manifest.sig         raw 64-byte Ed25519 signature over manifest.json
      signer.pub.pem       signer's SubjectPublicKeyInfo PEM
      manifest.tsr         RFC 3161 TimeStampResp over SHA-256(manifest.json) (absent if untimestamped)
      manifest.2.tsr ...   further tokens from other authorities (--tsa-all, evicap timestamp --add)
      custody.jsonl        hash-chained, signed custody log
      custody.head         the log's signed end (last seq + SHA-256 of the last line), rewritten on each append
      artifacts/           everything the capture produced
        capture.warc.gz
        screenshot-full.png, screenshot-viewport.png, dom.html, page.mhtml, page.pdf,
        certificates.pem, certificates.json, page-facts.json, items.json, media-hashes.json, ...
"""

from __future__ import annotations

MANIFEST = "manifest.json"
CHECKSUMS = "SHA256SUMS"
SIGNATURE = "manifest.sig"
SIGNER_KEY = "signer.pub.pem"
TIMESTAMP = "manifest.tsr"
CUSTODY = "custody.jsonl"
CUSTODY_HEAD = "custody.head"
ARTIFACTS_DIR = "artifacts"

WARC = f"{ARTIFACTS_DIR}/capture.warc.gz"
SCREENSHOT_FULL = f"{ARTIFACTS_DIR}/screenshot-full.png"
SCREENSHOT_VIEWPORT = f"{ARTIFACTS_DIR}/screenshot-viewport.png"
DOM = f"{ARTIFACTS_DIR}/dom.html"
MHTML = f"{ARTIFACTS_DIR}/page.mhtml"
PDF = f"{ARTIFACTS_DIR}/page.pdf"
CERTIFICATES_PEM = f"{ARTIFACTS_DIR}/certificates.pem"
CERTIFICATES_JSON = f"{ARTIFACTS_DIR}/certificates.json"
PAGE_FACTS = f"{ARTIFACTS_DIR}/page-facts.json"
ITEMS = f"{ARTIFACTS_DIR}/items.json"
IDENTIFIERS = f"{ARTIFACTS_DIR}/identifiers.json"
MEDIA_HASHES = f"{ARTIFACTS_DIR}/media-hashes.json"  # MD5/SHA-256/PDQ of every image and video (evicap.detect)

# Files at the bundle root that are not artifacts: the seal and its companions.
SEAL_FILES = (MANIFEST, CHECKSUMS, SIGNATURE, SIGNER_KEY, TIMESTAMP, CUSTODY, CUSTODY_HEAD)


def timestamp_file(number: int) -> str:
    """Name of the bundle's ``number``-th token (1-based): manifest.tsr, then manifest.2.tsr, manifest.3.tsr, ..."""
    return TIMESTAMP if number == 1 else f"manifest.{number}.tsr"


def is_timestamp_file(name: str) -> bool:
    """Whether a bundle-root name is one of the token names ``timestamp_file`` gives."""
    if name == TIMESTAMP:
        return True
    middle = name.removeprefix("manifest.").removesuffix(".tsr")
    return name.startswith("manifest.") and name.endswith(".tsr") and middle.isdigit() and int(middle) >= 2 \
        and middle == str(int(middle))

# Directory prefixes marking work in progress; never a finished bundle.
STAGING_PREFIX = ".staging-"
INDEX = "case-index.json"
