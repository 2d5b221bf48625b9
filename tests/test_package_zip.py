"""A hostile zip handed to `evicap verify` is refused before anything is written outside a temporary directory."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from evicap.cli.main import cli


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return path


def _symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    info.create_system = 3
    return (info, target.encode())  # type: ignore[return-value]


def _verify(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", str(path)])
    return result.exit_code, result.output


@pytest.mark.parametrize(("entries", "message"), [
    ([("pkg/package.json", b"{}"), ("pkg/../../evil.txt", b"x")], "would be written outside"),
    ([("/etc/evicap-evil", b"x")], "would be written outside"),
    ([("pkg\\..\\evil.txt", b"x")], "would be written outside"),
    ([("pkg/a", b"1"), ("other/b", b"2")], "exactly one top folder"),
])
def test_traversal_and_layout_are_refused(tmp_path: Path, entries: list[tuple[str, bytes]], message: str) -> None:
    code, output = _verify(_zip(tmp_path / "bad.zip", entries))  # type: ignore[arg-type]
    assert code == 1 and message in output
    assert not (tmp_path.parent / "evil.txt").exists()


def test_a_symlink_entry_is_refused(tmp_path: Path) -> None:
    info, data = _symlink("pkg/link", "/etc/passwd")  # type: ignore[misc]
    code, output = _verify(_zip(tmp_path / "link.zip", [("pkg/package.json", b"{}"), (info, data)]))
    assert code == 1 and "symlink" in output


def test_a_zip_bomb_is_refused_by_its_ratio(tmp_path: Path) -> None:
    code, output = _verify(_zip(tmp_path / "bomb.zip", [("pkg/package.json", b"{}"), ("pkg/zeros", bytes(64 << 20))]))
    assert code == 1 and "zip bomb" in output


def test_a_size_that_lies_is_caught_while_inflating(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("pkg/data", b"A" * 4096)
    raw = bytearray(buffer.getvalue())
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24:central + 28] = (16).to_bytes(4, "little")  # central directory: uncompressed size 16
    path = tmp_path / "liar.zip"
    path.write_bytes(bytes(raw))
    code, output = _verify(path)
    assert code == 1 and "refused" in output


def test_not_a_zip_is_a_verification_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.zip"
    path.write_bytes(b"not a zip")
    code, output = _verify(path)
    assert code == 2 and "not a zip file" in output
