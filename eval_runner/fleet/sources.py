"""The live FleetSource: devices, versions and battery parameters from the shards, series from Postgres.

It wraps the shard client and the analytics reader (the adapters); it adds no HTTP or SQL of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import polars as pl

from eval_runner.contracts import VersionEvent
from eval_runner.fleet.snapshot import DEVICE_COLUMNS, DEVICE_SERIES_COLUMNS
from eval_runner.settings import ShardSettings
from eval_runner.sources.analytics import AnalyticsSource
from eval_runner.sources.shards import ShardClient

T = TypeVar("T")


def latest_versions(events: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """Per device the hardware revision and firmware in effect at ``as_of`` (pure).

    ``events`` has device_id, effective_at, component, version (VersionEvent). An event takes effect
    at effective_at, so one at exactly ``as_of`` is not yet in effect (the simulator's rule too).
    """
    latest = (
        events.filter(pl.col("effective_at") < as_of)
        .sort("effective_at")
        .group_by(["device_id", "component"])
        .agg(pl.col("version").last())
    )
    out = events.select("device_id").unique()
    for component, name in (("hardware", "hardware_revision"), ("firmware", "firmware_version_at_as_of")):
        picked = latest.filter(pl.col("component") == component).select("device_id", pl.col("version").alias(name))
        out = out.join(picked, on="device_id", how="left")
    return out


def events_frame(events: Sequence[VersionEvent]) -> pl.DataFrame:
    """VersionEvent records as a frame for ``latest_versions``."""
    return pl.DataFrame(
        [(e.device_id, e.effective_at, e.component, e.version) for e in events],
        schema={
            "device_id": pl.String(),
            "effective_at": pl.Datetime("us", "UTC"),
            "component": pl.String(),
            "version": pl.String(),
        },
        orient="row",
    )


def hourly_series(sensor: pl.DataFrame, valves: pl.DataFrame) -> pl.DataFrame:
    """Sensor rows with the hour's valve travel and motor time summed in (DEVICE_SERIES_COLUMNS, pure)."""
    per_hour = (
        valves.with_columns(pl.col("ts").dt.truncate("1h"))
        .group_by(["device_id", "ts"])
        .agg(pl.col("travel_pct").sum().alias("valve_travel_pct"), pl.col("motor_ms").sum())
    )
    return (
        sensor.with_columns(pl.col("ts").dt.truncate("1h"))
        .join(per_hour, on=["device_id", "ts"], how="left")
        .with_columns(pl.col("valve_travel_pct").fill_null(0.0), pl.col("motor_ms").fill_null(0))
        .select(pl.col(name).cast(dtype) for name, dtype in DEVICE_SERIES_COLUMNS.items())
    )


class LiveFleetSource:
    """FleetSource over the real (or simulated) shards and analytics database.

    The shard client is async; this source owns one event loop for its lifetime so the client's
    connections survive between calls. Use as a context manager.
    """

    def __init__(self, shard_settings: ShardSettings, analytics: AnalyticsSource) -> None:
        self._loop = asyncio.new_event_loop()
        self._shards = ShardClient.from_settings(shard_settings)
        self._analytics = analytics
        self._versions: dict[datetime, pl.DataFrame] = {}

    def __enter__(self) -> LiveFleetSource:
        return self

    def __exit__(self, *_: object) -> None:
        self._run(self._shards.aclose)
        self._loop.close()

    def _run(self, work: Callable[[], Awaitable[T]]) -> T:
        # The awaitable is created inside the loop: gather() outside it would bind to another loop.
        async def wrapped() -> T:
            return await work()

        return self._loop.run_until_complete(wrapped())

    def device_ids(self) -> list[str]:
        """Return every device id of every shard."""
        shards = range(self._shards.n_shards)
        pages = self._run(lambda: asyncio.gather(*(self._shards.devices(s) for s in shards)))
        return [record.device_id for page in pages for record in page]

    def _version_table(self, as_of: datetime) -> pl.DataFrame:
        if as_of not in self._versions:
            # `to` is an exclusive date: ask for the whole day of as_of and cut at as_of here.
            end = (as_of + timedelta(days=1)).date()
            shards = range(self._shards.n_shards)
            pages = self._run(lambda: asyncio.gather(*(self._shards.version_history(s, end) for s in shards)))
            self._versions[as_of] = latest_versions(events_frame([e for page in pages for e in page]), as_of)
        return self._versions[as_of]

    def devices(self, device_ids: Sequence[str], as_of: datetime) -> pl.DataFrame:
        """Return DEVICE_COLUMNS of ``device_ids``: versions at ``as_of``, current battery parameters."""
        got = self._run(lambda: asyncio.gather(*(self._shards.get_battery_parameters(d) for d in device_ids)))
        parameters = pl.DataFrame(
            [
                (
                    v.parameters.device_id,
                    v.parameters.chemistry,
                    v.parameters.nominal_capacity_mah,
                    v.parameters.cutoff_mv,
                    v.parameters.installed_at,
                )
                for v in got
            ],
            schema={
                "device_id": pl.String(),
                "battery_chemistry": pl.String(),
                "nominal_capacity_mah": pl.Float64(),
                "cutoff_mv": pl.Int32(),
                "battery_installed_at": pl.Datetime("us", "UTC"),
            },
            orient="row",
        )
        return parameters.join(self._version_table(as_of), on="device_id", how="left").select(list(DEVICE_COLUMNS))

    def series(self, device_ids: Sequence[str], start: datetime, end: datetime) -> pl.DataFrame:
        """Return hourly DEVICE_SERIES_COLUMNS of ``device_ids`` with ``start <= ts < end``."""
        sensor = self._analytics.sensor_logs(start, end, device_ids)
        valves = self._analytics.valve_movements(start, end, device_ids)
        return hourly_series(sensor, valves)
