"""Names of the files in an evidence bundle. One place, so writer and verifier agree.

    BUNDLE/
      manifest.json        capture facts + artifact list (signed)
      SHA256SUMS           `sha256sum -c` lines for every artifact (its own hash is in the manifest)
      manifest.sig         raw 64-byte Ed25519 signature over manifest.json
      signer.pub.pem       signer's SubjectPublicKeyInfo PEM
      manifest.tsr         RFC 3161 TimeStampResp over SHA-256(manifest.json) (absent if untimestamped)
      custody.jsonl        hash-chained, signed custody log
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
MEDIA_HASHES = f"{ARTIFACTS_DIR}/media-hashes.json"  # MD5/SHA-256/PDQ of every image and video (evicap.detect)

# Files at the bundle root that are not artifacts: the seal and its companions.
SEAL_FILES = (MANIFEST, CHECKSUMS, SIGNATURE, SIGNER_KEY, TIMESTAMP, CUSTODY)

# Directory prefixes marking work in progress; never a finished bundle.
STAGING_PREFIX = ".staging-"
INDEX = "case-index.json"
