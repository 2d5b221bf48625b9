"""The `evicap` command: a click group, one error handler, exit codes that mean something.

Exit codes: 0 all good; 1 evidence problem (capture failed or partial, verification failed);
2 usage or environment error. Any EvicapError becomes one red line on stderr; --debug shows the traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from evicap import __version__
from evicap.cli.output import Output
from evicap.errors import EvicapError


class EvicapGroup(click.Group):
    """Turns every EvicapError (and any unexpected exception) into one line and an exit code."""

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
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            Output().error(f"internal error: {type(error).__name__}: {first} (rerun with --debug for details)")
            sys.exit(2)


@click.group(cls=EvicapGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evicap")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """evicap: capture web and social-media pages as verifiable evidence bundles."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register() -> None:
    # Each command module adds its commands here.
    from evicap.cli.capture import capture, demo, doctor

    cli.add_command(capture)
    cli.add_command(demo)
    cli.add_command(doctor)
    from evicap.cli.verify import verify

    cli.add_command(verify)
    from evicap.cli.seal import custody, keys, timestamp

    for command in (keys, custody, timestamp):
        cli.add_command(command)
    from evicap.cli.profiles import login_command, profiles_group

    cli.add_command(profiles_group)
    cli.add_command(login_command)
    from evicap.cli.batch import batch; cli.add_command(batch)  # noqa: E702, I001


_register()


def main() -> None:
    cli(prog_name="evicap")
