"""HashingWriter: a failure while writing leaves no half-written file behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from evicap.bundle.hashing import HashingWriter, digest_file, write_bytes


def test_a_failed_write_removes_its_file(tmp_path: Path) -> None:
    path = tmp_path / "shot.png"
    with pytest.raises(RuntimeError), HashingWriter(path) as writer:
        writer.write(b"half of a screenshot")
        raise RuntimeError("renderer crashed")
    assert not path.exists() and writer.digest is None


def test_a_whole_write_keeps_its_file_and_digest(tmp_path: Path) -> None:
    digest = write_bytes(tmp_path / "a.bin", b"x" * 10)
    assert digest == digest_file(tmp_path / "a.bin") and digest.size == 10
