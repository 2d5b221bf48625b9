"""verify compares URLs as the browser normalises them (WHATWG URL): complete captures of URLs that Chromium
rewrites must verify. Regression: the manifest's URL was looked up literally among the WARC's responses."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evicap.cli.main import cli
from evicap.verify.urls import url_key
from tests import test_verify
from tests.test_verify import Sealed, build_bundle, failures
from tests.tsa import LocalTSA, tsa  # noqa: F401

sealed, copy, verify = test_verify.sealed, test_verify.copy, test_verify.verify


@pytest.mark.parametrize(("given", "browser"), [
    ("http://LOCALHOST:8080/a", "http://localhost:8080/a"),
    ("http://127.0.0.1:80/?q=ü", "http://127.0.0.1/?q=%C3%BC"),
    ("http://127.0.0.1:1/?q=<x>", "http://127.0.0.1:1/?q=%3Cx%3E"),
    ("http://bücher.test/a b", "http://xn--bcher-kva.test/a%20b"),
    ("https://Example.TEST/p#section", "https://example.test/p"),
    ("http://127.0.0.1:1/%7euser", "http://127.0.0.1:1/%7Euser"),
])
def test_url_key_matches_the_browser_form(given: str, browser: str) -> None:
    assert url_key(given) == url_key(browser)


def test_distinct_urls_stay_distinct() -> None:
    assert url_key("http://127.0.0.1/a?q=1") != url_key("http://127.0.0.1/a?q=2")
    assert url_key("http://127.0.0.1/A") != url_key("http://127.0.0.1/a")  # paths are case-sensitive


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", ["/post?q=ü", "/post?q=<x>&y=\"z\"", "/p%C3%BCst"])
def test_real_capture_of_a_url_chromium_rewrites_verifies(
    path: str, run: Any, browser: Any, browser_info: Any, tsa: LocalTSA, tmp_path: Path  # noqa: F811
) -> None:
    from evicap.capture.options import CaptureOptions
    from evicap.capture.staged import Sealing
    from evicap.config import load_config
    from evicap.seal.keys import generate_key
    from evicap.seal.sealer import SealSettings
    from tests.integration.capture_helpers import capture_sealed
    from tests.servers import LocalServer

    server = LocalServer().start()
    try:
        server.route(path.split("?")[0], body="<html><title>Post</title><h1>A statement</h1></html>",
                     content_type="text/html")
        url = server.url(path).replace("127.0.0.1", "LOCALHOST")
        signer = generate_key(tmp_path / "signing-key.pem", None)
        settings = SealSettings.resolve(load_config(env={"XDG_CONFIG_HOME": str(tmp_path)}),
                                        key=tmp_path / "signing-key.pem", tsa=[tsa.url()], tsa_ca=[tsa.ca_pem])
        result = run(capture_sealed(browser, url, CaptureOptions(investigator="Jane Roe", timeout=30), tmp_path / "out",
                                 browser_info=browser_info,
                                 sealing=Sealing(signer=signer, settings=settings, actor_name="Jane Roe")))
    finally:
        server.stop()
    assert result.status == "complete", result.error
    bundle = Path(str(result.bundle))
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["target"]["requested_url"] == url  # as typed: a literal lookup among the responses would miss
    out = CliRunner().invoke(cli, ["verify", str(bundle), "--json", "--trusted-key",
                                   str(tmp_path / "signing-key.pem.pub"), "--tsa-ca", str(tsa.ca_pem)])
    report = json.loads(out.stdout)
    assert out.exit_code == 0, failures(report)
    assert next(c for c in report["checks"] if c["name"] == "warc-records")["status"] == "pass"


def test_idn_host_in_the_manifest_matches_its_punycode_response(tmp_path: Path, sealed: Sealed,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An IDN host as typed (bücher.test) against the response Chromium recorded (xn--bcher-kva.test)."""
    typed, recorded = "http://bücher.test/post", "http://xn--bcher-kva.test/post"
    monkeypatch.setattr(test_verify, "URL", typed)
    monkeypatch.setattr(test_verify, "FINAL", recorded)
    original = test_verify._manifest

    def manifest(*args: Any) -> dict[str, Any]:
        data = original(*args)
        data["target"].update(requested_url=typed, final_url=typed, redirects=[])
        return data

    monkeypatch.setattr(test_verify, "_manifest", manifest)
    bundle = build_bundle(tmp_path, None, sealed.tsa.ca_pem, tmp_path)
    out = CliRunner().invoke(cli, ["verify", str(bundle), "--json", "--trusted-key",
                                   str(tmp_path / "signing-key.pem.pub")])
    report = json.loads(out.stdout)
    assert out.exit_code == 0, failures(report)


@pytest.mark.timeout(600)
def test_real_capture_of_an_idn_host_verifies(http_server: Any, tmp_output: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """bücher.test mapped to 127.0.0.1 inside Chromium (--host-resolver-rules: no DNS query leaves the machine);
    captured and verified through the CLI, the manifest keeping the host as typed."""
    http_server.route("/post", "<html><title>IDN</title><h1>A statement</h1></html>")
    rules = "--host-resolver-rules=MAP xn--bcher-kva.test 127.0.0.1"
    before = os.environ.get("EVICAP_BROWSER_ARGS", "")
    monkeypatch.setenv("EVICAP_BROWSER_ARGS", f"{before} '{rules}'".strip())
    url = f"http://bücher.test:{http_server.port}/post?q=ü"
    result = CliRunner().invoke(cli, ["capture", url, "--output", str(tmp_output), "--json", "--no-timestamp",
                                      "--timeout", "30"])
    line = json.loads(result.stdout.splitlines()[0])
    assert line["status"] == "complete", result.output
    bundle = Path(line["bundle"])
    assert json.loads((bundle / "manifest.json").read_text())["target"]["requested_url"] == url
    out = CliRunner().invoke(cli, ["verify", str(bundle), "--json"])  # this machine's own key is trusted
    report = json.loads(out.stdout)
    assert out.exit_code == 0, failures(report)
    assert next(c for c in report["checks"] if c["name"] == "warc-records")["status"] == "pass"
