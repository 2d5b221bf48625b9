"""`evicap session import|list|delete` (issue 12): private files, both export formats, refusals."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from evicap.cli.main import cli

COOKIES_TXT = (
    "# Netscape HTTP Cookie File\n"
    "#HttpOnly_.example.org\tTRUE\t/\tTRUE\t1900000000\tsid\tabcdef0123456789\n"
    "example.org\tFALSE\t/\tFALSE\t0\tlang\ten\n"
)


def invoke(tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    env = {"EVICAP_SESSIONS_DIR": str(tmp_path / "sessions"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return CliRunner().invoke(cli, list(args), env=env)


def private_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_cookies_txt_import_is_private_listed_without_values_and_deleted(tmp_path: Path) -> None:
    source = private_file(tmp_path / "cookies.txt", COOKIES_TXT)
    result = invoke(tmp_path, "session", "import", "acct-1", str(source))
    assert result.exit_code == 0, result.output
    saved = tmp_path / "sessions" / "acct-1.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    state = json.loads(saved.read_text())
    sid = next(c for c in state["cookies"] if c["name"] == "sid")
    assert sid["httpOnly"] and sid["secure"] and sid["domain"] == ".example.org" and sid["expires"] == 1900000000
    listed = invoke(tmp_path, "session", "list", "--json")
    assert listed.exit_code == 0
    summary = json.loads(listed.output.strip())
    assert summary == {"name": "acct-1", "cookies": 2, "domains": ["example.org"], "storage_items": 0}
    assert "abcdef0123456789" not in listed.output
    assert invoke(tmp_path, "session", "delete", "acct-1").exit_code == 0
    assert not saved.exists()
    assert invoke(tmp_path, "session", "delete", "acct-1").exit_code == 2


def test_storage_state_json_import_keeps_local_storage(tmp_path: Path) -> None:
    state = {"cookies": [{"name": "a", "value": "v" * 12, "domain": "127.0.0.1", "path": "/"}],
             "origins": [{"origin": "http://127.0.0.1", "localStorage": [{"name": "t", "value": "x" * 20}]}]}
    source = private_file(tmp_path / "state.json", json.dumps(state))
    assert invoke(tmp_path, "session", "import", "s", str(source)).exit_code == 0
    assert json.loads((tmp_path / "sessions" / "s.json").read_text())["origins"] == state["origins"]


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_a_session_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    source = private_file(tmp_path / "cookies.txt", COOKIES_TXT)
    source.chmod(0o644)
    result = invoke(tmp_path, "session", "import", "acct", str(source))
    assert result.exit_code == 2 and "readable by other users" in result.output
    assert not (tmp_path / "sessions" / "acct.json").exists()
    # A saved session whose mode was loosened later is refused when used.
    source.chmod(0o600)
    assert invoke(tmp_path, "session", "import", "acct", str(source)).exit_code == 0
    (tmp_path / "sessions" / "acct.json").chmod(0o644)
    listed = invoke(tmp_path, "session", "list")
    assert listed.exit_code == 2 and "readable by other users" in listed.output


def test_garbage_is_a_one_line_usage_error(tmp_path: Path) -> None:
    source = private_file(tmp_path / "bad.txt", "not\ta cookie line\n")
    result = invoke(tmp_path, "session", "import", "acct", str(source))
    assert result.exit_code == 2 and "7 tab-separated fields" in result.output
    assert "Traceback" not in result.output
    bad_name = invoke(tmp_path, "session", "import", "../x", str(source))
    assert bad_name.exit_code == 2 and "bad session name" in bad_name.output
