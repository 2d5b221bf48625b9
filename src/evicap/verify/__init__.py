"""Verify an evidence bundle: a list of checks, each pass / fail / not-checked with its reason.

    report.py     Check and BundleReport: the outcome as data (JSON form for --json)
    paths.py      open files strictly inside a bundle: no symlink, no `..`, no absolute path
    artifacts.py  one read per file: size, SHA-256 and SHA-512 on two threads
    warc.py       streamed WARC reader: bounded inflation, truncation, block and payload digests, 1.1 grammar
    urls.py       URLs compared as the browser normalises them (WHATWG, via ada)
    inventory.py  everything else in the directory: unlisted, links, hard links, NFC and look-alike names,
                  files added after sealing that a custody event lists
    seal.py       signature, signer trust, RFC 3161 timestamp, custody log (through evicap.seal)
    bundle.py     verify_bundle(): runs all of the above and returns a BundleReport
"""

from __future__ import annotations

from evicap.verify.bundle import verify_bundle, verify_path
from evicap.verify.report import BundleReport, Check

__all__ = ["BundleReport", "Check", "verify_bundle", "verify_path"]
