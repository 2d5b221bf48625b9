"""docs/verify-without-evicap.md: run exactly its shell blocks (bash, sha256sum, openssl, jq) on a fresh bundle.

The blocks are parsed out of the document, so the doc cannot drift from what is tested. Each must pass on an
intact bundle and the relevant one must fail once the bundle is tampered with.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from evicap.config import load_config
from evicap.seal import Actor, SealSettings, load_signer, seal_bundle
from tests.tsa import LocalTSA, isolated_config, stage_bundle, tsa  # noqa: F401

DOC = Path(__file__).resolve().parents[1] / "docs" / "verify-without-evicap.md"
pytestmark = [
    pytest.mark.usefixtures("isolated_config"),
    pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("jq")), reason="needs openssl and jq"),
]


def doc_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def block_with(text: str) -> str:
    [block] = [b for b in doc_blocks() if text in b]
    return block


def run_block(block: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", "set -o pipefail\n" + block], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def bundle(tmp_path: Path, tsa: LocalTSA) -> Path:  # noqa: F811
    settings = SealSettings.resolve(load_config(), tsa=[tsa.url()], tsa_ca=[tsa.ca_pem], investigator="Ana Ruiz")
    signer = load_signer(settings, create=True)
    staged = stage_bundle(tmp_path / "bundle", fingerprint=signer.fingerprint)
    result = seal_bundle(
        staged, signer, settings, actor=Actor("Ana Ruiz", signer.fingerprint), acquired={"url": "https://ex.test/"}
    )
    assert result.timestamped
    # The recipient gets the authority's root from the authority, not from the bundle.
    shutil.copy(tsa.ca_pem, staged / "tsa-ca.pem")
    return staged


def test_doc_has_every_promised_command() -> None:
    text = "\n".join(doc_blocks())
    for command in (
        "sha256sum --check --strict SHA256SUMS",
        "openssl pkeyutl -verify -pubin -inkey signer.pub.pem -rawin -in manifest.json -sigfile manifest.sig",
        "openssl pkey -pubin -in signer.pub.pem -outform DER | sha256sum",
        'openssl ts -verify -data manifest.json -in "$tsr" -CAfile tsa-ca.pem $untrusted',
        "jq -r .signature custody.head",
    ):
        assert command in text
    assert len(doc_blocks()) == 9


def test_every_doc_block_passes_on_a_fresh_bundle(bundle: Path) -> None:
    outputs = []
    for block in doc_blocks():
        result = run_block(block, bundle)
        assert result.returncode == 0, f"{block}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        outputs.append(result.stdout + result.stderr)
    joined = "\n".join(outputs)
    assert "artifacts/page.html: OK" in joined
    assert "is the one named in manifest.json" in joined
    assert "Signature Verified Successfully" in joined
    assert "manifest.json names the same key" in joined
    assert "Verification: OK" in joined
    assert "custody chain: 3 events, unbroken" in joined
    assert joined.count("signature OK") == 3
    assert "names the last event, seq 2" in joined
    assert "manifest.tsr: recorded in the custody log by CN=evicap test TSA (good)" in joined


def test_doc_blocks_catch_tampering(bundle: Path) -> None:
    page = bundle / "artifacts" / "page.html"
    page.write_bytes(page.read_bytes().replace(b"evidence", b"evidencE"))
    assert run_block(block_with("sha256sum --check"), bundle).returncode != 0

    manifest = bundle / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"format"', b'"Format"'))
    assert run_block(block_with("-inkey signer.pub.pem -rawin"), bundle).returncode != 0
    assert run_block(block_with("openssl ts -verify"), bundle).returncode != 0
    chain = run_block(block_with("expected=null"), bundle)
    assert chain.returncode != 0 and "different manifest.json" in chain.stdout


def test_doc_custody_blocks_catch_an_edited_or_removed_event(bundle: Path) -> None:
    log = bundle / "custody.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(lines[0] + lines[1].replace(b'"Ed25519"', b'"Ed448"') + lines[2])
    edited = run_block(block_with("done < custody.jsonl\nrm -r"), bundle)
    assert edited.returncode != 0 and "line 2: BAD signature" in edited.stdout
    assert "line 3: prev does not match" in run_block(block_with("expected=null"), bundle).stdout

    log.write_bytes(lines[0] + lines[2])
    removed = run_block(block_with("expected=null"), bundle)
    assert removed.returncode != 0 and "line 2: seq is not 1" in removed.stdout


def test_doc_head_block_catches_a_log_cut_at_its_end(bundle: Path) -> None:
    log = bundle / "custody.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]))  # still a valid chain: only the head tells
    assert run_block(block_with("expected=null"), bundle).returncode == 0
    cut = run_block(block_with("custody.head"), bundle)
    assert cut.returncode != 0 and "does not name the last line" in cut.stdout
    log.write_bytes(b"".join(lines))
    head = bundle / "custody.head"
    head.write_bytes(head.read_bytes().replace(b'"seq":2', b'"seq":1'))
    forged = run_block(block_with("custody.head"), bundle)
    assert forged.returncode != 0 and "custody.head: BAD signature" in forged.stdout


def test_doc_token_block_catches_a_removed_or_unrecorded_token(bundle: Path, tsa: LocalTSA) -> None:  # noqa: F811
    from evicap.seal.timestamp import load_trust_anchors, request_timestamp

    block = block_with("NOT recorded in the custody log")
    token = (bundle / "manifest.tsr").read_bytes()
    other = request_timestamp((bundle / "manifest.json").read_bytes(), [tsa.matrix_url("second")],
                              load_trust_anchors([tsa.ca_pem])).stamp
    assert other is not None
    (bundle / "manifest.2.tsr").write_bytes(other.token)
    unrecorded = run_block(block, bundle)
    assert unrecorded.returncode != 0 and "manifest.2.tsr: NOT recorded" in unrecorded.stdout
    (bundle / "manifest.2.tsr").unlink()
    (bundle / "manifest.tsr").write_bytes(other.token)  # swapped: valid, same manifest, other authority
    assert "manifest.tsr: NOT recorded" in run_block(block, bundle).stdout
    (bundle / "manifest.tsr").unlink()
    removed = run_block(block, bundle)
    assert removed.returncode != 0 and "manifest.tsr: recorded in the custody log but missing" in removed.stdout
    (bundle / "manifest.tsr").write_bytes(token)
    assert run_block(block, bundle).returncode == 0
