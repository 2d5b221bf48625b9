"""Message catalogs: gettext .po files shipped in evicap/locale, compiled in memory when first used.

Shipping the .po sources (not .mo) means a fresh ``pip install -e .`` works with no build step; compiling a
catalog of a few hundred strings with Babel takes milliseconds and happens once per process and language.
English is the source language: its strings are the msgids, so it needs no catalog.
"""

from __future__ import annotations

import functools
import gettext
import io
from dataclasses import dataclass
from importlib import resources

from evicap.errors import UsageError

DOMAIN = "evicap"


@dataclass(frozen=True)
class Language:
    """A language a document can be written in."""

    code: str
    """ISO 639-1 code, also the Babel/CLDR locale used for dates and numbers."""
    name: str
    """The language's own name for itself."""
    direction: str
    """``ltr`` or ``rtl``: the HTML ``dir`` of the whole document."""


LANGUAGES: dict[str, Language] = {
    "en": Language("en", "English", "ltr"),
    "fr": Language("fr", "Français", "ltr"),
    "ar": Language("ar", "العربية", "rtl"),
}


def check_language(code: str) -> Language:
    """The Language for ``code``, or UsageError naming the ones there are."""
    language = LANGUAGES.get(code)
    if language is None:
        raise UsageError(f"unknown report language {code!r}", hint=f"one of: {', '.join(LANGUAGES)}")
    return language


@functools.cache
def translations(code: str) -> gettext.NullTranslations:
    """gettext translations for ``code`` (NullTranslations for English, the source language)."""
    check_language(code)
    if code == "en":
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo  # imported here: checking a language code needs no Babel
    from babel.messages.pofile import read_po

    source = resources.files("evicap").joinpath("locale", code, "LC_MESSAGES", f"{DOMAIN}.po")
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=code, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)
