"""Settings and adapters for one invocation, built lazily: the only place that reads the environment.

Command modules take a ``Runtime`` through ``@pass_runtime``; it lives apart from cli.py so that
command modules can import it without an import cycle through the command registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import click
from pydantic import ValidationError

from eval_runner.errors import ConfigError
from eval_runner.settings import MlflowSettings, PackageIndexSettings, PostgresSettings, S3Settings, ShardSettings

if TYPE_CHECKING:
    # Adapters are imported when first built: importing mlflow alone costs ~3 s of CPU, paid by every
    # pod (fleet shards above all) whether or not its step tracks anything.
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
        from eval_runner.storage import S3ObjectStore

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
        from eval_runner.tracking import MlflowTracker

        return self._once("tracker", lambda: MlflowTracker.from_settings(self.mlflow_settings()))

    def index_settings(self) -> PackageIndexSettings:
        """Where the private package index is."""
        return self._once("index", lambda: load_settings(PackageIndexSettings, "INDEX"))


pass_runtime = click.make_pass_decorator(Runtime, ensure=True)
