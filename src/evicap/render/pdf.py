"""HTML -> PDF through the same Chromium that captures (Playwright ``page.pdf``), with JavaScript disabled.

The browser never opens the file itself: it runs sandboxed under its own unprivileged account (evicap.capture.
browser), which may not read the investigator's directories. The page is loaded from a reserved origin
(``REPORT_ORIGIN``, a name under ``.invalid`` that no resolver answers) whose paths are absolute file paths, each
answered by our process from the file (Playwright ``route.fulfill``), so relative image paths resolve as they do on
disk; every other request is aborted, so a report can never reach the network.
Chromium prints the header and footer templates on every page and fills in the page numbers itself; the text
stays text, so ``pdftotext`` (and a reader's search) finds every hash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from evicap.errors import first_line
from evicap.render.document import PdfHeader, RenderError

if TYPE_CHECKING:
    from playwright._impl._api_structures import PdfMargins
    from playwright.async_api import Browser, BrowserContext, Route

PAPERS = ("A4", "Letter")
MARGINS: PdfMargins = {"top": "24mm", "bottom": "16mm", "left": "14mm", "right": "14mm"}


REPORT_ORIGIN = "http://evicap-report.invalid"


async def _serve(route: Route) -> None:
    """Answer the report's own files from disk; abort everything else."""
    url = urlsplit(route.request.url)
    if f"{url.scheme}://{url.netloc}" != REPORT_ORIGIN:
        await route.abort()
        return
    path = Path(unquote(url.path))
    if route.request.method != "GET" or not path.is_file():
        await route.fulfill(status=404, body="")
        return
    await route.fulfill(path=str(path))


def document_url(html: Path) -> str:
    """Where a browser context prepared by ``serve_documents`` finds ``html``."""
    return REPORT_ORIGIN + quote(str(html.resolve()))


async def serve_documents(context: BrowserContext) -> None:
    """Make ``context`` load our documents from disk through our process, and nothing from the network."""
    await context.route("**/*", _serve)


async def html_to_pdf(browser: Browser, html: Path, pdf: Path, header: PdfHeader, *, paper: str = "A4",
                      timeout: float = 120.0) -> None:
    """Print ``html`` to ``pdf`` (written as pdf.part, then renamed). Raises RenderError."""
    if paper not in PAPERS:
        raise RenderError(f"unknown paper size {paper!r} (A4 or Letter)")
    part = pdf.with_name(pdf.name + ".part")
    context = await browser.new_context(java_script_enabled=False, service_workers="block")
    try:
        await serve_documents(context)
        page = await context.new_page()
        page.set_default_timeout(timeout * 1000)
        await page.goto(document_url(html), wait_until="load")
        await page.emulate_media(media="print")
        await page.pdf(
            path=str(part),
            format=paper,
            print_background=True,
            display_header_footer=True,
            header_template=header.header,
            footer_template=header.footer,
            margin=MARGINS,
            prefer_css_page_size=False,
        )
    except Exception as error:  # Playwright's errors: browser gone, timeout, page crash
        part.unlink(missing_ok=True)
        raise RenderError(f"could not print {html} to PDF: {first_line(error)}") from error
    finally:
        await context.close()
    part.replace(pdf)


def pdf_files(jobs: Sequence[tuple[Path, Path, PdfHeader]], *, paper: str = "A4",
              browser_path: str | None = None) -> None:
    """Print several (html, pdf, header) jobs with one browser launched for them (a synchronous caller's entry)."""
    from evicap.capture.browser import find_browser, launch

    async def run() -> None:
        async with launch(find_browser(browser_path), handle_sigint=False) as browser:
            for html, pdf, header in jobs:
                await html_to_pdf(browser, html, pdf, header, paper=paper)

    asyncio.run(run())
