"""HTML -> PDF through the same Chromium that captures (Playwright ``page.pdf``), with JavaScript disabled.

The page is opened from its file so that relative image paths resolve; every http(s) request is aborted, so a
report can never reach the network. Chromium prints the header and footer templates on every page and fills in
the page numbers itself; the text stays text, so ``pdftotext`` (and a reader's search) finds every hash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from evicap.render.document import PdfHeader, RenderError

if TYPE_CHECKING:
    from playwright._impl._api_structures import PdfMargins
    from playwright.async_api import Browser, Route

PAPERS = ("A4", "Letter")
MARGINS: PdfMargins = {"top": "24mm", "bottom": "16mm", "left": "14mm", "right": "14mm"}


async def _abort(route: Route) -> None:
    await route.abort()


async def html_to_pdf(browser: Browser, html: Path, pdf: Path, header: PdfHeader, *, paper: str = "A4",
                      timeout: float = 120.0) -> None:
    """Print ``html`` to ``pdf`` (written as pdf.part, then renamed). Raises RenderError."""
    if paper not in PAPERS:
        raise RenderError(f"unknown paper size {paper!r} (A4 or Letter)")
    part = pdf.with_name(pdf.name + ".part")
    context = await browser.new_context(java_script_enabled=False, offline=True)
    try:
        await context.route("http://**/*", _abort)
        await context.route("https://**/*", _abort)
        page = await context.new_page()
        page.set_default_timeout(timeout * 1000)
        await page.goto(html.resolve().as_uri(), wait_until="load")
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
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RenderError(f"could not print {html} to PDF: {first}") from error
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
