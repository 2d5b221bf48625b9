"""`evicap demo` and `evicap doctor` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from evicap.cli.main import cli
from tests.integration.capture_helpers import manifest_of

EVICAP = str(Path(sys.executable).with_name("evicap"))


def test_demo_captures_the_builtin_site_into_a_bundle_that_verifies(tmp_path: Path) -> None:
    out = tmp_path / "evidence-demo"
    done = subprocess.run([EVICAP, "demo", "--output", str(out)], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    bundles = [p for p in out.iterdir() if p.is_dir()]
    assert len(bundles) == 1
    manifest = manifest_of(bundles[0])
    assert manifest["capture"]["status"] == "complete"
    assert manifest["case"]["case_id"] == "DEMO-0001"
    assert str(bundles[0]) in done.stderr and "screenshot" in done.stderr
    # The key evicap created for the demo lives in the user's config and is trusted there.
    verified = subprocess.run([EVICAP, "verify", "--json", str(bundles[0])], capture_output=True, text=True)
    report = json.loads(verified.stdout)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert report


def test_doctor_reports_browser_and_versions() -> None:
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "browser" in result.output and "hromium" in result.output
    assert "python" in result.output and "playwright" in result.output


def test_doctor_names_the_fix_for_a_missing_browser(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["doctor", "--browser", str(tmp_path / "no-such-chrome")])
    assert result.exit_code == 2
    assert "apt-get install -y chromium" in result.output
    assert "Traceback" not in result.output


def test_capture_with_a_missing_browser_is_an_environment_error(tmp_output: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["capture", "http://127.0.0.1:9/", "--output", str(tmp_output), "--browser", str(tmp_path / "nope")]
    )
    assert result.exit_code == 2
    assert "not an executable file" in result.output
    assert list(tmp_output.iterdir()) == []
