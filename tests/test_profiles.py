"""Profile files, schema errors, profile choice, saved sessions and the profiles / login commands."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from evicap.cli.main import cli
from evicap.errors import ConfigError, ProfileError, UsageError
from evicap.profiles import load_profile, loader, resolve_profile
from evicap.profiles.loader import available_profiles, builtin_profiles_dir, parse_profile
from evicap.sessions import list_sessions, load_session, save_session, session_path
from tests.variants import variants

PLATFORMS = ("facebook", "instagram", "reddit", "telegram", "tiktok", "vk", "x", "youtube")


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in ("EVICAP_PROFILES_DIR", "EVICAP_SESSIONS_DIR", "EVICAP_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def test_every_builtin_profile_is_valid_and_shipped_in_the_package() -> None:
    assert builtin_profiles_dir().is_dir()
    assert set(available_profiles()) == {"generic", "as-loaded", *PLATFORMS}
    for name in available_profiles():
        profile = load_profile(name)
        assert profile.builtin and len(profile.sha256) == 64
        assert profile.steps or name == "as-loaded"  # as-loaded runs no behaviors, by design


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.com/someone/status/1", "x"),
        ("https://mobile.twitter.com/a", "x"),
        ("https://t.me/s/channel", "telegram"),
        ("https://www.youtube.com/watch?v=abc", "youtube"),
        ("https://old.reddit.com/r/a", "reddit"),
        ("https://m.vk.com/wall-1_2", "vk"),
        ("https://www.tiktok.com/@a/video/1", "tiktok"),
        ("https://www.instagram.com/p/abc/", "instagram"),
        ("https://www.facebook.com/page/posts/1", "facebook"),
        ("https://example.org/news", "generic"),
        ("https://notx.com/", "generic"),
    ],
)
def test_auto_picks_the_profile_by_domain_and_falls_back_to_generic(url: str, expected: str) -> None:
    assert resolve_profile("auto", url).name == expected


def test_named_profile_wins_over_the_domain() -> None:
    assert resolve_profile("reddit", "https://x.com/a").name == "reddit"


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ProfileError) as caught:
        resolve_profile("myspace", "https://example.org/")
    assert "myspace" in str(caught.value) and "telegram" in (caught.value.hint or "")


BAD = [
    ("name: a\nsteps:\n  - wait: {seconds: 1}\n  - scrol: {}\n", 4, "steps[1]", "unknown step 'scrol'"),
    (
        "name: a\nsteps:\n  - scroll:\n      max_scrolls: many\n",
        4,
        "steps[0].scroll.max_scrolls",
        "'many' is not of type",
    ),
    ("name: a\nsteps:\n  - click: {repeat: true}\n", 3, "steps[0].click", "'selector' is a required property"),
    ("name: a\ncolour: red\nsteps: []\n", 1, "(top level)", "'colour' was unexpected"),
    (
        "name: a\nsteps:\n  - extract: {extractor: myspace}\n",
        3,
        "steps[0].extract.extractor",
        "'myspace' is not one of",
    ),
    ("name: a\nsteps: [\n", 3, "", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "line", "key", "expected"), BAD)
def test_schema_errors_name_the_file_the_line_the_key_and_what_was_expected(
    text: str, line: int, key: str, expected: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, Path("mine.yaml"))
    message = str(caught.value)
    assert message.startswith(f"mine.yaml:{line}:"), message
    assert key in message and expected in message


@pytest.mark.skipif(loader._FAST_LOADER is None, reason="PyYAML built without libyaml")
def test_libyaml_and_pure_python_yaml_give_the_same_profiles_lines_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [(path, path.read_text(encoding="utf-8")) for path in sorted(builtin_profiles_dir().glob("*.yaml"))]
    texts += [(Path("mine.yaml"), text) for text, *_ in BAD]
    texts += [(Path("tabs.yaml"), "name: a\nsteps:\n\t- wait: {}\n"), (Path("empty.yaml"), "")]

    def outcome(path: Path, text: str) -> Any:
        try:
            return parse_profile(text, path)
        except ProfileError as error:
            return str(error)

    fast = [outcome(path, text) for path, text in texts]
    monkeypatch.setattr(loader, "_FAST_LOADER", None)
    assert fast == [outcome(path, text) for path, text in texts]
    assert any(isinstance(result, loader.Profile) and result.steps and result.steps[-1].line for result in fast)


def test_an_edited_profile_is_read_afresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    monkeypatch.setenv("EVICAP_PROFILES_DIR", str(folder))
    (folder / "telegram.yaml").write_text("name: telegram\ndomains: [t.me]\nsteps:\n  - dismiss:\n")
    assert [s.kind for s in resolve_profile("auto", "https://t.me/s/x").steps] == ["dismiss"]
    (folder / "telegram.yaml").write_text("name: telegram\ndomains: [t.me]\nsteps:\n  - scroll:\n  - dismiss:\n")
    assert [s.kind for s in resolve_profile("auto", "https://t.me/s/x").steps] == ["scroll", "dismiss"]


def test_a_user_profile_overrides_the_builtin_and_is_hashed_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    raw = b"name: telegram\r\ndomains: [t.me]\r\nsteps:\r\n  - dismiss:\r\n"
    (folder / "telegram.yaml").write_bytes(raw)
    monkeypatch.setenv("EVICAP_PROFILES_DIR", str(folder))
    profile = resolve_profile("auto", "https://t.me/s/x")
    assert profile.path == folder / "telegram.yaml" and not profile.builtin
    import hashlib

    assert profile.sha256 == hashlib.sha256(raw).hexdigest()
    assert [s.kind for s in profile.steps] == ["dismiss"]


def test_profiles_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["profiles", "list", "--json"])
    assert listed.exit_code == 0
    names = {json.loads(line)["name"] for line in listed.stdout.splitlines()}
    assert names == {"generic", "as-loaded", *PLATFORMS}
    shown = runner.invoke(cli, ["profiles", "show", "telegram"])
    assert shown.exit_code == 0 and "tgme_widget_message" in shown.stdout
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("name: good\nsteps:\n  - scroll:\n")
    bad.write_text("name: bad\nsteps:\n  - hide: {fixed_overlays: sometimes}\n")
    assert runner.invoke(cli, ["profiles", "validate", str(good)]).exit_code == 0
    result = runner.invoke(cli, ["profiles", "validate", str(good), str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:3:" in result.stderr and "fixed_overlays" in result.stderr


def test_sessions_are_private_files_replaced_atomically() -> None:
    state: dict[str, Any] = {"cookies": [{"name": "sid", "value": "s3cret"}], "origins": []}
    path = save_session("case-7", state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    save_session("case-7", {"cookies": [], "origins": []})
    assert load_session("case-7") == {"cookies": [], "origins": []}
    assert list_sessions() == ["case-7"] and session_path("case-7") == path
    assert [p.name for p in path.parent.iterdir()] == ["case-7.json"]  # no temporary file left behind


def test_missing_or_exposed_sessions_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="no saved session named 'nope'") as caught:
        session_path("nope")
    assert "evicap login nope" in (caught.value.hint or "")
    path = save_session("shared", {"cookies": [], "origins": []})
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by other users"):
        session_path("shared")
    with pytest.raises(UsageError):
        save_session("../escape", {})


def test_the_fast_profile_validator_never_accepts_what_the_reference_refuses() -> None:
    refused = 0
    for path in sorted(builtin_profiles_dir().glob("*.yaml")):
        data = yaml.safe_load(path.read_text("utf-8"))
        assert loader._CHECK.surely_valid(data), path.name
        for changed in variants(data, (None, -1, "text", [], {"x": 1})):
            reference_errors = list(loader._CHECK.reference.iter_errors(changed))
            if loader._CHECK.surely_valid(changed):
                assert not reference_errors, f"{path.name}: jsonschema-rs accepted {reference_errors[0].message}"
            else:
                refused += 1
                assert reference_errors, f"{path.name}: jsonschema-rs refused a profile the reference accepts"
    assert refused > 200
