"""A throwaway PostgreSQL cluster on loopback (initdb + pg_ctl from Debian's postgresql package)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.services.process import ManagedProcess, ServiceError, free_port, port_open, require_binary

_INSTALL = "apt-get install -y postgresql  (make setup does this)"


def _pg_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    if found:
        return found[0].parent
    return Path(require_binary(["postgres"], install_hint=_INSTALL)).parent


def _as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root; as root we run it as the package's `postgres` user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as error:
        raise ServiceError(f"running as root needs the 'postgres' user; {_INSTALL}") from error
    return [require_binary(["runuser"], install_hint="apt-get install -y util-linux"), "-u", "postgres", "--"]


@dataclass
class PostgresServer:
    """A running cluster; ``new_database()`` gives each test its own database."""

    process: ManagedProcess
    port: int
    root: Path
    home: Path  # where the cluster's files are (differs from root when run as the postgres user)

    def dsn(self, database: str = "postgres") -> str:
        """The libpq URL for ``database`` as the superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create a fresh empty database and return its DSN."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        """Shut down and delete the cluster's files."""
        self.process.stop()
        shutil.rmtree(self.home, ignore_errors=True)


def start_postgres(root: Path, *, port: int | None = None) -> PostgresServer:
    """Create a cluster with initdb under ``root`` and run it on a free loopback port with trust auth."""
    bindir = _pg_bindir()
    port = port or free_port()
    runas = _as_postgres_user()
    root.mkdir(parents=True, exist_ok=True)
    # The postgres user must reach its data directory, but pytest's and mkdtemp's folders are private to
    # root; so as root the cluster lives in its own folder owned by postgres, linked from ``root``.
    home = Path(tempfile.mkdtemp(prefix="fleet-eval-pg-")) if runas else root
    data, sockets = home / "pgdata", home / "sockets"
    data.mkdir(parents=True)
    sockets.mkdir(parents=True)
    if runas:
        for path in (home, data, sockets):
            shutil.chown(path, "postgres", "postgres")
        home.chmod(0o755)
        (root / "pgdata").symlink_to(data)
    initdb = subprocess.run(
        [*runas, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        capture_output=True,
        text=True,
        check=False,
    )
    if initdb.returncode != 0:
        raise ServiceError(f"initdb failed in {data}:\n{initdb.stdout}\n{initdb.stderr}")
    process = ManagedProcess(
        name="postgres",
        argv=[
            *runas,
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(sockets),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "synchronous_commit=off",
        ],
        log_path=root / "postgres.log",
    ).start()
    # fsync=off: a test database is thrown away, and durability costs seconds per test on slow disks.
    process.wait_until(lambda: port_open(port), timeout=60)
    server = PostgresServer(process=process, port=port, root=root, home=home)
    process.wait_until(lambda: _accepts_queries(server), timeout=30)
    return server


def _accepts_queries(server: PostgresServer) -> bool:
    try:
        with psycopg.connect(server.dsn(), connect_timeout=2) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False
