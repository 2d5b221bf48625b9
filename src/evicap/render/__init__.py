"""Document machinery shared by the court report and the request drafts: safe HTML, PDF, languages.

The whole API (everything else in the package is private to it):

    from evicap.render import Document, LANGUAGES, check_language, html_to_pdf, pdf_files

    doc = Document(lang="fr", template_dirs=[Path(".../my_templates")])
    html = doc.render("request.html", {"manifest": ...}, extra_css="")   # str; write it where you like
    # templates {% extends "base.html" %} (CSP, lang/dir, fonts, blocks `title` and `body`); strings go through
    # {{ _("...") }} (catalog msgids), values through the filters |datetime(tz) |date |number |size, and the
    # global zone(name, offset) gives a tzinfo; everything is HTML-escaped. doc.gettext("...") outside templates.
    header = doc.pdf_header(["Case X · Exhibit Y", "manifest SHA-256 …"])       # PdfHeader: lines on every page
    await html_to_pdf(browser, html_path, pdf_path, header, paper="A4")        # async, on a running Browser
    pdf_files([(html_path, pdf_path, header)], paper="Letter")                 # sync, launches one browser

Guarantees: autoescape is on for every template and cannot be switched off by a caller; the page carries a
Content-Security-Policy that allows no script, no connection, no frame, styles only by the hash of the inline
sheet, images only from the document's own directory tree or data: URIs; ``render`` refuses (RenderError) any
output that contains a <script element or an inline event handler, whatever the templates did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evicap.lazy import lazy_names
from evicap.render.catalog import LANGUAGES, Language, check_language, translations

if TYPE_CHECKING:
    from evicap.render.document import Document, PdfHeader, RenderError
    from evicap.render.pdf import html_to_pdf, pdf_files

# The template engine and the PDF printer are imported on first use: `evicap capture` checks its --report-lang
# before the browser starts, and Jinja's import (about 0.07 s) is not worth waiting for then.
_LAZY = {"Document": "document", "PdfHeader": "document", "RenderError": "document", "html_to_pdf": "pdf",
         "pdf_files": "pdf"}


__getattr__ = lazy_names(__name__, _LAZY)

__all__ = [
    "LANGUAGES",
    "Document",
    "Language",
    "PdfHeader",
    "RenderError",
    "check_language",
    "html_to_pdf",
    "pdf_files",
    "translations",
]
