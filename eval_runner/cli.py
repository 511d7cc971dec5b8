"""The eval-runner command line: parse arguments, build settings and adapters once, run one step.

Every command group lives in ``eval_runner.commands.<group>`` and receives a ``Runtime``
(eval_runner.runtime) that builds settings and adapters lazily, so a command that needs no S3 never
asks for S3 settings.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

import click

from eval_runner import __version__
from eval_runner.errors import ExitCode, FleetEvalError
from eval_runner.runtime import Runtime, load_settings, pass_runtime

__all__ = ["Runtime", "cli", "load_settings", "main", "pass_runtime", "run"]  # Runtime re-exported for commands


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="eval-runner")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Build datasets, evaluate library versions, gate releases and run the fleet.

    Connection settings come from FLEET_EVAL_* environment variables (see README); arguments say
    what to do. Exit codes: 2 configuration error, 3 data error, 75 transient (retry).
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.ensure_object(Runtime)


def _register_groups() -> None:
    # Imported here, not at module top, so each command module can import `cli`'s helpers without a cycle.
    from eval_runner.commands import COMMANDS

    for command in COMMANDS:
        cli.add_command(command)


_register_groups()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn our errors into the exit codes Argo's retryStrategy relies on."""
    try:
        cli.main(args=argv, prog_name="eval-runner", standalone_mode=False)
    except FleetEvalError as error:
        click.echo(f"error: {error}", err=True)
        return int(error.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as error:
        error.show()
        return int(ExitCode.CONFIG)
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    return int(ExitCode.OK)


def run() -> NoReturn:
    """The console script: main()'s exit code, with nothing between it and the process's end.

    The normal interpreter shutdown tears down native thread pools (pyarrow, polars) while their threads
    may still run; now and then that aborts with "terminate called without an active exception" and the
    process exits -6 (SIGABRT) after printing the right error, which breaks the exit-code contract Argo's
    retryStrategy reads. Every run has finished its work when main() returns (runs closed, objects
    written, nothing left in atexit that matters), so the process flushes what it printed and logged, and
    leaves with os._exit.
    """
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe must not turn the exit code into another one
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
