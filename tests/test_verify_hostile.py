"""`evicap verify` on hostile and odd bundles, through the real CLI: it always ends, in bounded memory, with exit 1
and a one-line reason naming the file, and never changes the bundle. Hang guards are generous (shared machines)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from evicap.bundle import layout
from evicap.bundle.hashing import digest_file
from evicap.cli.main import cli
from evicap.seal.custody import Actor, append_event
from evicap.seal.keys import load_key
from tests import test_verify
from tests.test_verify import FINAL, Sealed, Verify, _warc, build_bundle, failures
from tests.tsa import tsa  # noqa: F401  (the session's authority, used by the fixtures below)

# The pristine sealed bundle and the CLI runner of tests/test_verify.py, shared (fixtures are looked up by name).
sealed, copy, verify = test_verify.sealed, test_verify.copy, test_verify.verify

EVICAP = str(Path(sys.executable).with_name("evicap"))
RSS_LIMIT_MB = 200


def _snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """path -> (size, mtime_ns, sha256 of the first MiB): what verify must leave as it found it."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            info = path.stat()
            with open(path, "rb") as handle:
                out[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns,
                                                    hashlib.sha256(handle.read(1 << 20)).hexdigest())
    return out


# A fresh parent for each run, so RUSAGE_CHILDREN's peak is that one evicap process's and no earlier child's.
_MEASURE = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
            "sys.stderr.write(f'\\npeak-rss-kb={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}'); "
            "sys.exit(code)")


def run_measured(args: list[str], timeout: float = 800) -> tuple[int, str, str, float]:
    """Run the real `evicap` in a child process: (exit, stdout, stderr, the child's peak RSS in MB)."""
    result = subprocess.run([sys.executable, "-c", _MEASURE, EVICAP, *args], capture_output=True, text=True,
                            timeout=timeout)
    stderr, _, peak = result.stderr.rpartition("\npeak-rss-kb=")
    assert "Traceback" not in stderr, stderr
    return result.returncode, result.stdout, stderr, int(peak) / 1024


def _verify_subprocess(bundle: Path, sealed: Sealed, *extra: str) -> tuple[int, dict[str, Any], str, float]:
    code, out, err, peak = run_measured(["verify", str(bundle), "--json", "--trusted-key", str(sealed.signer_pub),
                                         "--tsa-ca", str(sealed.tsa.ca_pem), *extra])
    return code, json.loads(out.splitlines()[0]) if out.strip() else {}, err, peak


def _one_line(reason: str) -> None:
    assert "\n" not in reason and len(reason) < 2000, reason


@pytest.mark.timeout(900)
def test_highly_compressible_256_mib_response_verifies_in_bounded_memory(
    tmp_path: Path, sealed: Sealed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: verify never finished (and grew) on a WARC holding a 256 MiB response of one repeated byte."""
    size = 256 * 1024 * 1024

    def big_warc(path: Path, screenshot: Path) -> None:
        _warc(path, screenshot)
        with open(path, "ab") as out:
            writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
            head = StatusAndHeaders("200 OK", [("Content-Type", "application/octet-stream"),
                                               ("Content-Length", str(size))], protocol="HTTP/1.1")
            body = _Zeros(size)
            writer.write_record(writer.create_warc_record(FINAL + "/big", "response", payload=body,  # type: ignore[arg-type]
                                                          length=size, http_headers=head))

    monkeypatch.setattr(sys.modules["tests.test_verify"], "_warc", big_warc)
    bundle = build_bundle(tmp_path, sealed.tsa.url(), sealed.tsa.ca_pem, tmp_path)
    assert (bundle / layout.WARC).stat().st_size < 4 * 1024 * 1024
    before = _snapshot(bundle)
    code, out, err, peak = run_measured(["verify", str(bundle), "--json", "--deep", "--trusted-key",
                                         str(tmp_path / "signing-key.pem.pub"), "--tsa-ca", str(sealed.tsa.ca_pem)])
    assert code == 0, out + err
    warc = next(c for c in json.loads(out)["checks"] if c["name"] == "warc")
    assert "recomputed and match" in warc["reason"]
    assert peak < RSS_LIMIT_MB, peak
    assert _snapshot(bundle) == before


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, never held whole."""

    def __init__(self, size: int) -> None:
        self._left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        self._left -= n
        return bytes(n)


@pytest.mark.timeout(300)
def test_sparse_4_gib_warc_is_refused_unread(verify: Verify, copy: Path) -> None:
    with open(copy / layout.WARC, "r+b") as handle:
        handle.truncate(4 * 1024**3)
    before = _snapshot(copy)
    code, report, _ = verify(copy)
    assert code == 1
    reason = failures(report)[f"artifact:{layout.WARC}"]
    assert "sparse file" in reason and "refused unread" in reason
    _one_line(reason)
    assert _snapshot(copy) == before


@pytest.mark.timeout(600)
def test_huge_custody_log_of_empty_objects_is_bounded(copy: Path, sealed: Sealed) -> None:
    (copy / layout.CUSTODY).write_bytes(b"{}\n" * (64 * 1024 * 1024 // 3))
    before = _snapshot(copy)
    code, report, _, peak = _verify_subprocess(copy, sealed)
    assert code == 1
    reason = failures(report)["custody"]
    assert reason.startswith(layout.CUSTODY)
    _one_line(reason)
    assert peak < RSS_LIMIT_MB, peak
    assert _snapshot(copy) == before


@pytest.mark.timeout(300)
def test_deeply_nested_custody_line_is_a_failed_check(verify: Verify, copy: Path) -> None:
    with open(copy / layout.CUSTODY, "ab") as log:
        log.write(b"[" * 500_000 + b"\n")
    code, report, _ = verify(copy)
    assert code == 1
    assert "custody" in failures(report)


@pytest.mark.parametrize("content", [b"\n" * (4 * 1024 * 1024 - 1), b"0" * 64 + b"  x\n" * 10])
def test_hostile_checksums_file_fails_without_blowing_up(verify: Verify, copy: Path, content: bytes) -> None:
    (copy / layout.CHECKSUMS).write_bytes(content)
    code, report, _ = verify(copy)
    assert code == 1
    assert failures(report)["checksums"].startswith(layout.CHECKSUMS)


def test_manifest_over_the_size_cap_is_refused(verify: Verify, copy: Path) -> None:
    (copy / layout.MANIFEST).write_bytes(b'{"a": [' + b'"ab",' * (1024 * 1024) + b'"z"]}')
    code, report, _ = verify(copy)
    assert code == 1
    assert "more than" in failures(report)["manifest"]


def _tiny_records_warc(count: int) -> bytes:
    """``count`` empty resource records in one gzip member (what a hostile writer would do to cost per record)."""
    record = (b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Target-URI: urn:x\r\nContent-Length: 0\r\n\r\n\r\n\r\n")
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(record * 10_000) for _ in range(count // 10_000)]
    return b"".join([*parts, compressor.flush()])


@pytest.mark.timeout(600)
def test_hundreds_of_thousands_of_tiny_records_are_linear(verify: Verify, copy: Path) -> None:
    count = 300_000
    (copy / layout.WARC).write_bytes(_tiny_records_warc(count))
    code, report, _ = verify(copy)
    assert code == 1  # not the sealed file
    assert failures(report)[f"artifact:{layout.WARC}"].startswith("size is")
    warc = next(c for c in report["checks"] if c["name"] == "warc")
    assert warc["status"] == "pass" and warc["reason"].startswith(f"{count} records parse to the end")
    assert "missing from the WARC" in failures(report)["warc-records"]


@pytest.mark.parametrize("damage", ["bomb-then-member", "garbage-after", "cut-in-header"])
def test_damaged_warc_names_the_file_and_the_record_offset(verify: Verify, copy: Path, damage: str) -> None:
    path = copy / layout.WARC
    data = path.read_bytes()
    if damage == "bomb-then-member":
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        head = b"WARC/1.1\r\nWARC-Type: resource\r\nContent-Length: 999999999999\r\n\r\n"
        bomb = compressor.compress(head) + b"".join(compressor.compress(bytes(1 << 20)) for _ in range(64))
        data += bomb + compressor.flush() + data
    elif damage == "garbage-after":
        data += b"\x00garbage"
    else:
        data += zlib.compress(b"WARC/1.1\r\nWARC-Type: resp")[:-8]
    path.write_bytes(data)
    code, report, _ = verify(copy)
    assert code == 1
    reason = failures(report)[f"warc:{layout.WARC}"]
    assert "offset" in reason
    _one_line(reason)


def test_hard_linked_artifact_fails(verify: Verify, copy: Path, tmp_path: Path) -> None:
    os.link(copy / layout.DOM, tmp_path / "elsewhere.html")
    code, report, _ = verify(copy)
    assert code == 1
    assert "hard link" in failures(report)[f"hard-link:{layout.DOM}"]


def test_bundle_root_that_is_a_symlink_fails(verify: Verify, copy: Path, tmp_path: Path) -> None:
    link = tmp_path / "link-to-bundle"
    link.symlink_to(copy, target_is_directory=True)
    code, report, _ = verify(link)
    assert code == 1
    assert "is a symbolic link" in failures(report)["bundle-root"]
    assert verify(copy)[0] == 0


@pytest.mark.parametrize("name", ["artifacts/d\u043em.html", "artifacts/screenshot\u2010full.png",
                                  "manifest.js\u043en"], ids=["cyrillic-o", "unicode-hyphen", "seal-file-lookalike"])
def test_confusable_name_beside_a_listed_one_fails(verify: Verify, copy: Path, name: str) -> None:
    (copy / name).write_bytes(b"planted look-alike")
    code, report, _ = verify(copy, "--lenient")  # even lenient: a look-alike is never innocent
    assert code == 1
    assert "Unicode confusable" in failures(report)[f"names:{name}"]


def test_name_not_in_nfc_fails(verify: Verify, copy: Path) -> None:
    name = "artifacts/cafe\u0301.txt"  # e + combining acute: NFD
    (copy / name).write_bytes(b"x")
    code, report, _ = verify(copy, "--lenient")
    assert code == 1
    assert "NFC" in failures(report)[f"names:{name}"]


def test_fifo_in_the_bundle_fails_without_hanging(verify: Verify, copy: Path) -> None:
    os.mkfifo(copy / "reports-pipe")
    code, report, _ = verify(copy, "--lenient")
    assert code == 1
    assert "not a regular file" in failures(report)["unlisted:reports-pipe"]


def _add_report(copy: Path, sealed: Sealed, rel: str, content: bytes) -> None:
    """What evicap does when it writes a file after sealing: the file, then a custody event listing it."""
    (copy / rel).parent.mkdir(parents=True, exist_ok=True)
    (copy / rel).write_bytes(content)
    signer = load_key(sealed.signer_pub.with_name("signing-key.pem"))
    manifest_sha256 = hashlib.sha256((copy / layout.MANIFEST).read_bytes()).hexdigest()
    digest = digest_file(copy / rel)
    append_event(copy / layout.CUSTODY, signer, Actor("Jane Roe", signer.fingerprint), "reported",
                 {"files": [{"path": rel, "sha256": digest.sha256, "size": digest.size}]}, manifest_sha256)


def test_file_added_after_sealing_is_accepted_when_custody_lists_it(verify: Verify, copy: Path,
                                                                    sealed: Sealed) -> None:
    _add_report(copy, sealed, "reports/court-report.pdf", b"%PDF-1.4 report")
    code, report, _ = verify(copy)
    assert code == 0, failures(report)
    check = next(c for c in report["checks"] if c["subject"] == "reports/court-report.pdf")
    assert check["status"] == "pass" and "custody event" in check["reason"]
    (copy / "reports/court-report.pdf").write_bytes(b"%PDF-1.4 edited")
    code, report, _ = verify(copy)
    assert code == 1
    assert "differs from what custody event" in failures(report)["post-seal:reports/court-report.pdf"]


def test_custody_cannot_add_files_to_the_sealed_artifacts(verify: Verify, copy: Path, sealed: Sealed) -> None:
    _add_report(copy, sealed, "artifacts/extra.png", b"not sealed")
    code, report, _ = verify(copy)
    assert code == 1
    assert "the sealed set" in failures(report)["post-seal:artifacts/extra.png"]


def test_many_planted_names_are_summarised(verify: Verify, copy: Path) -> None:
    planted = copy / "junk"
    planted.mkdir()
    for number in range(300):
        (planted / f"f{number}").write_bytes(b"")
    code, report, _ = verify(copy, "--lenient")
    assert code == 0
    unlisted = [c for c in report["checks"] if c["name"] == "unlisted"]
    assert len(unlisted) == 21 and unlisted[-1]["reason"] == "and 280 more like the ones above"


def test_case_index_check_that_cannot_run_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the index verifier was looked up by name with a fallback module that does not exist; when the
    import failed, the case directory verified with the index 'not checked'."""
    case = tmp_path / "case"
    case.mkdir()
    (case / layout.INDEX).write_text("{}")
    monkeypatch.setitem(sys.modules, "evicap.batch.index_check", None)  # as if the module were missing
    result = CliRunner().invoke(cli, ["verify", str(case), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout.splitlines()[0])
    assert [(c["name"], c["status"]) for c in report["checks"]] == [("case-index", "fail")]
    assert "cannot check case indexes" in report["checks"][0]["reason"]


@pytest.mark.timeout(300)
def test_sparse_post_seal_file_is_refused_unread(verify: Verify, copy: Path, sealed: Sealed) -> None:
    _add_report(copy, sealed, "reports/court-report.pdf", b"%PDF-1.4 report")
    os.truncate(copy / "reports/court-report.pdf", 4 * 1024**3)
    code, report, _ = verify(copy)
    assert code == 1
    assert "sparse file" in failures(report)["post-seal:reports/court-report.pdf"]
