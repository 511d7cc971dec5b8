"""Exit codes of real failures of the real servers: a refused login is not retried, a down server is."""

from __future__ import annotations

import pytest

from eval_runner.errors import ConfigError, TransientError
from eval_runner.settings import PostgresSettings
from eval_runner.sources.analytics import PostgresAnalytics
from tests.services.postgres import PostgresServer
from tests.services.process import free_port


def _connect(dsn: str) -> None:
    with PostgresAnalytics.connect(PostgresSettings(dsn=dsn)):
        pass


@pytest.mark.parametrize(
    ("user", "database"), [("nobody", "postgres"), ("postgres", "no_such_db")], ids=["unknown-role", "unknown-database"]
)
def test_a_refused_login_is_a_config_error(postgres_server: PostgresServer, user: str, database: str) -> None:
    # PostgreSQL answers a wrong password the same way (FATAL before any SQLSTATE); it was exit 75, retried.
    with pytest.raises(ConfigError, match="analytics database: connecting: OperationalError"):
        _connect(f"postgresql://{user}@127.0.0.1:{postgres_server.port}/{database}")


def test_a_database_that_is_down_is_transient() -> None:
    with pytest.raises(TransientError, match="analytics database: connecting"):
        _connect(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres?connect_timeout=2")
