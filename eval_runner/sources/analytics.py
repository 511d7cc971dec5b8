"""Bulk reader of the analytics database (sensor_logs, valve_movements) into polars frames.

Rows travel with ``COPY (SELECT ...) TO STDOUT`` as CSV and are parsed by polars in one go: a month of
a large fleet is millions of rows, which row-by-row fetching would turn into minutes of Python.
Timestamps travel as epoch microseconds so no time-zone or text-format setting can change them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Protocol

import polars as pl
import psycopg

from eval_runner.errors import ConfigError, DataError, TransientError
from eval_runner.exits import wrap
from eval_runner.settings import PostgresSettings

SENSOR_LOG_SCHEMA: dict[str, pl.DataType] = {
    "device_id": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "battery_mv": pl.Int32(),
    "temperature_c": pl.Float32(),
    "radio_tx": pl.Int32(),
    "radio_rx": pl.Int32(),
    "rssi_dbm": pl.Int16(),
    "valve_travel_total": pl.Float32(),
}
VALVE_MOVEMENT_SCHEMA: dict[str, pl.DataType] = {
    "device_id": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "travel_pct": pl.Float32(),
    "motor_ms": pl.Int32(),
}


class AnalyticsSource(Protocol):
    """What steps need from the analytics database."""

    @property
    def location(self) -> str:
        """Where the rows come from, for lineage (no credentials)."""
        ...

    def sensor_logs(self, start: datetime, end: datetime, device_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Hourly sensor rows with ``start <= ts < end`` (SENSOR_LOG_SCHEMA), sorted by device_id, ts."""
        ...

    def valve_movements(self, start: datetime, end: datetime, device_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Valve movements with ``start <= ts < end`` (VALVE_MOVEMENT_SCHEMA), sorted by device_id, ts."""
        ...


# Constant texts: filter values are bound as parameters in _copy. extract(epoch) is numeric (exact)
# since PostgreSQL 14, so ts travels as exact epoch microseconds.
_QUERIES = {
    "sensor_logs": (
        "SELECT device_id, (extract(epoch from ts) * 1000000)::bigint, battery_mv, temperature_c, "
        "radio_tx, radio_rx, rssi_dbm, valve_travel_total FROM sensor_logs"
    ),
    "valve_movements": (
        "SELECT device_id, (extract(epoch from ts) * 1000000)::bigint, travel_pct, motor_ms FROM valve_movements"
    ),
}


class PostgresAnalytics:
    """AnalyticsSource on PostgreSQL; takes an open connection (see ``connect``)."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    @classmethod
    @contextmanager
    def connect(cls, settings: PostgresSettings) -> Iterator[PostgresAnalytics]:
        """Open a read-only connection for the duration of a ``with`` block."""
        try:
            connection = psycopg.connect(settings.dsn.get_secret_value(), connect_timeout=10)
        except psycopg.OperationalError as error:
            # A refused login is a ConfigError (exit 2), a server that is down a TransientError: the table.
            raise wrap("analytics database: connecting", error) from error
        try:
            connection.read_only = True
            yield cls(connection)
        finally:
            connection.close()

    @property
    def location(self) -> str:
        """Where the rows come from, for lineage; never the password."""
        info = self._connection.info
        return f"postgresql://{info.host}:{info.port}/{info.dbname}"

    def sensor_logs(self, start: datetime, end: datetime, device_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Hourly sensor rows with ``start <= ts < end`` (SENSOR_LOG_SCHEMA), sorted by device_id, ts."""
        return self._copy("sensor_logs", SENSOR_LOG_SCHEMA, start, end, device_ids)

    def valve_movements(self, start: datetime, end: datetime, device_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Valve movements with ``start <= ts < end`` (VALVE_MOVEMENT_SCHEMA), sorted by device_id, ts."""
        return self._copy("valve_movements", VALVE_MOVEMENT_SCHEMA, start, end, device_ids)

    def _copy(
        self,
        table: str,
        schema: dict[str, pl.DataType],
        start: datetime,
        end: datetime,
        device_ids: Sequence[str] | None,
    ) -> pl.DataFrame:
        if start.tzinfo is None or end.tzinfo is None:
            raise ConfigError(f"{table}: start and end must be time-zone aware (got {start!r}, {end!r})")
        where = "ts >= %s AND ts < %s"
        params: list[object] = [start, end]
        if device_ids is not None:
            where += " AND device_id = ANY(%s)"
            params.append(list(device_ids))
        # The query is assembled from the constants above only; values are bound parameters.
        query = f"COPY ({_QUERIES[table]} WHERE {where} ORDER BY device_id, ts) TO STDOUT WITH (FORMAT csv)"
        buffer = io.BytesIO()
        try:
            with self._connection.cursor() as cursor, cursor.copy(query, params) as copy:
                for chunk in copy:
                    buffer.write(chunk)
            self._connection.rollback()  # end the read-only transaction; nothing was written
        except psycopg.errors.UndefinedTable as error:
            raise DataError(f"analytics database: table {table!r} does not exist") from error
        except psycopg.OperationalError as error:
            raise TransientError(f"analytics database: reading {table}: {_first_line(error)}") from error
        except psycopg.Error as error:
            raise DataError(f"analytics database: reading {table}: {_first_line(error)}") from error
        return _parse_csv(buffer.getvalue(), schema, table)


def _parse_csv(data: bytes, schema: dict[str, pl.DataType], table: str) -> pl.DataFrame:
    """Parse COPY's CSV (ts as epoch microseconds) into ``schema``."""
    wire = {name: (pl.Int64() if name == "ts" else dtype) for name, dtype in schema.items()}
    if not data:
        return pl.DataFrame(schema=schema)
    try:
        frame = pl.read_csv(io.BytesIO(data), has_header=False, schema=wire)
    except pl.exceptions.PolarsError as error:
        raise DataError(f"analytics database: {table} rows do not match the contract: {error}") from error
    return frame.with_columns(pl.from_epoch("ts", time_unit="us").dt.replace_time_zone("UTC"))


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
