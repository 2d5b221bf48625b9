"""User defaults: a YAML file in the XDG config directory, EVICAP_* environment variables, CLI options.

Precedence is CLI > environment > file > built-in default. This module merges file and environment into one
frozen ``Config``; each command applies its own options on top (see ``evicap.seal.sealer.SealSettings``).

    $XDG_CONFIG_HOME/evicap/config.yaml      (default ~/.config/evicap/config.yaml; EVICAP_CONFIG overrides)

    investigator: "Jane Roe"                 EVICAP_INVESTIGATOR
    organization: "Example Unit"             EVICAP_ORGANIZATION
    key: ~/.config/evicap/signing-key.pem    EVICAP_KEY
    tsa: [https://tsa.example/tsr]           EVICAP_TSA          (whitespace-separated URLs)
    tsa_ca: [~/tsa-root.pem]                 EVICAP_TSA_CA       (paths separated by os.pathsep)
    tsa_timeout: 10                          EVICAP_TSA_TIMEOUT  (seconds per authority)
    tsa_all: false                           EVICAP_TSA_ALL      (1/true: ask every authority, keep every token)
    clock_tolerance: 10                      EVICAP_CLOCK_TOLERANCE (seconds verify allows between the capture
                                                                 clock and a token's time, beyond its accuracy)
    trusted_keys: [~/keyring/]               EVICAP_TRUSTED_KEYS (.pub.pem files or directories of them)
    profiles_dir: ~/evicap/profiles          EVICAP_PROFILES_DIR
    sessions_dir: ~/evicap/sessions          EVICAP_SESSIONS_DIR
    browser_user: evicap-browser             EVICAP_BROWSER_USER (as root: the account the browser runs as)
    allow_networks: [10.20.0.0/16]           EVICAP_ALLOW_NETWORKS (CIDRs a page may reach; whitespace-separated)
    egress_check_url: https://ip.example/    EVICAP_EGRESS_CHECK_URL (off by default: offline first)
    egress_test_private: [127.0.0.2]         (tests only: loopback addresses the egress policy treats as private)
    requesting_authority: {organisation: ..., person: ..., email: ..., phone: ..., address: ...,
                           time_zone: Europe/Paris, office_hours: ...}     (cross-border requests)

Relative paths in the file are taken relative to the file's directory, so a config can travel with its keys.
A misspelt key is an error, not a silent default: an investigator who typed ``investigtor`` must find out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evicap.errors import ConfigError

CONFIG_FILE = "config.yaml"
DEFAULT_KEY_FILE = "signing-key.pem"
DEFAULT_TSA_TIMEOUT = 10.0
DEFAULT_CLOCK_TOLERANCE = 10.0

_STRINGS = ("investigator", "organization", "browser_user")
_STRING_LISTS = ("allow_networks", "egress_test_private")
_PATHS = ("key", "profiles_dir", "sessions_dir")
_PATH_LISTS = ("tsa_ca", "trusted_keys")
_SECONDS = ("tsa_timeout", "clock_tolerance")
AUTHORITY_KEYS = ("organisation", "person", "email", "phone", "address", "time_zone", "office_hours")
KNOWN_KEYS = (
    *_STRINGS, *_PATHS, "tsa", *_PATH_LISTS, *_SECONDS, "tsa_all", *_STRING_LISTS, "egress_check_url",
    "requesting_authority",
)


@dataclass(frozen=True)
class Config:
    """Defaults from the config file and the environment, already merged (environment wins)."""

    config_dir: Path
    """Directory holding config.yaml and, when no key is configured, the automatically created key."""
    file: Path | None
    """The config file that was read, or None when there was none."""
    investigator: str | None = None
    organization: str | None = None
    key: Path | None = None
    """Signing key; None means the default key in ``config_dir`` (created on first capture)."""
    tsa: tuple[str, ...] = ()
    """Time-stamp authority URLs, tried in order."""
    tsa_ca: tuple[Path, ...] = ()
    """PEM files of trust anchors for time-stamp authorities."""
    tsa_timeout: float = DEFAULT_TSA_TIMEOUT
    tsa_all: bool = False
    """Ask every configured authority (not only until one answers) and keep every valid token."""
    clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE
    """Seconds verify allows between the capture's clock (corrected by the offset measured at sealing) and a
    token's genTime, beyond the token's own accuracy."""
    trusted_keys: tuple[Path, ...] = ()
    """Keyring: .pub.pem files (or directories of them) whose signatures verify treats as known."""
    profiles_dir: Path | None = None
    sessions_dir: Path | None = None
    browser_user: str | None = None
    """As root: the unprivileged account the browser runs as (default evicap-browser, else nobody)."""
    allow_networks: tuple[str, ...] = ()
    """CIDRs a captured page may make the browser reach although they are internal (egress policy)."""
    egress_check_url: str | None = None
    """A URL answering with the caller's public address, fetched through the capture's proxy; None: not asked."""
    egress_test_private: tuple[str, ...] = ()
    """Tests only: loopback addresses the egress policy treats as private networks."""
    requesting_authority: tuple[tuple[str, str], ...] = ()
    """Who signs cross-border requests (keys AUTHORITY_KEYS), as (key, value) pairs; see docs/requests.md."""

    @property
    def default_key_path(self) -> Path:
        return self.config_dir / DEFAULT_KEY_FILE


def _xdg_dir(env: Mapping[str, str] | None, variable: str, fallback: str) -> Path:
    """evicap's directory under the XDG base directory ``variable`` (``~/fallback`` when it is unset or not
    absolute, per the XDG spec)."""
    env = os.environ if env is None else env
    base = env.get(variable, "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / fallback
    return root / "evicap"


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """evicap's directory under $XDG_CONFIG_HOME (or ~/.config)."""
    return _xdg_dir(env, "XDG_CONFIG_HOME", ".config")


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """evicap's directory under $XDG_CACHE_HOME (or ~/.cache): things kept only to go faster, never evidence."""
    return _xdg_dir(env, "XDG_CACHE_HOME", ".cache")


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the config file (if any) and apply EVICAP_* environment variables over it.

    ``path`` (or EVICAP_CONFIG) names a file that must exist; otherwise the XDG file is optional.
    """
    env = os.environ if env is None else env
    directory = config_dir(env)
    explicit = path or (Path(env["EVICAP_CONFIG"]).expanduser() if env.get("EVICAP_CONFIG") else None)
    candidate = explicit or directory / CONFIG_FILE
    file = candidate if explicit is not None or candidate.exists() else None
    values: dict[str, Any] = _read_file(file) if file is not None else {}
    values.update(_from_env(env))
    return Config(config_dir=directory, file=file, **values)


def _read_file(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {file} does not exist", hint="check EVICAP_CONFIG") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {file}: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"config file {file}{where}: YAML syntax error: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {file}: expected a mapping of settings, got {type(data).__name__}")
    base = file.parent
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in KNOWN_KEYS:
            raise ConfigError(f"config file {file}: unknown key {key!r}", hint=f"known keys: {', '.join(KNOWN_KEYS)}")
        if value is None:
            continue
        values[key] = _coerce(file, key, value, base)
    return values


def _coerce(file: Path, key: str, value: Any, base: Path) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"config file {file}: key {key!r}: expected {expected}, got {value!r}")

    if key in _STRINGS:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if key in _PATHS:
        if not isinstance(value, str) or not value:
            raise bad("a path")
        return _path(value, base)
    if key == "requesting_authority":
        if not isinstance(value, dict) or not all(k in AUTHORITY_KEYS and isinstance(v, str) for k, v in value.items()):
            raise bad(f"a mapping of {', '.join(AUTHORITY_KEYS)} to strings")
        return tuple(value.items())
    if key in _STRING_LISTS:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise bad("a list of strings")
        return tuple(items)
    if key == "egress_check_url":
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise bad("an http(s) URL")
        return value
    if key in _SECONDS:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise bad("a positive number of seconds")
        return float(value)
    if key == "tsa_all":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise bad("a list of URLs" if key == "tsa" else "a list of paths")
    if key == "tsa":
        for url in items:
            if not url.startswith(("http://", "https://")):
                raise bad("a list of http(s) URLs")
        return tuple(items)
    return tuple(_path(i, base) for i in items)


def _path(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    cwd = Path.cwd()
    for key in (*_STRINGS, *_PATHS):
        raw = env.get(f"EVICAP_{key.upper()}")
        if raw:
            values[key] = raw if key in _STRINGS else _path(raw, cwd)
    if env.get("EVICAP_TSA"):
        values["tsa"] = tuple(env["EVICAP_TSA"].split())
    for key in _PATH_LISTS:
        raw = env.get(f"EVICAP_{key.upper()}")
        if raw:
            values[key] = tuple(_path(p, cwd) for p in raw.split(os.pathsep) if p)
    for key in _SECONDS:
        raw = env.get(f"EVICAP_{key.upper()}")
        if raw:
            try:
                seconds = float(raw)
            except ValueError:
                seconds = -1.0
            if not seconds > 0:
                raise ConfigError(f"EVICAP_{key.upper()}: expected a positive number of seconds, got {raw!r}")
            values[key] = seconds
    if env.get("EVICAP_ALLOW_NETWORKS"):
        values["allow_networks"] = tuple(env["EVICAP_ALLOW_NETWORKS"].split())
    if env.get("EVICAP_EGRESS_CHECK_URL"):
        values["egress_check_url"] = env["EVICAP_EGRESS_CHECK_URL"]
    raw = env.get("EVICAP_TSA_ALL")
    if raw:
        if raw.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ConfigError(f"EVICAP_TSA_ALL: expected 1/true or 0/false, got {raw!r}")
        values["tsa_all"] = raw.lower() in ("1", "true", "yes")
    return values
