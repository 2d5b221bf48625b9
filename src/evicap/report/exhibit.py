"""One exhibit's report: the context its template needs, and the screenshot split into page-sized slices."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from evicap import __version__
from evicap.render import Document
from evicap.render.formatting import zone
from evicap.report.facts import BundleFacts, Screenshot
from evicap.verify.report import BundleReport

TEMPLATES = Path(__file__).with_name("templates")
# Height of one slice as a multiple of its width: what fits below a caption on an A4 or Letter page at full width.
SLICE_RATIO = 1.2


@dataclass(frozen=True)
class Slice:
    """One page's part of a tall screenshot: CSS class, pixel rows shown."""

    css_class: str
    top: int
    bottom: int


def image_src(root: Path, rel: str, out_dir: Path) -> str:
    """A relative URL from the report's directory to a bundle file (the report travels with its bundle)."""
    target = (root / rel).resolve()
    return quote(os.path.relpath(target, out_dir.resolve()).replace(os.sep, "/"))


def slices(shot: Screenshot, prefix: str = "s") -> tuple[list[Slice], str]:
    """Slices of a tall screenshot and the CSS that shows each one (percent margins are relative to the width,
    so the same image, offset and clipped, shows each band at full page width without decoding it here)."""
    band = max(1, int(shot.width * SLICE_RATIO))
    parts: list[Slice] = []
    css: list[str] = []
    for index, top in enumerate(range(0, shot.height, band)):
        bottom = min(shot.height, top + band)
        name = f"{prefix}{index}"
        parts.append(Slice(name, top, bottom))
        css.append(
            f".{name} {{ aspect-ratio: {shot.width} / {bottom - top}; }}\n"
            f".{name} img {{ margin-top: -{top / shot.width * 100:.6f}%; }}\n"
        )
    return parts, "".join(css)


def verification_rows(report: BundleReport) -> list[dict[str, Any]]:
    return [{"name": c.name, "status": c.status, "subject": c.subject or "", "reason": c.reason} for c in report.checks]


def exhibit_context(facts: BundleFacts, verification: BundleReport, out_dir: Path, doc: Document,
                    now: dt.datetime) -> tuple[dict[str, Any], str]:
    """The template context for one exhibit, and the extra CSS of its screenshot slices."""
    capture = facts.capture
    tz = zone(capture.get("local_timezone"), capture.get("utc_offset"))
    extra_css = ""
    full: dict[str, Any] | None = None
    if facts.full_shot is not None:
        parts, extra_css = slices(facts.full_shot)
        full = {"src": image_src(facts.root, facts.full_shot.path, out_dir), "shot": facts.full_shot, "slices": parts}
    viewport = None
    if facts.viewport_shot is not None:
        viewport = {"src": image_src(facts.root, facts.viewport_shot.path, out_dir), "shot": facts.viewport_shot}
    context = {
        "b": facts,
        "m": facts.manifest,
        "case": facts.case,
        "target": facts.target,
        "capture": capture,
        "env": facts.environment,
        "profile": facts.manifest.get("profile") or {},
        "network": facts.manifest.get("network") or {},
        "tz": tz,
        "tz_name": capture.get("local_timezone") or capture.get("utc_offset") or "UTC",
        "full": full,
        "viewport": viewport,
        "checks": verification_rows(verification),
        "verified": verification.ok,
        "verdict": verification.verdict,
        "failures": len(verification.failures),
        "report_time": now,
        "evicap_version": __version__,
        "header": header_lines(facts, doc),
    }
    return context, extra_css


def header_lines(facts: BundleFacts, doc: Document) -> Sequence[str]:
    case = facts.case
    return [
        doc.gettext("Case %(case)s · Exhibit %(item)s",
                    case=case.get("case_id") or "—", item=case.get("item_id") or "—"),
        doc.gettext("Manifest SHA-256: %(sha)s", sha=facts.manifest_sha256),
    ]
