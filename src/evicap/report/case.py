"""The case report of a batch case directory: every target, totals, failures, the index's seal."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evicap.batch.index_seal import CUSTODY as INDEX_CUSTODY
from evicap.batch.index_seal import SIGNER_KEY as INDEX_SIGNER_KEY
from evicap.bundle import layout
from evicap.errors import BundleError, EvicapError
from evicap.machine import cores
from evicap.render import Document
from evicap.report.exhibit import image_src, verification_rows
from evicap.report.facts import png_size
from evicap.seal.custody import CustodyEvent, read_events
from evicap.seal.keys import public_key_fingerprint
from evicap.verify.paths import PathProblem, read_small
from evicap.verify.report import BundleReport

MAX_INDEX = 256 * 1024 * 1024
THUMB_WIDTH = 320  # pixels: sharp at the 34 mm the table prints it
THUMB_PNG_LEVEL = 6  # zlib's default; `optimize` (trying every filter) cost 7 ms a thumbnail for 2 % smaller files


@dataclass
class CaseFacts:
    root: Path
    index: dict[str, Any]
    index_sha256: str
    custody: list[CustodyEvent]
    signer_fingerprint: str | None

    @property
    def case_id(self) -> str:
        return str(self.index.get("case_id") or "")

    @property
    def timestamps(self) -> list[dict[str, Any]]:
        return [dict(e.details, recorded_at=e.time) for e in self.custody if e.action == "timestamped"]


def load_case(root: Path) -> CaseFacts:
    try:
        data = read_small(root, layout.INDEX, MAX_INDEX)
        index = json.loads(data)
    except (PathProblem, OSError, ValueError) as error:
        raise BundleError(f"{root}: cannot read {layout.INDEX}: {error}") from None
    if not isinstance(index, dict):
        raise BundleError(f"{root}: {layout.INDEX} is not a case index")
    custody: list[CustodyEvent] = []
    try:
        custody = read_events(root / INDEX_CUSTODY)
    except (FileNotFoundError, EvicapError, OSError):
        custody = []
    fingerprint = None
    try:
        fingerprint = public_key_fingerprint((root / INDEX_SIGNER_KEY).read_bytes())
    except (OSError, EvicapError, ValueError):
        fingerprint = None
    return CaseFacts(root, index, hashlib.sha256(data).hexdigest(), custody, fingerprint)


def thumbnail(root: Path, rel: str) -> str | None:
    """A small PNG of a viewport screenshot as a data: URI: a hundred full-size screenshots would make the case
    report's PDF tens of megabytes and Chromium hold every one decoded. None when the file cannot be read."""
    from PIL import Image, UnidentifiedImageError

    size = png_size(root, rel)
    if size is None or size[0] * size[1] > 64_000_000:  # a viewport is small; refuse to decode a bomb
        return None
    try:
        with Image.open(root / rel) as image:
            # A box filter by the whole factor first (a 1280 px viewport: 4x4 pixels averaged into one), then the
            # usual resampling of what is left: the same look as resampling it all, at a quarter of the CPU.
            factor = image.width // THUMB_WIDTH
            small = image.reduce(factor) if factor >= 2 else image
            small.thumbnail((THUMB_WIDTH, THUMB_WIDTH * 4))
            out = io.BytesIO()
            small.convert("RGB").save(out, "PNG", compress_level=THUMB_PNG_LEVEL)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _entry_row(case: CaseFacts, entry: dict[str, Any], reports: dict[str, BundleReport], out_dir: Path
               ) -> dict[str, Any]:
    row = dict(entry)
    row["final_url"] = None
    row["thumb"] = None
    row["verified"] = None
    bundle = entry.get("bundle")
    if bundle:
        root = case.root / str(bundle)
        report = reports.get(str(root))
        row["verified"] = None if report is None else report.ok
        row["verdict"] = None if report is None else report.verdict
        try:
            manifest = json.loads(read_small(root, layout.MANIFEST, 64 * 1024 * 1024))
            row["final_url"] = (manifest.get("target") or {}).get("final_url")
            row["description"] = (manifest.get("case") or {}).get("description")
            for artifact in manifest.get("artifacts") or []:
                if artifact.get("role") == "screenshot-viewport" and png_size(root, str(artifact.get("path"))):
                    row["thumb"] = thumbnail(root, str(artifact["path"])) or image_src(root, str(artifact["path"]),
                                                                                     out_dir)
        except (PathProblem, OSError, ValueError):
            row["final_url"] = None
    return row


def case_context(case: CaseFacts, index_report: BundleReport, bundle_reports: list[BundleReport], out_dir: Path,
                 doc: Document, now: dt.datetime) -> dict[str, Any]:
    reports = {str(Path(r.path)): r for r in bundle_reports}
    entries = [e for e in case.index.get("targets") or [] if isinstance(e, dict)]
    # Reading each bundle's manifest and decoding its screenshot release the GIL for most of their time.
    with ThreadPoolExecutor(max_workers=cores(), thread_name_prefix="evicap-report") as pool:
        rows = list(pool.map(lambda entry: _entry_row(case, entry, reports, out_dir), entries))
    totals = Counter(str(e.get("status")) for e in entries)
    failing_bundles = [r for r in bundle_reports if not r.ok]
    return {
        "c": case,
        "rows": rows,
        "totals": dict(sorted(totals.items())),
        "total": len(entries),
        "failed": [r for r in rows if r.get("status") != "complete"],
        "index_checks": verification_rows(index_report),
        "index_ok": index_report.ok,
        "index_verdict": index_report.verdict,
        "failing_bundles": failing_bundles,
        "verified": index_report.ok and not failing_bundles,
        "report_time": now,
        "header": [
            doc.gettext("Case %(case)s · case report", case=case.case_id or "—"),
            doc.gettext("Case index SHA-256: %(sha)s", sha=case.index_sha256),
        ],
    }
