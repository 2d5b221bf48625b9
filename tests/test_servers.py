"""The shared test servers behave like real web servers, and Chromium trusts exactly the CA it should."""

from __future__ import annotations

import gzip
import http.client
import ssl
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Error

from tests.servers import LocalServer


def _get(server: LocalServer, path: str, headers: dict[str, str] | None = None) -> tuple[Any, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def test_gzip_chunked_range_and_404_on_the_wire(http_server: LocalServer) -> None:
    text = "<p>" + "évidence " * 200 + "</p>"
    http_server.route("/g", text, gzip=True)
    http_server.route("/c", b"abcdefghij", chunked=True, content_type="text/plain")
    http_server.route("/r", b"0123456789", ranges=True, content_type="video/mp4")

    response, raw = _get(http_server, "/g?x=1", {"Accept-Encoding": "gzip"})
    assert response.getheader("Content-Encoding") == "gzip"
    assert int(response.getheader("Content-Length")) == len(raw)
    assert gzip.decompress(raw).decode("utf-8") == text

    response, body = _get(http_server, "/c")
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert body == b"abcdefghij"

    response, body = _get(http_server, "/r", {"Range": "bytes=2-4"})
    assert (response.status, response.getheader("Content-Range"), body) == (206, "bytes 2-4/10", b"234")
    response, body = _get(http_server, "/r", {"Range": "bytes=-3"})
    assert (response.status, body) == (206, b"789")
    response, _ = _get(http_server, "/r", {"Range": "bytes=20-"})
    assert response.status == 416

    response, body = _get(http_server, "/missing")
    assert response.status == 404 and b"Not Found" in body
    assert [(r.method, r.path) for r in http_server.requests][:2] == [("GET", "/g?x=1"), ("GET", "/c")]


def test_unicode_paths_and_second_origin(http_server: LocalServer, http_server2: LocalServer) -> None:
    url = http_server.route("/caf\u00e9 1", "ok")
    assert url.endswith("/caf%C3%A9%201")
    response, body = _get(http_server, url.removeprefix(http_server.origin))
    assert (response.status, body) == (200, b"ok")
    assert http_server2.origin == f"http://localhost:{http_server2.port}"
    assert http_server.origin != http_server2.origin


def test_https_server_verifies_against_ca_file(https_server: LocalServer, trusted_ca_pem: Path) -> None:
    https_server.route("/", "secure")
    context = ssl.create_default_context(cafile=str(trusted_ca_pem))
    conn = http.client.HTTPSConnection("localhost", https_server.port, context=context, timeout=5)
    try:
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"secure"
    finally:
        conn.close()


def test_chromium_trusts_https_server_but_not_untrusted_one(
    run: Any,
    browser: Browser,
    http_server: LocalServer,
    https_server: LocalServer,
    untrusted_https_server: LocalServer,
) -> None:
    text = "gzip through chromium " * 50
    http_server.route("/z", f"<p id=t>{text}</p>", gzip=True)
    https_server.route("/", "<title>trusted</title><p>hello</p>")
    untrusted_https_server.route("/", "<title>untrusted</title>")

    async def go() -> tuple[str, str, list[str], str, str]:
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.goto(http_server.url("/z"))
            decoded = await page.inner_text("#t")
            cdp = await context.new_cdp_session(page)
            states: list[str] = []
            cdp.on("Network.responseReceived", lambda e: states.append(e["response"]["securityState"]))
            await cdp.send("Network.enable")
            response = await page.goto(https_server.url("/"))
            assert response is not None and response.ok
            details = await response.security_details()
            title = await page.title()
            with pytest.raises(Error) as refused:
                await page.goto(untrusted_https_server.url("/"))
            protocol = str(details.get("protocol") if details else None)
            return decoded, title, states, protocol, str(refused.value)
        finally:
            await context.close()

    decoded, title, states, protocol, error = run(go())
    assert decoded.strip() == text.strip()
    assert title == "trusted"
    assert states and set(states) == {"secure"}  # no certificate error, not even a downgraded state
    assert protocol.startswith("TLS")
    assert "ERR_CERT_AUTHORITY_INVALID" in error
