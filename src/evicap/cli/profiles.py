"""`evicap profiles list|show|validate` and `evicap login NAME --url URL`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
from playwright.async_api import Page

from evicap.capture.browser import find_browser
from evicap.cli.output import Output
from evicap.errors import EnvironmentProblem, ProfileError
from evicap.profiles.loader import available_profiles, builtin_profiles_dir, load_profile, load_profile_file
from evicap.sessions import list_sessions, record_login


@click.group("profiles")
def profiles_group() -> None:
    """Site profiles: what evicap does to a page (scroll, click, dismiss, extract) before capturing it."""


@profiles_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per profile on stdout.")
def list_command(as_json: bool) -> None:
    """List built-in and user profiles (a user profile overrides a built-in of the same name)."""
    out = Output()
    for name, path in sorted(available_profiles().items()):
        try:
            profile = load_profile(name)
        except ProfileError as error:
            out.warn(error.one_line())
            continue
        source = "built-in" if path.parent == builtin_profiles_dir() else "user"
        if as_json:
            out.json_line(
                {
                    "name": name,
                    "source": source,
                    "path": str(path),
                    "sha256": profile.sha256,
                    "domains": list(profile.domains),
                    "steps": len(profile.steps),
                }
            )
        else:
            domains = ", ".join(profile.domains) or "(fallback for every other site)"
            click.echo(f"{name:<10} {source:<8} {domains}")


@profiles_group.command("show")
@click.argument("name")
def show_command(name: str) -> None:
    """Print a profile's file (NAME or path), with where it is and its SHA-256."""
    profile = load_profile(name)
    out = Output()
    out.info(f"# {profile.path}")
    out.info(f"# sha256 {profile.sha256}")
    sys.stdout.write(profile.path.read_text(encoding="utf-8"))


@profiles_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def validate_command(files: tuple[Path, ...]) -> None:
    """Check profile files against the schema; each problem names the file, line and key."""
    out = Output()
    failed = 0
    for path in files:
        try:
            profile = load_profile_file(path)
        except ProfileError as error:
            failed += 1
            out.error(error.one_line())
            continue
        out.info(f"[green]ok[/] {path}: profile {profile.name}, {len(profile.steps)} steps")
    if failed:
        sys.exit(ProfileError.exit_code)


@click.command("login")
@click.argument("name", required=False)
@click.option("--url", help="Sign-in page of the site, e.g. https://x.com/login")
@click.option("--browser", "browser_path", help="Browser executable to use.")
@click.option("--list", "show_list", is_flag=True, help="List saved sessions instead.")
def login_command(name: str | None, url: str | None, browser_path: str | None, show_list: bool) -> None:
    """Sign in with an investigation account in a visible browser and save the session as NAME.

    Close the browser window (or press Enter here) when signed in. Use it with `capture --session NAME`.
    The session file holds live credentials: it is private to you (mode 0600) and never goes into a bundle.
    """
    out = Output()
    if show_list:
        for saved in list_sessions():
            click.echo(saved)
        return
    if not name or not url:
        raise click.UsageError("login needs NAME and --url URL")
    info = find_browser(browser_path, headless=False)
    if info.headless_only:
        raise EnvironmentProblem(f"{info.path} is Chromium's headless shell, which cannot open a window",
                                 hint="give --browser the full Chromium or Chrome (e.g. /usr/bin/chromium)")
    out.info(f"Sign in in the browser window, then close it (or press Enter here). Saving as session {name!r}.")

    async def closed_or_enter(page: Page) -> None:
        closed: asyncio.Future[object] = asyncio.ensure_future(page.wait_for_event("close", timeout=0))
        enter: asyncio.Future[object] = asyncio.get_running_loop().create_future()

        def pressed() -> None:
            if not enter.done():
                enter.set_result(None)

        interactive = sys.stdin.isatty()  # a reader on a closed or piped stdin would fire at once
        if interactive:
            loop = asyncio.get_running_loop()
            loop.add_reader(sys.stdin.fileno(), pressed)
        try:
            await asyncio.wait({closed, enter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if interactive:
                asyncio.get_running_loop().remove_reader(sys.stdin.fileno())
            closed.cancel()

    path = asyncio.run(record_login(info, name, url, headless=False, done=closed_or_enter))
    out.info(f"[green]saved[/] session {name!r} to {path} (mode 0600); use `evicap capture --session {name} URL`")
