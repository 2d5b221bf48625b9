"""The console script ends without tearing the interpreter down (cli.main._exit): exit codes and every byte of
output must be what click and a normal interpreter exit would give."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from evicap.cli.main import cli

EVICAP = str(Path(sys.executable).with_name("evicap"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EVICAP, *args], capture_output=True, text=True, timeout=120)


def test_success_prints_everything_and_exits_0() -> None:
    done = _run("profiles", "show", "generic")
    assert done.returncode == 0, done.stderr
    assert done.stdout == CliRunner().invoke(cli, ["profiles", "show", "generic"]).stdout


def test_output_to_a_file_is_whole(tmp_path: Path) -> None:
    out = tmp_path / "list.txt"
    with open(out, "w", encoding="utf-8") as handle:
        code = subprocess.run([EVICAP, "profiles", "show", "generic"], stdout=handle, timeout=120).returncode
    assert code == 0
    assert out.read_text("utf-8") == CliRunner().invoke(cli, ["profiles", "show", "generic"]).stdout


def test_errors_keep_their_exit_codes_and_one_line() -> None:
    missing = _run("verify", "/nonexistent-bundle")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == ["error: no such bundle: /nonexistent-bundle"]
    unknown = _run("no-such-command")
    assert unknown.returncode == 2
    assert "No such command" in unknown.stderr
    assert _run("--version").stdout.startswith("evicap, version ")
