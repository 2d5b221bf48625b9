"""`evicap batch` writes the case report at the end: every target, totals, failures with reasons, the index's
seal with its timestamp. Read back from the HTML and from pdftotext."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evicap.cli.main import cli
from evicap.seal.custody import read_events
from tests.tsa import LocalTSA, isolated_config, tsa  # noqa: F401

pytestmark = pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils not installed")


def test_batch_writes_a_case_report_with_failures_and_the_index_seal(
    http_server: Any, tsa: LocalTSA, isolated_config: Path, tmp_path: Path, browser_info: Any  # noqa: F811
) -> None:
    good = http_server.route("/a", "<title>Post A</title><p>first post</p>")
    gone = http_server.route("/gone", "<title>gone</title>", status=404)
    targets = tmp_path / "targets.csv"
    targets.write_text(f"url,item,description\n{good},EX-A,the suspect's first post\n{gone},EX-GONE,\n",
                       encoding="utf-8")
    out = tmp_path / "case"
    result = CliRunner().invoke(cli, ["batch", str(targets), "-o", str(out), "--case", "OP-9", "--retries", "0",
                                      "--tsa", tsa.url(), "--tsa-ca", str(tsa.ca_pem),
                                      "--browser", browser_info.path], catch_exceptions=False)
    assert result.exit_code == 1, result.output  # one target is not complete
    html = (out / "reports/case-report.en.html").read_text("utf-8")
    pdf = out / "reports/case-report.en.pdf"
    index = json.loads((out / "case-index.json").read_text("utf-8"))
    entries = {e["item"]: e for e in index["targets"]}
    index_sha256 = hashlib.sha256((out / "case-index.json").read_bytes()).hexdigest()

    assert "the suspect&#39;s first post" in html  # the description column reached the manifest
    assert entries["EX-A"]["manifest_sha256"] in html and index_sha256 in html
    assert 'class="thumb" src="data:image/png;base64,' in html and "VERIFICATION FAILED" not in html
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    words = set(text.split())
    assert index_sha256 in words and entries["EX-A"]["manifest_sha256"] in words
    assert "EX-GONE" in text and "Targets not captured completely" in text
    assert str(entries["EX-GONE"]["reason"]).split()[0] in text
    assert "Trusted timestamp" in text and "none" not in text.split("Trusted timestamp")[1].split("\n")[1]

    reported = [e for e in read_events(out / "case-index.custody.jsonl") if e.action == "reported"]
    assert {f["path"] for f in reported[0].details["files"]} == {"reports/case-report.en.html",
                                                                 "reports/case-report.en.pdf"}
    wacz = tmp_path / "case.wacz"  # the whole case directory into one WACZ: every bundle, one page each
    exported = CliRunner().invoke(cli, ["export", str(out), "-o", str(wacz), "--tsa-ca", str(tsa.ca_pem), "--json"])
    assert exported.exit_code == 0, exported.output
    summary = json.loads(exported.stdout)
    assert summary["pages"] == 2 and len(summary["bundles"]) == 2
    for bundle in summary["bundles"]:
        events = read_events(Path(bundle["bundle"]) / "custody.jsonl")
        assert events[-1].action == "exported" and events[-1].details["sha256"] == summary["sha256"]
    verify = CliRunner().invoke(cli, ["verify", str(out), "--tsa-ca", str(tsa.ca_pem)])
    assert "index-custody" in verify.output
    assert "fail" not in [line.split()[1] for line in verify.output.splitlines()
                          if line.startswith("│ index-custody")]


def test_exhibit_report_names_redirects_certificates_and_the_timestamp(
    http_server: Any, https_server: Any, tsa: LocalTSA, isolated_config: Path, tmp_path: Path,  # noqa: F811
    browser_info: Any,
) -> None:
    final = https_server.route("/post/42", "<title>Post 42</title><p>the post</p>")
    start = http_server.redirect("/p/42", final, status=301)
    out = tmp_path / "evidence"
    result = CliRunner().invoke(cli, ["capture", start, "-o", str(out), "--tsa", tsa.url(), "--tsa-ca",
                                      str(tsa.ca_pem), "--case", "OP-3",
                                      "--browser", browser_info.path], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (bundle,) = [p for p in out.iterdir() if p.is_dir()]
    html = (bundle / "reports/report.en.html").read_text("utf-8")
    text = subprocess.run(["pdftotext", str(bundle / "reports/report.en.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    certificates = json.loads((bundle / "artifacts/certificates.json").read_text("utf-8"))
    leaf = certificates["origins"][0]["chain"][0]
    assert leaf["sha256"] in set(text.split())  # the SHA-256 fingerprint of the certificate the session saw
    assert leaf["subject"] in html or leaf["subject"].replace("'", "&#39;") in html
    assert start in text and "301" in text  # the redirect chain with its status
    stamp = next(e for e in read_events(bundle / "custody.jsonl") if e.action == "timestamped")
    assert stamp.details["serial_number"] in text and "evicap test TSA" in text
    assert "VERIFICATION FAILED" not in html and "VERIFIED" in text
