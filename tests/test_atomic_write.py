"""The one atomic writer (bundle.staging.atomic_write): readers see the old file or the new one, never a mix,
and a failed write leaves neither a changed file nor a temporary one behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from evicap.bundle import staging
from evicap.bundle.staging import atomic_write


def test_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "index.json"
    path.write_bytes(b"old")
    atomic_write(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"old")

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(staging.os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_private_mode_and_a_stale_temporary_link_is_not_followed(tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"untouched")
    (tmp_path / f".session.json.tmp-{os.getpid()}").symlink_to(elsewhere)  # left behind, or planted
    atomic_write(path, b"{}", mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert elsewhere.read_bytes() == b"untouched"
    assert not path.is_symlink() and path.read_bytes() == b"{}"
