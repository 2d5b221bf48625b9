"""evicap.render and the report's pure parts: escaping, the CSP, refusals, catalogs, formatting, screenshot slices."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from jinja2 import Environment

from evicap.errors import UsageError
from evicap.render import LANGUAGES, Document, RenderError, check_language, translations
from evicap.render.formatting import Formatter, zone
from evicap.report.exhibit import slices
from evicap.report.facts import Screenshot

SRC = Path(__file__).resolve().parents[1] / "src" / "evicap"


def _template(tmp_path: Path, body: str) -> Document:
    (tmp_path / "t.html").write_text('{% extends "base.html" %}{% block body %}' + body + "{% endblock %}")
    return Document("en", [tmp_path])


def test_captured_values_are_escaped_and_csp_pins_the_style_sheet(tmp_path: Path) -> None:
    doc = _template(tmp_path, "<p>{{ title }}</p>")
    html = doc.render("t.html", {"title": '<script>alert(1)</script><img src=x onerror="alert(2)">'})
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    css = re.search(r"<style>(.*?)</style>", html, re.S)
    assert css is not None
    digest = base64.b64encode(hashlib.sha256(css.group(1).encode()).digest()).decode()
    assert f"style-src &#39;sha256-{digest}&#39;" in html and "default-src &#39;none&#39;" in html


def test_a_template_that_would_emit_script_is_refused(tmp_path: Path) -> None:
    for body in ("<script>1</script>", '<a href="javascript:x">x</a>', '<p onclick="x()">x</p>', "<iframe></iframe>"):
        with pytest.raises(RenderError):
            _template(tmp_path, body).render("t.html", {})


def test_unknown_language_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown report language 'de'"):
        check_language("de")


def test_every_template_string_is_translated_in_french_and_arabic() -> None:
    env = Environment(extensions=["jinja2.ext.i18n"])
    msgids: set[str] = set()
    for template in [*SRC.glob("render/templates/*.html"), *SRC.glob("report/templates/*.html")]:
        for _line, _func, message in env.extract_translations(template.read_text("utf-8")):
            msgids.add(message if isinstance(message, str) else message[0])
    assert len(msgids) > 100
    for code in ("fr", "ar"):
        catalog = translations(code)
        missing = sorted(m for m in msgids if catalog.gettext(m) == m and m not in ("Description", "Signature",
                                                                                     "Action", "URL"))
        assert not missing, (code, missing[:5])
        for message in msgids:  # placeholders survive translation
            assert set(re.findall(r"%\(\w+\)s", message)) == set(re.findall(r"%\(\w+\)s", catalog.gettext(message)))


def test_dates_and_numbers_per_language() -> None:
    moment = "2026-12-01T20:05:56.385Z"
    assert Formatter("en").datetime(moment) == "Dec 1, 2026, 8:05:56\u202fPM UTC"
    assert Formatter("fr").datetime(moment, zone("Europe/Paris")).startswith("1 déc. 2026, 21:05:56")
    assert Formatter("fr").datetime(moment, zone("Europe/Paris")).endswith("UTC+01:00")
    assert Formatter("fr").number(1234567) == "1\u202f234\u202f567"
    assert Formatter("en").size(1193591) == "1,193,591"
    assert zone(None, "-05:00").utcoffset(dt.datetime(2026, 1, 1)) == dt.timedelta(hours=-5)
    assert LANGUAGES["ar"].direction == "rtl"


def test_tall_screenshot_is_cut_into_page_sized_bands_that_cover_it_exactly() -> None:
    parts, css = slices(Screenshot("artifacts/screenshot-full.png", 1000, 5000))
    assert [(p.top, p.bottom) for p in parts] == [(0, 1200), (1200, 2400), (2400, 3600), (3600, 4800), (4800, 5000)]
    assert ".s4 { aspect-ratio: 1000 / 200; }" in css and ".s1 img { margin-top: -120.000000%; }" in css
    (single,), _ = slices(Screenshot("x.png", 1280, 900))
    assert (single.top, single.bottom) == (0, 900)


def test_identifiers_from_the_manifest_are_listed_escaped(tmp_path: Path) -> None:
    from evicap.report.exhibit import TEMPLATES, exhibit_context
    from evicap.report.facts import BundleFacts
    from evicap.verify.report import BundleReport, failed

    manifest = {"format": "evicap-bundle", "case": {"case_id": "C", "item_id": "E"}, "artifacts": [],
                "identifiers": [{"platform": "x", "kind": "handle", "value": "<script>@larkfield</script>",
                                 "form": "https://x.example/larkfield", "record_id": "<urn:uuid:1234>"}]}
    facts = BundleFacts(tmp_path, manifest, "ab" * 32)
    doc = Document("en", [TEMPLATES])
    report = BundleReport(str(tmp_path), (failed("signature", "bad signature"),))
    context, css = exhibit_context(facts, report, tmp_path, doc, dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    html = doc.render("exhibit.html", context, extra_css=css)
    assert "&lt;script&gt;@larkfield&lt;/script&gt;" in html and "&lt;urn:uuid:1234&gt;" in html
    assert "VERIFICATION FAILED" in html and "bad signature" in html
