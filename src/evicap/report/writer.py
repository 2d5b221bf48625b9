"""Write reports: verify, render HTML per language, print PDFs with one browser, record custody events.

Reports are derived documents, never part of the seal. Each one written inside a bundle (``BUNDLE/reports/``) is
recorded by a signed ``reported`` custody event whose ``details.files`` lists its path, SHA-256 and size, so
``evicap verify`` can tell a genuine report from a file slipped in later. A bundle that does not verify still
gets its report, marked as failing on its first page: the caller learns it from ``WrittenReport.verified``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evicap.bundle import layout
from evicap.bundle.hashing import digest_file
from evicap.errors import BundleError, EnvironmentProblem, UsageError
from evicap.render import Document, PdfHeader, check_language, html_to_pdf, pdf_files
from evicap.render.pdf import PAPERS
from evicap.report.exhibit import TEMPLATES, exhibit_context
from evicap.report.facts import load_bundle
from evicap.seal.custody import Actor, append_event
from evicap.seal.keys import Signer
from evicap.verify import BundleReport, verify_path

if TYPE_CHECKING:
    from playwright.async_api import Browser

REPORTS_DIR = "reports"


@dataclass(frozen=True)
class ReportRequest:
    """What to report on, and how."""

    paths: Sequence[Path]
    """Bundle directories and batch case directories."""
    langs: Sequence[str] = ("en",)
    output: Path | None = None
    """None: each bundle's (or case directory's) own ``reports/``. A directory: one sub-directory per input."""
    paper: str = "A4"
    pdf: bool = True
    trusted_keys: Sequence[Path] = ()
    tsa_cas: Sequence[Path] = ()
    signer: Signer | None = None
    """Signs the ``reported`` custody events; None writes the reports without recording them."""
    actor_name: str | None = None
    browser_path: str | None = None
    bundles_of_case: bool = False
    """For a case directory, also write each bundle's own exhibit report."""


@dataclass(frozen=True)
class WrittenReport:
    """One report written (one input, one language)."""

    source: Path
    kind: str
    """``exhibit`` or ``case``."""
    lang: str
    html: Path
    pdf: Path | None
    verified: bool
    verdict: str
    custody_seq: int | None
    """Sequence number of the custody event that records it; None when not recorded."""
    not_recorded: str | None = None
    """Why the custody log refused the event (a bundle whose manifest no longer matches its log), if it did."""


@dataclass
class _Job:
    source: Path
    kind: str
    lang: str
    html: Path
    pdf: Path | None
    header: PdfHeader
    verified: bool
    verdict: str
    custody_log: Path | None
    custody_root: Path
    bound_sha256: str


def input_kind(path: Path) -> str:
    if not path.exists():
        raise UsageError(f"no such bundle or case directory: {path}")
    if path.is_dir() and (path / layout.MANIFEST).is_file():
        return "exhibit"
    if path.is_dir() and (path / layout.INDEX).is_file():
        return "case"
    raise UsageError(f"not an evicap bundle or case directory: {path}",
                     hint=f"give a directory holding {layout.MANIFEST} or {layout.INDEX}")


def _out_dir(request: ReportRequest, source: Path) -> Path:
    directory = source / REPORTS_DIR if request.output is None else request.output / source.resolve().name
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EnvironmentProblem(f"cannot create report directory {directory}: {error.strerror or error}") from None
    if not os.access(directory, os.W_OK):
        raise EnvironmentProblem(f"report directory {directory} is not writable")
    return directory


def _write_text(path: Path, text: str) -> None:
    part = path.with_name(path.name + ".part")
    try:
        part.write_text(text, encoding="utf-8")
        part.replace(path)
    except OSError as error:
        part.unlink(missing_ok=True)
        raise EnvironmentProblem(f"cannot write {path}: {error.strerror or error}") from None


def _exhibit_jobs(request: ReportRequest, source: Path, verification: BundleReport, now: dt.datetime,
                  stem: str = "report") -> list[_Job]:
    facts = load_bundle(source)
    out_dir = _out_dir(request, source)
    jobs = []
    for lang in request.langs:
        doc = Document(lang, [TEMPLATES])
        context, css = exhibit_context(facts, verification, out_dir, doc, now)
        html = out_dir / f"{stem}.{lang}.html"
        _write_text(html, doc.render("exhibit.html", context, extra_css=css))
        jobs.append(_Job(source, "exhibit", lang, html, out_dir / f"{stem}.{lang}.pdf" if request.pdf else None,
                         doc.pdf_header(context["header"]), verification.ok, verification.verdict,
                         source / layout.CUSTODY, source, facts.manifest_sha256))
    return jobs


def _case_jobs(request: ReportRequest, source: Path, reports: list[BundleReport], now: dt.datetime) -> list[_Job]:
    from evicap.batch.index_seal import CUSTODY as INDEX_CUSTODY
    from evicap.report.case import case_context, load_case

    case = load_case(source)
    out_dir = _out_dir(request, source)
    index_report, bundle_reports = reports[0], reports[1:]
    jobs = []
    for lang in request.langs:
        doc = Document(lang, [TEMPLATES])
        context = case_context(case, index_report, bundle_reports, out_dir, doc, now)
        html = out_dir / f"case-report.{lang}.html"
        _write_text(html, doc.render("case.html", context))
        log = source / INDEX_CUSTODY
        jobs.append(_Job(source, "case", lang, html, out_dir / f"case-report.{lang}.pdf" if request.pdf else None,
                         doc.pdf_header(context["header"]), bool(context["verified"]),
                         index_report.verdict, log if log.is_file() else None, source, case.index_sha256))
    if request.bundles_of_case:
        for report in bundle_reports:
            jobs += _exhibit_jobs(request, Path(report.path), report, now)
    return jobs


def _record(job: _Job, request: ReportRequest) -> int | None:
    """One ``reported`` event per report (its HTML and PDF), when it lies inside the bundle it describes."""
    if request.signer is None or job.custody_log is None:
        return None
    root = job.custody_root.resolve()
    files: list[dict[str, Any]] = []
    for path in (job.html, job.pdf):
        if path is None:
            continue
        digest = digest_file(path)
        try:
            rel = path.resolve().relative_to(root).as_posix()
        except ValueError:
            return None  # written outside the bundle: not one of its files, nothing for its log to vouch for
        files.append({"path": rel, "sha256": digest.sha256, "size": digest.size})
    actor = Actor(request.actor_name or "unknown", request.signer.fingerprint)
    details = {"files": files, "kind": f"{job.kind} report", "lang": job.lang, "verification": job.verdict}
    event = append_event(job.custody_log, request.signer, actor, "reported", details, job.bound_sha256)
    return event.seq


def _prepare(request: ReportRequest) -> list[_Job]:
    """Check the request, verify every input and write every HTML file; the PDFs come after."""
    for lang in request.langs:
        check_language(lang)
    if request.paper not in PAPERS:
        raise UsageError(f"unknown paper size {request.paper!r}", hint="A4 or Letter")
    kinds = [(Path(p), input_kind(Path(p))) for p in request.paths]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    jobs: list[_Job] = []
    for source, kind in kinds:
        reports = verify_path(source, request.trusted_keys, request.tsa_cas)
        if kind == "exhibit":
            jobs += _exhibit_jobs(request, source, reports[0], now)
        else:
            jobs += _case_jobs(request, source, reports, now)
    return jobs


def _finish(request: ReportRequest, jobs: list[_Job]) -> list[WrittenReport]:
    written = []
    for job in jobs:
        seq, refused = None, None
        try:
            seq = _record(job, request)
        except BundleError as error:  # an altered bundle: its log refuses new events; the report still stands
            refused = error.one_line()
        written.append(WrittenReport(job.source, job.kind, job.lang, job.html, job.pdf, job.verified, job.verdict,
                                     seq, refused))
    return written


def write_reports(request: ReportRequest) -> list[WrittenReport]:
    """Every report the request asks for (launches one browser for the PDFs). Raises UsageError /
    EnvironmentProblem / RenderError before or while writing; a bundle that fails verification is not an error
    here (see ``WrittenReport.verified``)."""
    jobs = _prepare(request)
    pdf_jobs = [(job.html, job.pdf, job.header) for job in jobs if job.pdf is not None]
    try:
        if pdf_jobs:
            pdf_files(pdf_jobs, paper=request.paper, browser_path=request.browser_path)
    except BaseException:
        _discard(jobs)
        raise
    return _finish(request, jobs)


def _discard(jobs: list[_Job]) -> None:
    """Remove the documents of a run that could not finish, before any was recorded: a report is derived, never
    evidence, and one left unrecorded in a bundle would make the bundle fail verification as an unlisted file."""
    for job in jobs:
        for path in (job.html, job.pdf):
            if path is not None:
                path.unlink(missing_ok=True)


async def write_reports_async(request: ReportRequest, browser: Browser) -> list[WrittenReport]:
    """The same on a browser that is already running (the capture's own: no second launch)."""
    jobs = await asyncio.to_thread(_prepare, request)
    try:
        for job in jobs:
            if job.pdf is not None:
                await html_to_pdf(browser, job.html, job.pdf, job.header, paper=request.paper)
    except BaseException:
        _discard(jobs)
        raise
    return await asyncio.to_thread(_finish, request, jobs)
