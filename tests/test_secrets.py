"""Scrubbing the investigator's secrets (issue 12): every form, every place, counted honestly."""

from __future__ import annotations

import base64
import email.policy
import json
from email.message import EmailMessage
from urllib.parse import quote

from evicap.capture.secrets import Scrubber, SecretSet, marker

TOKEN = "tok-3f9a8b7c6d5e4f3a2b1c"
STATE = {
    "cookies": [
        {"name": "sid", "value": "c00kie-VALUE-8a7b6c5d", "domain": "127.0.0.1"},
        {"name": "lang", "value": "en", "domain": "127.0.0.1"},  # too short to be a secret
    ],
    "origins": [{"origin": "http://127.0.0.1", "localStorage": [{"name": "api", "value": TOKEN}]}],
}


def scrubber(**kwargs: object) -> Scrubber:
    return Scrubber(SecretSet.from_storage_state(STATE), **kwargs)  # type: ignore[arg-type]


def test_every_form_of_a_secret_is_replaced_by_a_marker_of_the_same_length() -> None:
    s = scrubber()
    forms = [TOKEN, quote(TOKEN + "/x", safe="")[:-3], json.dumps(TOKEN)[1:-1], f"Bearer {TOKEN}"]
    for text in forms:
        data = f"before {text} after".encode()
        out = s.scrub_bytes(data, "warc", "rec")
        assert TOKEN.encode() not in out
        assert len(out) == len(data)
    assert s.scrub_bytes(b"lang=en", "warc") == b"lang=en"
    assert marker(20) == b"[redacted----------]"


def test_counts_name_the_secret_and_the_place_never_the_value() -> None:
    s = scrubber()
    s.scrub_bytes(f"a={TOKEN}&b={TOKEN}".encode(), "bundle.warc.gz", "urn:uuid:1")
    s.scrub_text("sid=c00kie-VALUE-8a7b6c5d", "page-facts.json")
    listed = s.redactions()
    assert {"artifact": "bundle.warc.gz", "record": "urn:uuid:1", "secret": "localStorage api (http://127.0.0.1)",
            "count": 2} in listed
    assert any(r["secret"] == "cookie sid (127.0.0.1)" and r["count"] == 1 for r in listed)
    assert TOKEN not in json.dumps(listed) and "c00kie" not in json.dumps(listed)


def test_a_secret_split_between_stream_chunks_is_still_found() -> None:
    s = scrubber()
    data = b"x" * 5000 + TOKEN.encode() + b"y" * 3000 + TOKEN.encode()
    for size in (7, 100, 300, 4096, 5010):
        chunks = [data[i:i + size] for i in range(0, len(data), size)]
        out = b"".join(s.scrub_chunks(chunks, "warc", "r"))
        assert len(out) == len(data)
        assert TOKEN.encode() not in out and out.count(b"[redacted") == 2


def test_token_fields_of_a_session_are_scrubbed_in_forms_json_and_html() -> None:
    s = scrubber(token_fields=True)
    body = (b'fb_dtsg=AQHxyz123456789&q=1 {"authenticity_token":"abcdef123456"} '
            b'<meta name="csrf-token" content="Zz9Yy8Xx7Ww6"> <input value="qwerty987654" name="_csrf">')
    out = s.scrub_bytes(body, "warc", "r")
    for value in (b"AQHxyz123456789", b"abcdef123456", b"Zz9Yy8Xx7Ww6", b"qwerty987654"):
        assert value not in out
    assert b"q=1" in out and len(out) == len(body)
    fields = {r["secret"] for r in s.redactions()}
    assert {"body token field fb_dtsg", "body token field authenticity_token", "body token field csrf-token",
            "body token field _csrf"} <= fields


def test_mhtml_parts_are_decoded_scrubbed_and_encoded_again() -> None:
    message = EmailMessage()
    message["Subject"] = "snapshot"
    message.make_mixed()
    html = EmailMessage()
    long_line = "<p>" + "w" * 70 + TOKEN + "</p>"  # quoted-printable breaks this line inside the token
    html.set_content(long_line, subtype="html", cte="quoted-printable")
    image = EmailMessage()
    image.set_content(b"\x89PNG" + TOKEN.encode() + b"\x00", maintype="image", subtype="png")
    message.attach(html)
    message.attach(image)
    data = message.as_bytes(policy=email.policy.SMTP)
    assert TOKEN.encode() not in data  # encoded: a plain search would miss it
    out = scrubber().scrub_mhtml(data, "page.mhtml")
    parsed = email.message_from_bytes(out, policy=email.policy.default)
    decoded = b"".join(p.get_payload(decode=True) or b"" for p in parsed.walk() if not p.is_multipart())
    assert TOKEN.encode() not in decoded
    assert base64.b64encode(TOKEN.encode()) not in out
    assert decoded.count(b"[redacted") == 2


def test_keep_secrets_keeps_them_and_counts_nothing() -> None:
    s = scrubber(keep=True)
    assert s.scrub_bytes(TOKEN.encode(), "warc") == TOKEN.encode()
    assert s.redactions() == []


def test_url_credentials_and_their_basic_form() -> None:
    secrets = SecretSet()
    secrets.add_credentials("proxy", "bob", "s3cr3t")
    s = Scrubber(secrets)
    basic = base64.b64encode(b"bob:s3cr3t")
    out = s.scrub_bytes(b"Proxy-Authorization: Basic " + basic + b" pw=s3cr3t", "warc")
    assert basic not in out and b"s3cr3t" not in out
    assert s.visible("your password is s3cr3t") == ["proxy password"]


def test_token_fields_taken_apart_into_json_are_scrubbed_too() -> None:
    s = scrubber(token_fields=True)
    facts = {"meta": [{"name": "csrf-token", "content": "Zz9Yy8Xx7Ww6"}, {"name": "viewport", "content": "width=1"}],
             "form": {"fb_dtsg": "AQHxyz123456789"}}
    out = s.scrub_json(facts, "page-facts.json")
    assert "Zz9Yy8Xx7Ww6" not in json.dumps(out) and "AQHxyz123456789" not in json.dumps(out)
    assert out["meta"][1]["content"] == "width=1"


def test_a_long_token_value_is_scrubbed_whole_even_across_chunks() -> None:
    s = scrubber(token_fields=True)
    jwt = "eyJ" + "a1B2c3D4" * 400  # 3 KB, like an OAuth access token
    data = b"x" * 9000 + f"?access_token={jwt}&next=1 ".encode() + b"y" * 9000
    for size in (1000, 4096):
        out = b"".join(s.scrub_chunks([data[i:i + size] for i in range(0, len(data), size)], "warc"))
        assert b"a1B2c3D4" not in out and b"&next=1" in out and len(out) == len(data)
