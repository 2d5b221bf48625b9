"""The case index on disk: atomic rewrites, resume bookkeeping, and the index checks on hand-made bundles.

Bundles here are minimal directories with a manifest.json holding the fields resume reads (case, target,
capture); the real capture path is covered in tests/integration/test_batch.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from evicap.batch.case import set_aside_staging
from evicap.batch.index import CaseIndex, verify_index
from evicap.batch.resume import case_lock, reconcile
from evicap.batch.targets import parse_targets
from evicap.errors import UsageError

LIST = "https://a.example/1\nhttps://a.example/2\nhttps://b.example/3\n"


def fake_bundle(directory: Path, name: str, item: str, url: str, status: str = "complete", case: str = "C") -> str:
    bundle = directory / name
    bundle.mkdir()
    manifest = {
        "case": {"case_id": case, "item_id": item},
        "target": {"requested_url": url, "http_status": 200},
        "capture": {"status": status, "reason": None if status == "complete" else "boom"},
    }
    data = json.dumps(manifest).encode()
    (bundle / "manifest.json").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def new_index(directory: Path) -> CaseIndex:
    index = CaseIndex(directory, "C")
    index.add_targets(parse_targets(LIST, "txt"))
    index.save(force=True)
    return index


def test_index_is_rewritten_atomically_and_reads_back(tmp_path: Path) -> None:
    index = new_index(tmp_path)
    index.update("T0002", status="failed", reason="refused", attempts=3)
    index.save(force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["case-index.json"]  # no temp file left beside it
    again = CaseIndex.load(tmp_path)
    assert again.entries["T0002"].reason == "refused" and again.entries["T0002"].attempts == 3
    assert again.summary() == {"total": 3, "complete": 0, "partial": 0, "failed": 1, "pending": 2}
    assert [e.item for e in again.pending()] == ["T0001", "T0002", "T0003"]


def test_writes_are_coalesced_but_forced_writes_always_land(tmp_path: Path) -> None:
    index = new_index(tmp_path)
    index.min_interval = 60
    index.update("T0001", status="complete")
    assert index.save() is False  # too soon after the last write
    assert index.save(force=True) is True
    assert index.save(force=True) is True


def test_resume_refuses_a_list_where_an_item_changed_url(tmp_path: Path) -> None:
    index = new_index(tmp_path)
    with pytest.raises(UsageError, match="T0002"):
        index.add_targets(parse_targets("https://a.example/1\nhttps://a.example/other\n", "txt"))


def test_reconcile_adopts_a_bundle_published_just_before_a_crash(tmp_path: Path) -> None:
    index = new_index(tmp_path)
    sha = fake_bundle(tmp_path, "T0002_a.example_x", "T0002", "https://a.example/2")
    fake_bundle(tmp_path, "T0003_b.example_x", "T0003", "https://b.example/3", case="OTHER")  # not this case
    (tmp_path / ".staging-T0001_a.example_y-1234").mkdir()
    assert [n.split()[3] for n in set_aside_staging(tmp_path)] == [".staging-T0001_a.example_y-1234"]
    assert (tmp_path / ".unsealed" / ".staging-T0001_a.example_y-1234").is_dir()  # kept, not deleted
    notes = reconcile(index)
    entry = index.entries["T0002"]
    assert entry.status == "complete" and entry.bundle == "T0002_a.example_x" and entry.manifest_sha256 == sha
    assert index.entries["T0003"].status == "pending"
    assert any("adopted" in n for n in notes)
    assert [e.item for e in index.pending()] == ["T0001", "T0003"]


def test_reconcile_recaptures_a_target_whose_bundle_vanished(tmp_path: Path) -> None:
    index = new_index(tmp_path)
    index.update("T0001", status="complete", bundle="gone", manifest_sha256="0" * 64)
    reconcile(index)
    assert index.entries["T0001"].status == "pending" and index.entries["T0001"].bundle is None


def test_a_second_batch_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    with case_lock(tmp_path), pytest.raises(UsageError, match="another evicap batch"), case_lock(tmp_path):
        pass


def test_verify_index_flags_unsealed_index_and_bad_bundle_paths(tmp_path: Path) -> None:
    index = new_index(tmp_path)
    sha = fake_bundle(tmp_path, "B1", "T0001", "https://a.example/1")
    index.update("T0001", status="complete", bundle="B1", manifest_sha256=sha)
    index.update("T0002", status="complete", bundle="../outside", manifest_sha256=sha)
    index.update("T0003", status="complete", bundle=None)
    index.save(force=True)
    fake_bundle(tmp_path, "STRAY", "X", "https://c.example/")
    checks = {(c.name, c.subject): c for c in verify_index(tmp_path)}
    assert checks[("index-signature", None)].status == "fail" and "resume" in checks[("index-signature", None)].reason
    assert checks[("index-bundle", "T0001")].status == "pass"
    assert checks[("index-bundle", "T0002")].status == "fail"
    assert checks[("index-bundle", "T0003")].status == "fail"
    assert checks[("index-bundle", "STRAY")].status == "fail"  # strict by default: nobody listed it


def test_resealing_keeps_the_earlier_sealed_index_whole(tmp_path: Path) -> None:
    from evicap.batch.index_seal import HISTORY, SIGNATURE, SIGNER_KEY, archive_seal, seal_index
    from evicap.seal.signing import verify_signature
    from tests.integration.capture_helpers import make_sealing

    sealing = make_sealing(tmp_path / "keys")
    case = tmp_path / "case"
    case.mkdir()
    index = new_index(case)
    first = seal_index(case, sealing, {"case_id": "C"})
    pub = tmp_path / "keys" / "signing-key.pem.pub"
    assert not [c for c in verify_index(case, trusted_keys=[pub]) if c.status == "fail" and c.subject is None]

    archive_seal(case)  # what --resume does before it changes a sealed index
    index.add_targets(parse_targets(LIST + "https://c.example/4\n", "txt"))
    index.save(force=True)
    second = seal_index(case, sealing, {"case_id": "C"})
    assert second.index_sha256 != first.index_sha256
    old = case / HISTORY / "001"
    old_index = (old / "case-index.json").read_bytes()
    assert hashlib.sha256(old_index).hexdigest() == first.index_sha256
    verify_signature(old_index, (old / SIGNATURE).read_bytes(), (old / SIGNER_KEY).read_bytes())
    checks = verify_index(case, trusted_keys=[pub])
    assert {c.name: c.status for c in checks if c.subject is None}["index-custody"] == "pass"
