"""The `evicap` command: a click group, one error handler, exit codes that mean something.

Exit codes: 0 all good; 1 evidence problem (capture failed or partial, verification failed);
2 usage or environment error. Any EvicapError becomes one red line on stderr; --debug shows the traceback.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
from typing import Any, NoReturn

import click

from evicap import __version__
from evicap.cli.output import Output
from evicap.errors import EvicapError, first_line

# Each command lives in its own module, imported only when that command runs (or help lists them all): `evicap
# verify` on a workstation should not pay for importing Playwright and the capture engine.
COMMANDS = {
    "capture": "evicap.cli.capture:capture",
    "demo": "evicap.cli.capture:demo",
    "doctor": "evicap.cli.capture:doctor",
    "verify": "evicap.cli.verify:verify",
    "keys": "evicap.cli.seal:keys",
    "custody": "evicap.cli.seal:custody",
    "timestamp": "evicap.cli.seal:timestamp",
    "profiles": "evicap.cli.profiles:profiles_group",
    "login": "evicap.cli.profiles:login_command",
    "batch": "evicap.cli.batch:batch",
    "session": "evicap.cli.session:session_group",
    "report": "evicap.cli.report:report",
    "request": "evicap.cli.request:request",
    "requests": "evicap.cli.request:requests",
    "package": "evicap.cli.package:package",
    "export": "evicap.cli.export:export",
    "hashes": "evicap.cli.hashes:hashes",
    "match": "evicap.cli.match:match",
    "watch": "evicap.cli.watch:watch",
    "worker": "evicap.cli.worker:worker",
}


class EvicapGroup(click.Group):
    """Loads commands on first use, and turns every EvicapError (and any unexpected exception) into one line and
    an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EvicapError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            Output().error(error.one_line())
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            Output().error("interrupted")
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as error:  # a bug: still one line, unless --debug
            if ctx.obj and ctx.obj.get("debug"):
                raise
            Output().error(f"internal error: {first_line(error, typed=True)} (rerun with --debug for details)")
            sys.exit(2)


@click.group(cls=EvicapGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evicap")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """evicap: capture web and social-media pages as verifiable evidence bundles."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main() -> None:
    """The console script. Once the command is done, the process exits without tearing the interpreter down
    (``_exit``): every file it wrote is closed and synced by then, and the teardown of some thousand modules and
    their objects cost a capture 0.1 s of nothing (measured with benchmarks/bench_process.py)."""
    try:
        cli(prog_name="evicap")
    except SystemExit as done:
        _exit(done.code)
    _exit(0)


def _exit(code: object) -> NoReturn:
    """What ``sys.exit(code)`` would end with, minus the teardown: the atexit handlers run, threads are waited for
    as at a normal exit (``threading._shutdown``: executor workers are told to stop first), the streams flushed."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said there
            pass
    os._exit(status)
