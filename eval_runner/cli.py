"""The eval-runner command line: parse arguments, build settings and adapters once, run one step.

Every command group lives in ``eval_runner.commands.<group>`` and receives a ``Runtime``
(eval_runner.runtime) that builds settings and adapters lazily, so a command that needs no S3 never
asks for S3 settings.
"""

from __future__ import annotations

import logging
import sys

import click

from eval_runner import __version__
from eval_runner.errors import ExitCode, FleetEvalError
from eval_runner.exits import classify
from eval_runner.runtime import Runtime, load_settings, pass_runtime

__all__ = ["Runtime", "cli", "load_settings", "main", "pass_runtime"]  # Runtime re-exported for commands


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="eval-runner")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Build datasets, evaluate library versions, gate releases and run the fleet.

    Connection settings come from FLEET_EVAL_* environment variables (see README); arguments say
    what to do. Exit codes: 2 configuration error, 3 data error, 75 transient (retry), 70 a bug.
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
    except Exception as error:  # the last line: every escaped exception gets its code from the one table
        code = classify(error)
        if code == ExitCode.SOFTWARE:
            logging.getLogger("eval_runner").exception("unexpected error (exit 70, not retried)")
        click.echo(f"error: {type(error).__module__}.{type(error).__name__}: {error}", err=True)
        return int(code)
    return int(ExitCode.OK)


if __name__ == "__main__":
    raise SystemExit(main())
