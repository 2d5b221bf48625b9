"""Shared fixtures: real local servers, one real Chromium for the session, and a runner for async code.

pytest-asyncio is not used. Async code runs on one event loop kept for the whole session (``run``), and the
session's Playwright ``browser`` lives on that loop, so a test is an ordinary function:

    def test_title(run, browser, http_server):
        url = http_server.route("/", "<title>Hi</title>")

        async def go() -> str:
            page = await browser.new_page()
            try:
                await page.goto(url)
                return await page.title()
            finally:
                await page.close()

        assert run(go()) == "Hi"

Or with the capture API: ``staged = run(capture_url(browser, url, CaptureOptions(...), tmp_output, ...))`` then
``run(acquire(staged, sealing))`` (``tests.integration.capture_helpers.capture_sealed`` does both).
Close the contexts/pages you open (``browser.new_context()`` gives isolation: cookies, cache).

Servers (function-scoped, fresh route table per test; see tests/servers.py):
    http_server             http://127.0.0.1:PORT
    http_server2            http://localhost:PORT2 -- a different origin, same loopback address
    https_server            https://127.0.0.1:PORT3 -- certificate Chromium trusts (tls_ca)
    untrusted_https_server  https://127.0.0.1:PORT4 -- certificate from a CA Chromium does not know

Chromium trusts tls_ca through ``--ignore-certificate-errors-spki-list`` (the SHA-256 of the one session leaf
key every trusted server uses), put into EVICAP_BROWSER_ARGS for the whole session, so browsers launched by
evicap itself in tests (CLI in-process or subprocess) trust it too. ``trusted_ca_pem`` is the CA file for
non-browser clients (``ssl.create_default_context(cafile=...)``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.async_api import Browser

from evicap.capture.browser import BrowserInfo, find_browser, launch, probe_version
from tests.servers import LocalServer

T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, T]], T]

TLS_NAMES = ("127.0.0.1", "localhost")


def spki_sha256_b64(cert_pem: bytes) -> str:
    """Base64 SHA-256 of a certificate's SubjectPublicKeyInfo, the form Chromium's SPKI allow-list takes."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA(organization_name="evicap test CA")


@pytest.fixture(scope="session")
def tls_leaf(tls_ca: trustme.CA) -> trustme.LeafCert:
    """One leaf certificate (one key) shared by every trusted HTTPS server in the session."""
    return tls_ca.issue_cert(*TLS_NAMES, common_name="evicap test server")


@pytest.fixture(scope="session")
def trusted_ca_pem(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session", autouse=True)
def _browser_trusts_tls_ca(tls_leaf: trustme.LeafCert) -> Iterator[None]:
    """Tell every Chromium started in this session to accept the trusted leaf (and nothing else extra)."""
    flag = f"--ignore-certificate-errors-spki-list={spki_sha256_b64(tls_leaf.cert_chain_pems[0].bytes())}"
    before = os.environ.get("EVICAP_BROWSER_ARGS")
    os.environ["EVICAP_BROWSER_ARGS"] = f"{before} {flag}" if before else flag
    yield
    if before is None:
        os.environ.pop("EVICAP_BROWSER_ARGS", None)
    else:
        os.environ["EVICAP_BROWSER_ARGS"] = before


def _server_context(leaf: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return context


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture
def http_server2() -> Iterator[LocalServer]:
    with LocalServer(url_host="localhost") as server:
        yield server


@pytest.fixture
def https_server(tls_leaf: trustme.LeafCert) -> Iterator[LocalServer]:
    with LocalServer(_server_context(tls_leaf)) as server:
        yield server


@pytest.fixture(scope="session")
def _untrusted_leaf() -> trustme.LeafCert:
    return trustme.CA(organization_name="untrusted test CA").issue_cert(*TLS_NAMES, common_name="untrusted test server")


@pytest.fixture
def untrusted_https_server(_untrusted_leaf: trustme.LeafCert) -> Iterator[LocalServer]:
    with LocalServer(_server_context(_untrusted_leaf)) as server:
        yield server


@pytest.fixture(scope="session")
def run() -> Iterator[Runner[Any]]:
    """``run(coro)`` runs a coroutine to completion on the session's one event loop."""
    with asyncio.Runner() as runner:
        yield runner.run


@pytest.fixture(scope="session")
def browser_info() -> BrowserInfo:
    return probe_version(find_browser())


@pytest.fixture(scope="session")
def browser(run: Runner[Any], browser_info: BrowserInfo, _browser_trusts_tls_ca: None) -> Iterator[Browser]:
    """One Chromium for the whole session (launching costs about a second), driven on ``run``'s loop."""
    manager = launch(browser_info)
    launched: Browser = run(manager.__aenter__())
    try:
        yield launched
    finally:
        run(manager.__aexit__(None, None, None))


@pytest.fixture
def tmp_output(tmp_path: Path) -> Path:
    """A fresh, empty output directory for bundles."""
    out = tmp_path / "output"
    out.mkdir()
    return out


@pytest.fixture(autouse=True)
def _isolated_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real ~/.config/evicap, nor inherits EVICAP_* settings from the machine."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    for name in list(os.environ):
        if name.startswith("EVICAP_") and name not in ("EVICAP_BROWSER", "EVICAP_BROWSER_ARGS"):
            monkeypatch.delenv(name)
