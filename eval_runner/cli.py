"""The eval-runner command line: parse arguments, build settings and adapters once, run one step.

Every command group lives in ``eval_runner.commands.<group>`` and receives a ``Runtime``
(eval_runner.runtime) that builds settings and adapters lazily, so a command that needs no S3 never
asks for S3 settings. A command's module is imported only when that command runs: every pod starts
one eval-runner, and importing all of them (polars, pyarrow, dulwich, httpx, matplotlib) cost seconds
of CPU that most steps never use.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from typing import NoReturn

import click

from eval_runner import __version__
from eval_runner.errors import ExitCode, FleetEvalError
from eval_runner.exits import classify
from eval_runner.runtime import Runtime, load_settings, pass_runtime

__all__ = ["Runtime", "cli", "load_settings", "main", "pass_runtime", "run"]  # Runtime re-exported for commands


# Every top-level command: its module, the attribute there, and its one-line help (here, so that
# `eval-runner --help` imports nothing). tests/unit/core/test_settings_and_cli.py checks both against the
# commands themselves.
COMMAND_TABLE: dict[str, tuple[str, str, str]] = {
    "champion": (
        "eval_runner.commands.evaluation",
        "champion_group",
        "The champion of record (capacity/champion/ in S3), which MLflow's alias mirrors.",
    ),
    "compare": (
        "eval_runner.commands.evaluation",
        "compare",
        "Compare evaluated versions: leaderboard, per-segment table, error CDFs, logged as one MLflow run.",
    ),
    "dataset": (
        "eval_runner.commands.dataset",
        "group",
        "Build monthly evaluation datasets from the field sources (extract, validate, publish).",
    ),
    "evaluate": (
        "eval_runner.commands.evaluation",
        "evaluate",
        "Evaluate the battery-lib installed here on the approved samples of a month's current review.",
    ),
    "evaluations": ("eval_runner.commands.evaluation", "evaluations", "Inspect published evaluations."),
    "fleet": (
        "eval_runner.commands.fleet",
        "group",
        "Run a library version on every device: snapshot, plan, shard, merge, or all locally.",
    ),
    "gate": (
        "eval_runner.commands.evaluation",
        "gate",
        "Judge a candidate against the baseline under a policy; write decision.json; promote on a pass.",
    ),
    "review": (
        "eval_runner.commands.review",
        "group",
        "Validate review manifests and serve the review UI for domain experts.",
    ),
    "versions": (
        "eval_runner.commands.versions",
        "group",
        "Resolve version labels (0.9.0, v0.9.0, latest, git:<ref>) to library versions and image tags.",
    ),
}


class LazyCommands(click.Group):
    """A group whose commands are imported from COMMAND_TABLE when they are invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, sorted."""
        return sorted(COMMAND_TABLE)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import the command's module now; None for a name that is no command (click reports it)."""
        entry = COMMAND_TABLE.get(cmd_name)
        if entry is None:
            return None
        module, attribute, _ = entry
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module}.{attribute} is not a click command (eval_runner.cli.COMMAND_TABLE)")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of --help, from the table: nothing is imported to print it."""
        limit = formatter.width - 6 - max(len(name) for name in COMMAND_TABLE)
        # A bare Command of the same help gives click's own shortening without importing the real one.
        rows = [
            (name, click.Command(name, help=text).get_short_help_str(limit))
            for name, (_, _, text) in COMMAND_TABLE.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=LazyCommands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
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
        # A closed pipe must not turn the exit code into another one.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
