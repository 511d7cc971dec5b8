"""Bulk reader of the analytics database (sensor_logs, valve_movements) into polars frames.

A month of a large fleet is tens of millions of rows, so no row travels on its own: the database groups
them per device, each group one text value of CSV lines (``string_agg``), and polars parses all groups
of a call in one go. (``COPY ... TO STDOUT`` sends one message per row, and handling the messages one by
one in Python was most of a fleet snapshot's time.) Groups stream through a server-side cursor, so a
call holds its CSV once. Timestamps travel as epoch microseconds so no time-zone or text-format setting
can change them; every other value is its type's own text output, as COPY would send it.
"""

from __future__ import annotations

import io
import queue
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
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


def _grouped(table: str, columns: Sequence[str]) -> str:
    # concat() writes NULL as nothing, which is how CSV says null; device_id goes once per group, so no
    # value in a line is text that CSV would have to quote. The lines of a group come in no set order
    # (an ORDER BY in the aggregate is a sort per group in the server, the snapshot's busiest process):
    # _parse_groups orders them by ts.
    line = ", ',', ".join(columns)
    # Built from this module's constant names only, never from input.
    return f"SELECT device_id, count(*), string_agg(concat({line}), E'\\n') FROM {table}"  # noqa: S608


# Constant texts: filter values are bound as parameters in _read. ts travels as epoch microseconds:
# date_part is a double (extract's numeric costs the server about a fifth more per row); its error stays
# under half a microsecond for any ts before 2106, so round() gives the exact microsecond (checked against
# extract on 6 million random timestamps from 1900 to 2106).
_EPOCH_US = "round(date_part('epoch', ts) * 1000000)::bigint"
_QUERIES = {
    "sensor_logs": _grouped(
        "sensor_logs",
        [_EPOCH_US, "battery_mv", "temperature_c", "radio_tx", "radio_rx", "rssi_dbm", "valve_travel_total"],
    ),
    "valve_movements": _grouped("valve_movements", [_EPOCH_US, "travel_pct", "motor_ms"]),
}
# Groups per round trip of the server-side cursor: a few MB of CSV.
_GROUPS_PER_FETCH = 500
_WORK_MEM = "64MB"


class PostgresAnalytics:
    """AnalyticsSource on PostgreSQL; takes open connections (see ``connect``).

    Each read holds one connection for its duration, so up to ``len(connections)`` threads read at once,
    each query in its own server process (the fleet snapshot reads batches ahead this way).
    """

    def __init__(self, connections: Sequence[psycopg.Connection[Any]]) -> None:
        if not connections:
            raise ConfigError("analytics database: at least one connection is needed")
        self._first = connections[0]
        self._idle: queue.SimpleQueue[psycopg.Connection[Any]] = queue.SimpleQueue()
        for connection in connections:
            self._idle.put(connection)

    @classmethod
    @contextmanager
    def connect(cls, settings: PostgresSettings, *, connections: int = 1) -> Iterator[PostgresAnalytics]:
        """Open ``connections`` read-only connections for the duration of a ``with`` block."""
        opened: list[psycopg.Connection[Any]] = []
        try:
            for _ in range(connections):
                try:
                    connection = psycopg.connect(settings.dsn.get_secret_value(), connect_timeout=10)
                except psycopg.OperationalError as error:
                    # A refused login is a ConfigError (exit 2), a server that is down a TransientError.
                    raise wrap("analytics database: connecting", error) from error
                opened.append(connection)
                connection.read_only = True
            yield cls(opened)
        finally:
            for connection in opened:
                connection.close()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Lend an idle connection for one read; it comes back with its read-only transaction ended."""
        connection = self._idle.get()  # waits while every connection is reading
        try:
            yield connection
        finally:
            with suppress(psycopg.Error):  # a broken connection fails the next read, not this one
                connection.rollback()  # nothing was written; an aborted transaction must not be lent again
            self._idle.put(connection)

    @property
    def location(self) -> str:
        """Where the rows come from, for lineage; never the password."""
        info = self._first.info
        return f"postgresql://{info.host}:{info.port}/{info.dbname}"

    def sensor_logs(self, start: datetime, end: datetime, device_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Hourly sensor rows with ``start <= ts < end`` (SENSOR_LOG_SCHEMA), sorted by device_id, ts."""
        return self._read("sensor_logs", SENSOR_LOG_SCHEMA, start, end, device_ids)

    def valve_movements(self, start: datetime, end: datetime, device_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Valve movements with ``start <= ts < end`` (VALVE_MOVEMENT_SCHEMA), sorted by device_id, ts."""
        return self._read("valve_movements", VALVE_MOVEMENT_SCHEMA, start, end, device_ids)

    def _read(
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
        query = f"{_QUERIES[table]} WHERE {where} GROUP BY device_id ORDER BY device_id"
        devices: list[str] = []
        counts: list[int] = []
        buffer = io.BytesIO()
        try:
            with self._connection() as connection, connection.cursor(name=f"read_{table}") as cursor:
                # A batch's rows are sorted by device in memory; at the 4 MB default the sort spills to disk.
                connection.execute(f"SET LOCAL work_mem = '{_WORK_MEM}'")
                cursor.itersize = _GROUPS_PER_FETCH
                cursor.execute(query, params)
                for device_id, count, lines in cursor:
                    devices.append(device_id)
                    counts.append(count)
                    buffer.write(lines.encode())
                    buffer.write(b"\n")
        except psycopg.errors.UndefinedTable as error:
            raise DataError(f"analytics database: table {table!r} does not exist") from error
        except psycopg.OperationalError as error:
            raise TransientError(f"analytics database: reading {table}: {_first_line(error)}") from error
        except psycopg.Error as error:
            raise DataError(f"analytics database: reading {table}: {_first_line(error)}") from error
        return _parse_groups(devices, counts, buffer.getvalue(), schema, table)


def _parse_groups(
    devices: Sequence[str], counts: Sequence[int], data: bytes, schema: dict[str, pl.DataType], table: str
) -> pl.DataFrame:
    """Parse the groups' CSV lines (every column but device_id; ts as epoch microseconds) into ``schema``.

    ``counts[i]`` lines belong to ``devices[i]``, in order.
    """
    wire = {name: (pl.Int64() if name == "ts" else dtype) for name, dtype in schema.items() if name != "device_id"}
    if not data:
        return pl.DataFrame(schema=schema)
    try:
        frame = pl.read_csv(io.BytesIO(data), has_header=False, schema=wire)
    except pl.exceptions.PolarsError as error:
        raise DataError(f"analytics database: {table} rows do not match the contract: {error}") from error
    if frame.height != sum(counts):
        raise DataError(f"analytics database: {table}: {frame.height} rows parsed, the database counted {sum(counts)}")
    owners = (
        pl.DataFrame({"device_id": devices, "lines": counts}, schema={"device_id": pl.String(), "lines": pl.Int64()})
        .with_row_index("group")
        .select(pl.col("group").repeat_by("lines"), pl.col("device_id").repeat_by("lines"))
        .explode("group", "device_id")
    )
    return (
        pl.concat([owners, frame], how="horizontal")
        .sort("group", "ts")  # groups stay in the database's device order; lines within a group by time
        .with_columns(pl.from_epoch("ts", time_unit="us").dt.replace_time_zone("UTC"))
        .select(list(schema))
    )


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
