"""The source adapters against the real thing: PostgreSQL loaded by fieldsim and the five shards."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import polars as pl
import psycopg
import pytest
from fieldsim.shards import Faults
from polars.testing import assert_frame_equal

from eval_runner.contracts import shard_of
from eval_runner.errors import DataError, TransientError
from eval_runner.settings import PostgresSettings, ShardSettings
from eval_runner.sources.analytics import SENSOR_LOG_SCHEMA, VALVE_MOVEMENT_SCHEMA, PostgresAnalytics
from eval_runner.sources.shards import RetryPolicy, ShardClient, StaleETagError
from tests.fixtures.fieldsim import FieldSources

START, END = datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 8, tzinfo=UTC)


def _expected(frame: pl.DataFrame, schema: dict[str, pl.DataType], devices: list[str] | None = None) -> pl.DataFrame:
    rows = frame.filter((pl.col("ts") >= START) & (pl.col("ts") < END))
    if devices is not None:
        rows = rows.filter(pl.col("device_id").is_in(devices))
    return rows.select([pl.col(c).cast(t) for c, t in schema.items()]).sort("device_id", "ts")


def test_analytics_reads_exactly_the_rows_in_the_window(fieldsim_sources: FieldSources) -> None:
    fleet = fieldsim_sources.fleet
    with PostgresAnalytics.connect(PostgresSettings(dsn=fieldsim_sources.postgres_dsn)) as analytics:
        assert_frame_equal(analytics.sensor_logs(START, END), _expected(fleet.sensor_logs, SENSOR_LOG_SCHEMA))
        assert_frame_equal(
            analytics.valve_movements(START, END), _expected(fleet.valve_movements, VALVE_MOVEMENT_SCHEMA)
        )
        some = ["dev-000003", "dev-000042"]
        assert_frame_equal(
            analytics.sensor_logs(START, END, some), _expected(fleet.sensor_logs, SENSOR_LOG_SCHEMA, some)
        )
        assert analytics.location.startswith("postgresql://")
        assert "password" not in analytics.location


def test_analytics_reads_from_several_threads_at_once_each_get_their_own_rows(fieldsim_sources: FieldSources) -> None:
    fleet = fieldsim_sources.fleet
    groups = [[f"dev-{i:06d}" for i in range(start, 60, 4)] for start in range(4)]
    settings = PostgresSettings(dsn=fieldsim_sources.postgres_dsn)
    with PostgresAnalytics.connect(settings, connections=2) as analytics, ThreadPoolExecutor(max_workers=4) as pool:
        read = list(pool.map(lambda devices: analytics.sensor_logs(START, END, devices), groups * 3))
    for devices, frame in zip(groups * 3, read, strict=True):
        assert_frame_equal(frame, _expected(fleet.sensor_logs, SENSOR_LOG_SCHEMA, devices))


def test_a_read_the_server_refuses_leaves_its_connection_fit_for_the_next_read(postgres_dsn: str) -> None:
    # An empty database: the query fails in the server and aborts the connection's transaction. Lent again
    # unrolled back, the second read would fail with "current transaction is aborted" instead.
    with PostgresAnalytics.connect(PostgresSettings(dsn=postgres_dsn), connections=1) as analytics:
        for _ in range(2):
            with pytest.raises(DataError, match="table 'sensor_logs' does not exist"):
                analytics.sensor_logs(START, END)


def test_timestamps_travel_to_the_microsecond_and_each_devices_rows_come_in_time_order(
    fieldsim_sources: FieldSources,
) -> None:
    # Inserted last, so the table holds this device's rows out of time order; ts travels as epoch
    # microseconds through a double, which must not move an odd microsecond.
    odd = datetime(2026, 4, 3, 12, 34, 56, 789123, tzinfo=UTC)
    with psycopg.connect(fieldsim_sources.postgres_dsn) as connection:
        connection.execute(
            "INSERT INTO sensor_logs (device_id, ts, battery_mv, temperature_c, radio_tx, radio_rx, rssi_dbm,"
            " valve_travel_total) VALUES ('dev-000003', %s, 2900, 20.5, 1, 2, -70, 1.5)",
            [odd],
        )
    with PostgresAnalytics.connect(PostgresSettings(dsn=fieldsim_sources.postgres_dsn)) as analytics:
        rows = analytics.sensor_logs(START, END, ["dev-000003", "dev-000004"])
    assert odd in rows.filter(pl.col("device_id") == "dev-000003")["ts"].to_list()
    assert rows["device_id"].is_sorted()
    assert all(frame["ts"].is_sorted() for frame in rows.partition_by("device_id"))


def test_unreachable_database_is_transient() -> None:
    settings = PostgresSettings(dsn="postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    with pytest.raises(TransientError, match="analytics database: connecting"), PostgresAnalytics.connect(settings):
        pass


def test_battery_parameters_put_is_idempotent_and_guarded_by_etag(fieldsim_sources: FieldSources) -> None:
    device = "dev-000007"
    shard = shard_of(device)

    async def run() -> None:
        settings = ShardSettings(urls=fieldsim_sources.shard_urls)
        async with ShardClient.from_settings(settings) as client:
            current = await client.get_battery_parameters(device)
            wanted = current.parameters.model_copy(update={"nominal_capacity_mah": 2500.0})
            first = await client.put_battery_parameters(wanted, if_match=current.etag, idempotency_key="k-1")
            again = await client.put_battery_parameters(wanted, if_match=current.etag, idempotency_key="k-1")
            assert again.etag == first.etag
            assert (await client.get_battery_parameters(device)).parameters.nominal_capacity_mah == 2500.0
            with pytest.raises(StaleETagError):
                await client.put_battery_parameters(wanted, if_match=current.etag, idempotency_key="k-2")
            with pytest.raises(DataError, match="not found"):
                await client.get_battery_parameters("dev-999999")

    asyncio.run(run())
    assert fieldsim_sources.puts_applied(shard) == 1


def test_a_shard_that_stays_down_is_transient(fieldsim_sources: FieldSources) -> None:
    fieldsim_sources.set_faults(0, Faults(error_rate=1.0))

    async def run() -> None:
        settings = ShardSettings(urls=fieldsim_sources.shard_urls)
        async with ShardClient.from_settings(settings, policy=RetryPolicy(attempts=3, first_delay=0.01)) as client:
            await client.devices(0)

    with pytest.raises(TransientError, match="shard 0 GET /v1/devices: answered 503; gave up after 3 attempts"):
        asyncio.run(run())
