"""`evicap keys`, `evicap custody` and `evicap timestamp`: the CLI over evicap.seal.

Passphrases come from EVICAP_KEY_PASSPHRASE or, on a terminal, from a hidden prompt; the core never prompts.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from evicap.bundle import layout
from evicap.cli.output import Output
from evicap.config import load_config
from evicap.errors import BundleError, SigningError, UsageError
from evicap.seal.custody import ACTIONS, Actor, append_event, read_events, sha256_file
from evicap.seal.head import head_path, read_head
from evicap.seal.keys import PASSPHRASE_ENV, PassphrasePrompt, Signer, generate_key, public_path
from evicap.seal.keys import public_key_fingerprint as fingerprint_of_pem
from evicap.seal.sealer import SealSettings, load_signer, timestamp_bundle, unencrypted_notice


def _prompt_for(path: Path) -> PassphrasePrompt | None:
    """A hidden prompt for the key's passphrase, only when a person is at a terminal."""
    if not sys.stdin.isatty():
        return None
    return lambda: click.prompt(f"Passphrase for {path}", hide_input=True, default="", show_default=False)


def _signer(key: str | None) -> tuple[SealSettings, Signer]:
    settings = SealSettings.resolve(load_config(), key=Path(key) if key else None)
    return settings, _load(settings)


def _load(settings: SealSettings) -> Signer:
    """Load (never create) the signing key, and say so when it has no passphrase."""
    signer = load_signer(settings, _prompt_for(settings.key))
    notice = unencrypted_notice(signer)
    if notice:
        Output().warn(notice)
    return signer


def _actor_name(explicit: str | None, settings: SealSettings) -> str:
    return explicit or settings.investigator or getpass.getuser()


def _bundle(path: str) -> Path:
    bundle = Path(path)
    if not (bundle / layout.MANIFEST).is_file():
        raise UsageError(f"{bundle} is not an evidence bundle (no {layout.MANIFEST})")
    return bundle


# -- keys ---------------------------------------------------------------------------------------------------


@click.group()
def keys() -> None:
    """Create and inspect Ed25519 signing keys."""


@keys.command("generate")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Private key file to create.")
@click.option("--unencrypted", is_flag=True, help="Store the key without a passphrase (file mode 0600 only).")
def keys_generate(out: str, unencrypted: bool) -> None:
    """Write a new private key to OUT (PKCS#8 PEM, mode 0600) and its public key to OUT.pub."""
    passphrase: str | None = None
    if not unencrypted:
        passphrase = os.environ.get(PASSPHRASE_ENV)
        if passphrase is None:
            if not sys.stdin.isatty():
                raise SigningError(
                    "no passphrase for the new key",
                    hint=f"set {PASSPHRASE_ENV}, run on a terminal, or pass --unencrypted",
                )
            passphrase = click.prompt("Passphrase for the new key", hide_input=True, confirmation_prompt=True)
        if not passphrase:
            raise SigningError("empty passphrase", hint="choose one, or pass --unencrypted to store the key without")
    signer = generate_key(Path(out), passphrase)
    out_ = Output()
    out_.info(f"private key  {signer.path} ({'encrypted' if signer.encrypted else 'UNENCRYPTED'}, mode 0600)")
    out_.info(f"public key   {public_path(signer.path)}")
    out_.info(f"fingerprint  {signer.fingerprint}")
    click.echo(signer.fingerprint)


@keys.command("show")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def keys_show(path: str | None) -> None:
    """Print the fingerprint (SHA-256 of the DER SubjectPublicKeyInfo) of a key; default: the configured key.

    PATH may be a public key, or a private key whose PATH.pub sits beside it.
    """
    if path is None:
        config = load_config()
        key = config.key or config.default_key_path
    else:
        key = Path(path)
    private = key.with_name(key.name.removesuffix(".pub")) if key.name.endswith(".pub") else key
    protection = _protection_of(private)
    for candidate in (public_path(key), key):
        try:
            data = candidate.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise SigningError(f"cannot read {candidate}: {error.strerror or error}") from None
        if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
            Output().info(f"{candidate}" + (f" (private key {private}: {protection})" if protection else ""))
            click.echo(fingerprint_of_pem(data))
            return
    if key.exists():
        # A private key without its .pub: load it (passphrase if needed) to derive the public half.
        settings = SealSettings.resolve(load_config(), key=key)
        signer = load_signer(settings, _prompt_for(key))
        Output().info(f"{key} ({protection})")
        click.echo(signer.fingerprint)
        return
    raise SigningError(f"no key at {key}", hint="create one with `evicap keys generate --out PATH`")


def _protection_of(private: Path) -> str | None:
    """What ``keys show`` says of a private key file, without loading it; None when there is none."""
    try:
        with open(private, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    if b"ENCRYPTED PRIVATE KEY" in head:
        return "encrypted with a passphrase"
    if b"PRIVATE KEY-----" in head:
        return "UNENCRYPTED: protected by file mode 0600 only"
    return None


EVICAP_ONLY = ("acquired", "sealed", "timestamped")
"""Events only evicap itself records, each with the files and hashes it made (a hand-added one would name none)."""


# -- custody ------------------------------------------------------------------------------------------------


@click.group()
def custody() -> None:
    """Record and show a bundle's chain of custody."""


@custody.command("add")
@click.argument("bundle", type=click.Path(file_okay=False, exists=True))
@click.option("--action", required=True, type=click.Choice([a for a in ACTIONS if a not in EVICAP_ONLY]),
              help="What happened to the bundle.")  # fmt: skip
@click.option("--to", "to", help="Recipient (transferred, copied, exported).")
@click.option("--from", "from_", help="Sender (received).")
@click.option("--note", help="Free text: reason, medium, reference number.")
@click.option("--actor", help="Who acts (default: investigator from config, else the login name).")
@click.option("--key", type=click.Path(dir_okay=False), help="Signing key (default from config).")
def custody_add(
    bundle: str, action: str, to: str | None, from_: str | None, note: str | None, actor: str | None, key: str | None
) -> None:
    """Append a signed event to BUNDLE's custody.jsonl. manifest.json is never changed."""
    path = _bundle(bundle)
    log = path / layout.CUSTODY
    if not log.is_file():
        raise BundleError(f"{path} has no {layout.CUSTODY}: it was never sealed")
    settings, signer = _signer(key)
    details = {k: v for k, v in (("to", to), ("from", from_), ("note", note)) if v}
    event = append_event(
        log,
        signer,
        Actor(_actor_name(actor, settings), signer.fingerprint),
        action,
        details,
        sha256_file(path / layout.MANIFEST),
    )
    Output().info(f"appended seq {event.seq} ({event.action}) to {log}")


@custody.command("show")
@click.argument("bundle", type=click.Path(file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON lines on stdout.")
def custody_show(bundle: str, as_json: bool) -> None:
    """Print BUNDLE's custody log as a table (does not verify it: use `evicap verify`)."""
    path = _bundle(bundle)
    log = path / layout.CUSTODY
    if not log.is_file():
        raise BundleError(f"{path} has no {layout.CUSTODY}: it was never sealed")
    events = read_events(log)
    if as_json:
        for event in events:
            Output.json_line(
                {
                    "seq": event.seq,
                    "time": event.time,
                    "actor": {"name": event.actor.name, "fingerprint": event.actor.fingerprint},
                    "action": event.action,
                    "details": event.details,
                    "manifest_sha256": event.manifest_sha256,
                }
            )
        return
    table = Table(title=f"custody log of {path.name}", show_lines=False)
    for column in ("seq", "time (UTC)", "actor", "key", "action", "details", "manifest"):
        table.add_column(column, overflow="fold")
    for event in events:
        details = ", ".join(f"{k}={_short(v)}" for k, v in event.details.items())
        table.add_row(
            str(event.seq),
            event.time,
            escape(event.actor.name),
            event.actor.fingerprint[:16],
            event.action,
            escape(details),
            event.manifest_sha256[:16],
        )
    console = Output().err
    console.print(table)
    head = read_head(log)
    if head is not None:
        Output().info(f"{head_path(log).name}: seq {head.seq}, last line SHA-256 {head.line_sha256} (signed by key "
                      f"{head.fingerprint[:16]}…); quote both to the next holder so a rollback would show")
    current = hashlib.sha256((path / layout.MANIFEST).read_bytes()).hexdigest()
    if events and events[0].manifest_sha256 != current:
        Output().warn("manifest.json no longer matches the hash the custody log began with")


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


# -- timestamp ----------------------------------------------------------------------------------------------


@click.command("timestamp")
@click.argument("bundle", type=click.Path(file_okay=False, exists=True))
@click.option("--tsa", multiple=True, help="RFC 3161 time-stamp authority URL (repeatable, tried in order).")
@click.option("--tsa-ca", multiple=True, type=click.Path(dir_okay=False),
              help="Trust anchor PEM for time-stamp authorities (repeatable).")  # fmt: skip
@click.option("--tsa-timeout", type=float, help="Seconds to wait for each authority (default 10).")
@click.option("--tsa-all", is_flag=True, help="Ask every authority and keep every valid token (default: the first).")
@click.option("--add", is_flag=True, help="Add another token to a bundle that already has one.")
@click.option("--actor", help="Who acts (default: investigator from config, else the login name).")
@click.option("--key", type=click.Path(dir_okay=False), help="Signing key for the custody event.")
def timestamp(
    bundle: str,
    tsa: tuple[str, ...],
    tsa_ca: tuple[str, ...],
    tsa_timeout: float | None,
    tsa_all: bool,
    add: bool,
    actor: str | None,
    key: str | None,
) -> None:
    """Add a trusted timestamp to BUNDLE (sealed without one, or --add), and record it in the custody log."""
    path = _bundle(bundle)
    config = load_config()
    settings = SealSettings.resolve(
        config,
        key=Path(key) if key else None,
        tsa=list(tsa),
        tsa_ca=[Path(p) for p in tsa_ca],
        tsa_timeout=tsa_timeout,
        tsa_all=tsa_all,
    )
    signer = _load(settings)
    out = Output()
    result = timestamp_bundle(
        path, signer, settings, actor=Actor(_actor_name(actor, settings), signer.fingerprint), add=add
    )
    for warning in result.warnings:
        out.warn(warning.message)
    gen_time = result.gen_time.isoformat().replace("+00:00", "Z") if result.gen_time else "?"
    files = ", ".join(result.token_files)
    out.info(f"timestamped by {result.tsa_url} at {gen_time} ({files}); recorded in {layout.CUSTODY}")
