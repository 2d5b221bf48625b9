"""Safe HTML documents: Jinja2 with autoescape always on, message catalogs, per-language filters, strict CSP.

A Document never renders captured markup. Captured strings (titles, metadata, URLs) are values in the context and
are escaped like any other; the only unescaped text is the style sheet, read from our own package files, whose
SHA-256 goes into the Content-Security-Policy so that the browser applies nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from evicap.errors import EvicapError
from evicap.render.catalog import check_language, translations
from evicap.render.formatting import Formatter, zone

_OWN_TEMPLATES = Path(str(resources.files("evicap.render").joinpath("templates")))
_FORBIDDEN = re.compile(r"<\s*(script|iframe|object|embed|base|form)\b|<[^>]*\son[a-z]+\s*=|javascript:", re.I)


@dataclass(frozen=True)
class PdfHeader:
    """The header and footer HTML templates Chromium prints on each page (made by ``Document.pdf_header``)."""

    header: str
    footer: str


class RenderError(EvicapError):
    """A document could not be made (template bug, forbidden output, PDF failure). Exit 2: nothing was wrong
    with the evidence, the tool could not write about it."""

    exit_code = 2


def content_security_policy(css: str) -> str:
    """No script, no network, no frames, no forms; styles only the inline sheet whose hash is given."""
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; script-src 'none'; object-src 'none'; connect-src 'none'; frame-src 'none'; "
        f"style-src 'sha256-{digest}'; img-src 'self' data: file:; font-src 'self' data: file:; "
        "base-uri 'none'; form-action 'none'"
    )


class Document:
    """Renders templates in one language. ``template_dirs`` come first, then the shared ``base.html``."""

    def __init__(self, lang: str, template_dirs: Sequence[Path] = ()) -> None:
        self.language = check_language(lang)
        self.format = Formatter(self.language.code)
        loader = jinja2.FileSystemLoader([*map(str, template_dirs), str(_OWN_TEMPLATES)])
        self.env = jinja2.Environment(
            loader=loader,
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.install_gettext_translations(translations(self.language.code), newstyle=True)  # type: ignore[attr-defined]
        self.env.filters.update(
            datetime=self.format.datetime,
            date=self.format.date,
            number=self.format.number,
            size=self.format.size,
        )
        self.env.globals["zone"] = zone

    def gettext(self, message: str, **values: Any) -> str:
        """A catalog string outside a template (PDF header labels, CLI-facing summaries)."""
        text = translations(self.language.code).gettext(message)
        return text % values if values else text

    def stylesheet(self, extra_css: str = "") -> str:
        base = (_OWN_TEMPLATES / "base.css").read_text(encoding="utf-8")
        return base + extra_css

    def render(self, template: str, context: Mapping[str, Any], *, extra_css: str = "") -> str:
        """The finished HTML page. ``extra_css`` is trusted CSS made by our code (never captured text)."""
        css = self.stylesheet(extra_css)
        if "</" in css:
            raise RenderError("style sheet may not contain '</'")
        values = dict(context)
        values.update(
            lang=self.language.code,
            direction=self.language.direction,
            css=Markup(css),
            csp=content_security_policy(css),
        )
        try:
            html = self.env.get_template(template).render(values)
        except jinja2.TemplateError as error:
            raise RenderError(f"template {template}: {error}") from error
        forbidden = _FORBIDDEN.search(html)
        if forbidden:
            raise RenderError(f"refusing to write {template}: it would contain {forbidden.group(0)[:40]!r}")
        return html

    def pdf_header(self, lines: Sequence[str]) -> PdfHeader:
        """Chromium header and footer templates: ``lines`` on every page, 'Page N of M' at the foot."""
        header = self.env.get_template("pdf_header.html").render(
            lines=list(lines), lang=self.language.code, direction=self.language.direction
        )
        footer = self.env.get_template("pdf_footer.html").render(
            lang=self.language.code,
            direction=self.language.direction,
            page_number=Markup('<span class="pageNumber"></span>'),
            total_pages=Markup('<span class="totalPages"></span>'),
        )
        return PdfHeader(header, footer)
