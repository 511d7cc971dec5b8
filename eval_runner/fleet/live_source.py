"""The live FleetSource: version history and battery parameters from the shards, series from Postgres.

It wraps the shard client and the analytics reader (the adapters); it adds no HTTP or SQL of its own, and
no rule: it returns raw rows, and the snapshot builds the library's input from them like the dataset does.
The shards are read through their list endpoints once per snapshot, all five concurrently (a page is one
request for up to a thousand records; one request per device was what made the snapshot slow), and each
batch takes its devices' rows from those frames.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import polars as pl

from eval_runner.contracts import BatteryParameters, VersionEvent
from eval_runner.library.inputs import BATTERY_PARAMETER_SCHEMA, VERSION_EVENT_SCHEMA, DeviceSources
from eval_runner.settings import ShardSettings
from eval_runner.sources.analytics import AnalyticsSource
from eval_runner.sources.shards import ShardClient

T = TypeVar("T")


def events_frame(events: Sequence[VersionEvent]) -> pl.DataFrame:
    """VersionEvent records as a frame (VERSION_EVENT_SCHEMA)."""
    return pl.DataFrame(
        [(e.device_id, e.effective_at, e.component, e.version) for e in events],
        schema=VERSION_EVENT_SCHEMA,
        orient="row",
    )


def parameters_frame(parameters: Sequence[BatteryParameters]) -> pl.DataFrame:
    """BatteryParameters records as a frame (BATTERY_PARAMETER_SCHEMA)."""
    return pl.DataFrame(
        [(p.device_id, p.chemistry, p.nominal_capacity_mah, p.cutoff_mv, p.installed_at) for p in parameters],
        schema=BATTERY_PARAMETER_SCHEMA,
        orient="row",
    )


class LiveFleetSource:
    """FleetSource over the real (or simulated) shards and analytics database.

    The shard client is async; this source owns one event loop for its lifetime so the client's
    connections survive between calls. Use as a context manager. ``device_sources`` may be called from
    several threads at once: the shard listings are read once, under a lock, and each call's analytics
    reads take a database connection of their own.
    """

    def __init__(self, shard_settings: ShardSettings, analytics: AnalyticsSource) -> None:
        self._loop = asyncio.new_event_loop()
        self._shards = ShardClient.from_settings(shard_settings)
        self._analytics = analytics
        self._versions: dict[datetime, pl.DataFrame] = {}
        self._parameters: pl.DataFrame | None = None
        self._listings = threading.Lock()  # one thread at a time runs the event loop and fills the caches

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

    def _every_shard(self, *listings: Callable[[int], Awaitable[list[Any]]]) -> list[list[Any]]:
        """Run each listing on every shard, all at once (each shard's client bounds its own requests)."""
        shards = range(self._shards.n_shards)

        async def work() -> list[list[list[Any]]]:
            return list(await asyncio.gather(*(asyncio.gather(*(listing(s) for s in shards)) for listing in listings)))

        return [[item for shard in per_shard for item in shard] for per_shard in self._run(work)]

    def device_ids(self) -> list[str]:
        """Return every device id of every shard (and read their battery parameters alongside)."""
        devices, parameters = self._every_shard(self._shards.devices, self._shards.battery_parameters)
        self._parameters = parameters_frame(parameters)
        return [record.device_id for record in devices]

    def _battery_parameters(self) -> pl.DataFrame:
        with self._listings:
            if self._parameters is None:
                (parameters,) = self._every_shard(self._shards.battery_parameters)
                self._parameters = parameters_frame(parameters)
            return self._parameters

    def _version_events(self, as_of: datetime) -> pl.DataFrame:
        with self._listings:
            if as_of not in self._versions:
                # `to` is an exclusive date: ask for the whole day of as_of; library_input cuts at as_of.
                end = (as_of + timedelta(days=1)).date()
                (events,) = self._every_shard(lambda shard: self._shards.version_history(shard, end))
                self._versions[as_of] = events_frame(events)
            return self._versions[as_of]

    def device_sources(self, device_ids: Sequence[str], *, start: datetime, as_of: datetime) -> DeviceSources:
        """Return the raw rows of ``device_ids``: version history, current battery parameters, series rows."""
        wanted = pl.col("device_id").is_in(list(device_ids))
        return DeviceSources(
            version_events=self._version_events(as_of).filter(wanted),
            battery_parameters=self._battery_parameters().filter(wanted),
            sensor_logs=self._analytics.sensor_logs(start, as_of, device_ids),
            valve_movements=self._analytics.valve_movements(start, as_of, device_ids),
        )
