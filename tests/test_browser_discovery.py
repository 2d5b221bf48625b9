"""Which browser evicap picks: the headless shell for captures, the full browser for a visible login window."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from evicap.capture import browser
from evicap.capture.browser import find_browser
from evicap.cli.main import cli


def _fake_executable(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\necho 'Chromium 1.2.3'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def only_these(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding nothing but what the test puts there; no Playwright download, no well-known paths."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("EVICAP_BROWSER", raising=False)
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "no-playwright-cache"))
    monkeypatch.setattr(browser, "_playwright_chromium", lambda: None)
    monkeypatch.setattr(browser, "HEADLESS_SHELL_PATHS", ())
    monkeypatch.setattr(browser, "SYSTEM_PATHS", ())
    monkeypatch.setattr(browser.Path, "home", classmethod(lambda cls: tmp_path))
    return folder


def test_captures_prefer_the_headless_shell_and_login_the_full_browser(only_these: Path) -> None:
    full = _fake_executable(only_these, "chromium")
    shell = _fake_executable(only_these, "chromium-headless-shell")
    picked = find_browser()
    assert picked.path == str(shell) and picked.source == "system headless shell" and picked.headless_only
    window = find_browser(headless=False)
    assert window.path == str(full) and not window.headless_only


def test_without_a_headless_shell_captures_use_the_full_browser(only_these: Path) -> None:
    full = _fake_executable(only_these, "chromium")
    assert find_browser().path == str(full)


def test_playwright_headless_shell_is_found_in_its_cache(only_these: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_executable(only_these, "chromium")
    cache = tmp_path / "ms-playwright"
    shell_dir = cache / "chromium_headless_shell-1255" / "chrome-headless-shell-linux64"
    shell_dir.mkdir(parents=True)
    shell = _fake_executable(shell_dir, "chrome-headless-shell")
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(cache))
    picked = find_browser()
    assert (picked.path, picked.source) == (str(shell), "playwright headless shell")


def test_explicit_browser_wins(only_these: Path, tmp_path: Path) -> None:
    _fake_executable(only_these, "chromium-headless-shell")
    mine = _fake_executable(tmp_path, "my-chrome")
    assert find_browser(str(mine)).path == str(mine)


def test_login_refuses_a_headless_shell_in_one_line(only_these: Path) -> None:
    shell = _fake_executable(only_these, "chromium-headless-shell")
    result = CliRunner().invoke(cli, ["login", "acct", "--url", "https://example.org/", "--browser", str(shell)])
    assert result.exit_code == 2
    assert "headless shell, which cannot open a window" in result.output
    assert "Traceback" not in result.output


def test_doctor_names_the_capture_and_login_browsers(only_these: Path, tmp_path: Path) -> None:
    _fake_executable(only_these, "chromium")
    _fake_executable(only_these, "chromium-headless-shell")
    result = CliRunner().invoke(cli, ["doctor", "--output", str(tmp_path)])
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "chromium-headless-shell (found via system headless shell); used for captures" in text
    assert f"login browser {only_these / 'chromium'} (found via system)" in text


def test_headless_shell_is_found_next_to_playwrights_chromium(only_these: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "custom-cache"
    chrome_dir = cache / "chromium-1255" / "chrome-linux64"
    chrome_dir.mkdir(parents=True)
    chrome = _fake_executable(chrome_dir, "chrome")
    shell_dir = cache / "chromium_headless_shell-1255" / "chrome-headless-shell-linux64"
    shell_dir.mkdir(parents=True)
    shell = _fake_executable(shell_dir, "chrome-headless-shell")
    monkeypatch.setattr(browser, "_playwright_chromium", lambda: str(chrome))
    assert find_browser().path == str(shell)
    assert find_browser(headless=False) == browser.BrowserInfo(str(chrome), "playwright")


def test_playwrights_chromium_is_found_without_starting_its_driver(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The Chromium of the installed Playwright's revision, read from its cache; starting a driver (a node process)
    just to learn the path is refused here, as it would cost every capture a second driver start."""
    import playwright.sync_api

    def no_driver() -> None:
        raise AssertionError("find_browser started a Playwright driver")

    monkeypatch.setattr(playwright.sync_api, "sync_playwright", no_driver)
    revision = browser._playwright_revision()
    assert revision and revision.isdigit()
    cache = tmp_path / "pw-cache"
    (cache / "chromium-1" / "chrome-linux64").mkdir(parents=True)  # another revision's: not this Playwright's
    _fake_executable(cache / "chromium-1" / "chrome-linux64", "chrome")
    chrome_dir = cache / f"chromium-{revision}" / "chrome-linux64"
    chrome_dir.mkdir(parents=True)
    chrome = _fake_executable(chrome_dir, "chrome")
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(cache))
    monkeypatch.delenv("EVICAP_BROWSER", raising=False)
    assert find_browser(headless=False) == browser.BrowserInfo(str(chrome), "playwright")
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "empty"))
    assert browser._playwright_chromium() is None
