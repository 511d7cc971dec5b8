"""The eval-runner command line: parse arguments, build settings and adapters once, run one step.

This is the only module that reads the environment. Every command group lives in
``eval_runner.commands.<group>`` and receives a ``Runtime`` that builds adapters lazily, so a command
that needs no S3 never asks for S3 settings.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import click
from pydantic import ValidationError

from eval_runner import __version__
from eval_runner.errors import ConfigError, ExitCode, FleetEvalError
from eval_runner.settings import MlflowSettings, PackageIndexSettings, PostgresSettings, S3Settings, ShardSettings
from eval_runner.storage import S3ObjectStore
from eval_runner.tracking import MlflowTracker

S = TypeVar("S")


def load_settings(factory: Callable[[], S], section: str) -> S:
    """Build one settings section from the environment; a missing or bad variable is a ConfigError."""
    try:
        return factory()
    except ValidationError as error:
        problems = "; ".join(
            f"FLEET_EVAL_{section}_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"{section.lower()} settings are incomplete: {problems}") from error


@dataclass
class Runtime:
    """Settings and adapters for one invocation, built on first use and then reused."""

    _cache: dict[str, object] = field(default_factory=dict)

    def _once(self, name: str, build: Callable[[], S]) -> S:
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]  # type: ignore[return-value]  # the name keys one type

    def s3_settings(self) -> S3Settings:
        """Where the object store is."""
        return self._once("s3_settings", lambda: load_settings(S3Settings, "S3"))

    def store(self) -> S3ObjectStore:
        """The object store adapter."""
        return self._once("store", lambda: S3ObjectStore.from_settings(self.s3_settings()))

    def postgres_settings(self) -> PostgresSettings:
        """Where the analytics database is."""
        return self._once("pg", lambda: load_settings(PostgresSettings, "POSTGRES"))

    def shard_settings(self) -> ShardSettings:
        """Where the API shards are."""
        return self._once("shards", lambda: load_settings(ShardSettings, "SHARDS"))

    def mlflow_settings(self) -> MlflowSettings:
        """Where the tracking server is."""
        return self._once("mlflow", lambda: load_settings(MlflowSettings, "MLFLOW"))

    def tracker(self) -> MlflowTracker:
        """The experiment-tracking adapter."""
        return self._once("tracker", lambda: MlflowTracker.from_settings(self.mlflow_settings()))

    def index_settings(self) -> PackageIndexSettings:
        """Where the private package index is."""
        return self._once("index", lambda: load_settings(PackageIndexSettings, "INDEX"))


pass_runtime = click.make_pass_decorator(Runtime, ensure=True)


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


if __name__ == "__main__":
    raise SystemExit(main())
