"""Identifier extraction from a WARC written by an independent writer (warcio), without a browser."""

from __future__ import annotations

import io
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from evicap.profiles.identifiers import from_warc


def _warc(path: Path, responses: list[tuple[str, int, str, bytes]]) -> dict[str, str]:
    """Write one response record per (url, status, content type, body); returns url -> record id."""
    ids = {}
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url, status, content_type, body in responses:
            http = StatusAndHeaders(f"{status} OK", [("Content-Type", content_type)], protocol="HTTP/1.1")
            record = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)
            writer.write_record(record)
            ids[url] = record.rec_headers.get_header("WARC-Record-ID")
    return ids


def test_platform_from_the_host_when_no_profile_is_given(tmp_path: Path) -> None:
    warc = tmp_path / "c.warc.gz"
    ids = _warc(warc, [
        ("https://x.com/i/api/graphql/abc/UserByScreenName", 200, "application/json",
         b'{"data":{"user":{"result":{"rest_id":"12345","legacy":{"screen_name":"someone"}}}}}'),
        ("https://www.youtube.com/watch?v=abcdefghijk", 200, "text/html; charset=utf-8",
         b'<meta itemprop="channelId" content="UC0123456789abcdefghijkl">'),
        ("https://x.com/missing", 404, "text/html", b'<a href="/ghost/status/999999">'),
        ("https://video.example/big.mp4", 200, "video/mp4", bytes(2 << 20)),
    ])
    found = {(i.platform, i.kind, i.value): i for i in from_warc(warc)}
    account = found[("x", "account_id", "12345")]
    assert account.record_id == ids["https://x.com/i/api/graphql/abc/UserByScreenName"]
    assert account.form == "https://x.com/i/user/12345"
    assert found[("x", "username", "@someone")].form == "https://x.com/someone"
    channel = found[("youtube", "channel_id", "UC0123456789abcdefghijkl")]
    assert channel.record_id == ids["https://www.youtube.com/watch?v=abcdefghijk"]
    assert not any(value == "999999" for _, _, value in found), "a 404 page is not the platform's content"


def test_the_profile_names_the_platform_for_a_local_copy(tmp_path: Path) -> None:
    warc = tmp_path / "c.warc.gz"
    _warc(warc, [("http://127.0.0.1:8000/vk", 200, "text/html; charset=utf-8",
                  '<div data-post-id="-42_7"><a class="author" href="/somegroup" data-from-id="-42">Группа</a>'
                  '</div>'.encode())])
    assert from_warc(warc) == []
    found = {(i.kind, i.value): i for i in from_warc(warc, platform="vk")}
    assert found[("post_id", "-42_7")].form == "https://vk.com/wall-42_7"
    assert found[("account_id", "-42")].form == "https://vk.com/club42"
    assert found[("username", "somegroup")].platform == "vk"
