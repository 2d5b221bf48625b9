"""What the driver and the browser inherit, and what the page is shown (issue 12): unit level."""

from __future__ import annotations

import subprocess
from pathlib import Path

from evicap.capture.browser import client_hints, desktop_user_agent, launch_args
from evicap.capture.sandbox import (
    FEATURES_OFF,
    SandboxPlan,
    browser_environment,
    driver_environment,
    features_off_in,
    scrub_environment,
    wrapper_script,
)

OURS = {
    "EVICAP_KEY_PASSPHRASE": "pw", "EVICAP_BROWSER_ARGS": "--x", "AWS_SECRET_ACCESS_KEY": "k", "GITHUB_TOKEN": "t",
    "HTTPS_PROXY": "http://u:p@h:1", "http_proxy": "http://h:1", "DB_PASSWORD": "p", "PATH": "/usr/bin",
    "HOME": "/root", "LANG": "de_DE.UTF-8", "TZ": "Europe/Berlin", "LC_TIME": "C", "PLAYWRIGHT_BROWSERS_PATH": "/p",
}


def test_driver_environment_keeps_nothing_secret_or_ours() -> None:
    kept = scrub_environment(OURS)
    assert set(kept) == {"PATH", "HOME", "LANG", "TZ", "LC_TIME", "PLAYWRIGHT_BROWSERS_PATH"}


def test_the_driver_keeps_its_compiled_code_in_evicaps_cache_unless_told_otherwise() -> None:
    env = driver_environment({**OURS, "XDG_CACHE_HOME": "/home/ana/.cache"})
    assert env["NODE_COMPILE_CACHE"] == "/home/ana/.cache/evicap/node-compile-cache"
    assert "--max-semi-space-size=1 --jitless" in env["NODE_OPTIONS"] and "DB_PASSWORD" not in env
    assert driver_environment({**OURS, "NODE_COMPILE_CACHE": "/elsewhere"})["NODE_COMPILE_CACHE"] == "/elsewhere"


def test_the_drivers_memory_settings_are_added_to_the_users_own() -> None:
    env = driver_environment({**OURS, "NODE_OPTIONS": "--trace-warnings", "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert env["NODE_OPTIONS"] == "--trace-warnings --max-semi-space-size=1 --jitless"
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536"
    assert driver_environment(OURS)["GLIBC_TUNABLES"] == "glibc.malloc.mmap_threshold=65536"


def test_browser_environment_is_an_allow_list_with_a_private_home(tmp_path: Path) -> None:
    env = browser_environment(OURS, tmp_path)
    assert env["HOME"] == str(tmp_path) and env["XDG_CONFIG_HOME"].startswith(str(tmp_path))
    assert {k for k in env if k not in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")} == {"PATH", "LANG", "TZ",
                                                                                          "LC_TIME"}


def test_presented_browser_is_consistent_desktop_chrome() -> None:
    ua = desktop_user_agent("Chromium 156.0.8078.114")
    assert ua is not None and "Headless" not in ua and "Chrome/156.0.0.0" in ua
    hints = client_hints(ua, "Chromium 156.0.8078.114")
    assert {b["brand"] for b in hints["brands"]} == {"Chromium", "Not_A Brand"}
    assert hints["fullVersion"] == "156.0.8078.114" and hints["mobile"] is False
    windows = client_hints("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "Chrome/120.0.0.0 Safari/537.36", "Chromium 156.0.8078.114")
    assert windows["platform"] == "Windows" and windows["brands"][0]["version"] == "120"


def test_sandbox_flag_only_when_asked() -> None:
    assert "--no-sandbox" not in launch_args()
    assert "--no-sandbox" in launch_args(no_sandbox=True)
    args = launch_args()
    assert "--force-webrtc-ip-handling-policy=disable_non_proxied_udp" in args and "--dns-prefetch-disable" in args


def test_launch_wrapper_joins_every_feature_list_into_one_switch(tmp_path: Path) -> None:
    """Chromium applies only the last --disable-features: the wrapper must hand it one list holding all of them."""
    fake = tmp_path / "browser"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n', encoding="utf-8")
    fake.chmod(0o700)
    plan = SandboxPlan("chromium", "someone", 1000, 1000, False)
    wrapper = tmp_path / "wrapper"
    wrapper.write_text(wrapper_script(plan, str(fake)), encoding="utf-8")
    args = ["--headless", "--disable-features=PaintHolding,HttpsUpgrades", "--enable-features=A",
            "--user-data-dir=/tmp/a dir", *launch_args(), "--enable-features=B", "about:blank"]
    out = subprocess.run(["sh", str(wrapper), *args], capture_output=True, text=True, check=True).stdout
    got = out.splitlines()
    disabled = [a for a in got if a.startswith("--disable-features=")]
    assert len(disabled) == 1 and [a for a in got if a.startswith("--enable-features=")] == ["--enable-features=A,B"]
    names = disabled[0].removeprefix("--disable-features=").split(",")
    assert {"PaintHolding", "HttpsUpgrades", *FEATURES_OFF} <= set(names)
    others = [a for a in args if not a.startswith(("--disable-features=", "--enable-features="))]
    assert [a for a in got if not a.startswith(("--disable-features=", "--enable-features="))] == others


def test_a_feature_list_chromium_drops_is_reported() -> None:
    ours = "--disable-features=" + ",".join(FEATURES_OFF)
    effective, problems = features_off_in(["chromium", ours, "--headless"])
    assert effective == list(FEATURES_OFF) and problems == []
    effective, problems = features_off_in(["chromium", ours, "--disable-features=PaintHolding"])
    assert effective == ["PaintHolding"]
    assert "feature Prerender2 is not turned off in the browser" in problems
    assert any("2 --disable-features switches" in p for p in problems)
