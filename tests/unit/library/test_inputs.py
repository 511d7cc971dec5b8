"""The library's input: the dataset build and the fleet snapshot give the same device the same input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eval_runner.contracts import LIBRARY_SAMPLE_COLUMNS, SERIES_SCHEMA
from eval_runner.dataset.shape import (
    CAPACITY_TEST_SCHEMA,
    DEVICE_SCHEMA,
    SERIES_WINDOW,
    MonthSources,
    shape_month,
)
from eval_runner.errors import DataError
from eval_runner.fleet import snapshot
from eval_runner.fleet.shard import read_inputs
from eval_runner.keys import Month
from eval_runner.library.inputs import (
    BATTERY_PARAMETER_SCHEMA,
    KEY_SCHEMA,
    UNKNOWN_VERSION,
    VERSION_EVENT_SCHEMA,
    DeviceSources,
    library_input,
    library_samples,
)
from eval_runner.sources.analytics import SENSOR_LOG_SCHEMA, VALVE_MOVEMENT_SCHEMA
from tests.fakes import MemoryObjectStore

MONTH = Month(2026, 4)
# Deliberately not on the hour: a capacity test happens at any minute, and as_of is the test's time.
AS_OF = datetime(2026, 4, 20, 12, 30, tzinfo=UTC)
HOUR_OF_AS_OF = datetime(2026, 4, 20, 12, tzinfo=UTC)
# a: hardware B -> C and firmware 2.0 -> 2.1 during the month, both before as_of; a later firmware after.
# n: installed during the month, its only version events take effect after as_of (none in force).
DEVICES = ("a", "n")


def _utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def _events(rows: list[tuple[str, datetime, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=VERSION_EVENT_SCHEMA, orient="row")


def _raw() -> MonthSources:
    start = AS_OF - SERIES_WINDOW
    hours = [start.replace(minute=0) + timedelta(hours=h) for h in range(1, 24 * 32)]  # reaches past as_of
    sensor = pl.DataFrame(
        {
            "device_id": [d for d in DEVICES for _ in hours],
            "ts": hours * len(DEVICES),
            "battery_mv": [2900 - i // 24 for _ in DEVICES for i in range(len(hours))],
            "temperature_c": [18.5] * len(hours) * len(DEVICES),
            "radio_tx": [4] * len(hours) * len(DEVICES),
            "radio_rx": [1] * len(hours) * len(DEVICES),
            "rssi_dbm": [-71] * len(hours) * len(DEVICES),
            "valve_travel_total": [float(i) for _ in DEVICES for i in range(len(hours))],
        },
        schema=SENSOR_LOG_SCHEMA,
    )
    movements = pl.DataFrame(
        [
            ("a", _utc(2026, 4, 10, 8) + timedelta(minutes=5), 12.0, 400),
            ("a", _utc(2026, 4, 10, 8) + timedelta(minutes=50), 3.0, 100),
            ("a", HOUR_OF_AS_OF + timedelta(minutes=10), 7.0, 210),  # in as_of's hour, before as_of
            ("a", HOUR_OF_AS_OF + timedelta(minutes=45), 9.0, 270),  # in as_of's hour, after as_of
            ("n", _utc(2026, 4, 15, 3) + timedelta(minutes=30), 5.0, 150),
        ],
        schema=VALVE_MOVEMENT_SCHEMA,
        orient="row",
    )
    events = _events(
        [
            ("a", _utc(2025, 6, 1), "hardware", "B"),
            ("a", _utc(2025, 6, 1), "firmware", "2.0"),
            ("a", _utc(2026, 4, 12), "hardware", "C"),  # a board swap mid-month
            ("a", _utc(2026, 4, 8), "firmware", "2.1"),
            ("a", _utc(2026, 4, 25), "firmware", "2.2"),  # after as_of: not the sample's
            ("n", AS_OF, "hardware", "C"),  # exactly at as_of: not yet in force
            ("n", _utc(2026, 4, 22), "firmware", "2.1"),
        ]
    )
    return MonthSources(
        devices=pl.DataFrame(
            {"device_id": list(DEVICES), "site_id": ["s", "s"], "installed_at": [_utc(2025, 6, 1), _utc(2026, 4, 3)]},
            schema=DEVICE_SCHEMA,
        ),
        capacity_tests=pl.DataFrame(
            {
                "test_id": ["t-a", "t-n"],
                "device_id": list(DEVICES),
                "tested_at": [AS_OF, AS_OF],
                "remaining_mah": [1200.0, 2400.0],
                "remaining_runtime_days": [150.0, 400.0],
                "runtime_source": ["observed", "estimated"],
                "runtime_censored": [False, False],
            },
            schema=CAPACITY_TEST_SCHEMA,
        ),
        version_events=events,
        battery_parameters=pl.DataFrame(
            {
                "device_id": list(DEVICES),
                "chemistry": ["alkaline", "lithium"],
                "nominal_capacity_mah": [2600.0, 3000.0],
                "cutoff_mv": [2200, 2300],
                "installed_at": [_utc(2025, 10, 1), _utc(2026, 4, 3)],
            },
            schema=BATTERY_PARAMETER_SCHEMA,
        ),
        sensor_logs=sensor,
        valve_movements=movements,
    )


class RawFleetSource:
    """A FleetSource serving the same raw rows as the dataset's sources, cut as the real readers cut them."""

    def __init__(self, raw: MonthSources) -> None:
        self._raw = raw

    def device_ids(self) -> list[str]:
        return self._raw.devices.get_column("device_id").to_list()

    def device_sources(self, device_ids: Sequence[str], *, start: datetime, as_of: datetime) -> DeviceSources:
        def mine(frame: pl.DataFrame) -> pl.DataFrame:
            return frame.filter(pl.col("device_id").is_in(list(device_ids)))

        def window(frame: pl.DataFrame) -> pl.DataFrame:  # the analytics reader: start <= ts < end
            return mine(frame).filter((pl.col("ts") >= start) & (pl.col("ts") < as_of))

        return DeviceSources(
            # The shards' version history up to as_of's day end, as LiveFleetSource asks for it.
            version_events=mine(self._raw.version_events).filter(
                pl.col("effective_at") < (as_of + timedelta(days=1)).replace(hour=0, minute=0)
            ),
            battery_parameters=mine(self._raw.battery_parameters),
            sensor_logs=window(self._raw.sensor_logs),
            valve_movements=window(self._raw.valve_movements),
        )


def _by_device(frame: pl.DataFrame) -> pl.DataFrame:
    """Key a frame by device instead of sample (dataset and fleet sample ids differ by design)."""
    return frame.with_columns(pl.col("sample_id").str.split("/").list.first())


def _dataset_path(raw: MonthSources) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    dataset, series = shape_month(MONTH, raw)
    return dataset, _by_device(dataset.select(LIBRARY_SAMPLE_COLUMNS)), _by_device(series)


def _fleet_path(raw: MonthSources) -> tuple[pl.DataFrame, pl.DataFrame]:
    store = MemoryObjectStore()
    days = SERIES_WINDOW.days  # the dataset's window, so the series are comparable whole
    manifest = snapshot.run(
        snapshot.SnapshotParams("same-device", AS_OF, series_days=days), store=store, source=RawFleetSource(raw)
    )
    parts = [read_inputs(store, manifest, b.batch) for b in manifest.batches]
    samples = pl.concat([p[0] for p in parts]).sort("sample_id")
    series = pl.concat([p[1] for p in parts]).sort("sample_id", "ts")
    return _by_device(samples), _by_device(series)


def test_the_same_device_gets_the_same_input_in_evaluation_and_in_the_fleet() -> None:
    raw = _raw()
    _, dataset_samples, dataset_series = _dataset_path(raw)
    fleet_samples, fleet_series = _fleet_path(raw)
    assert dataset_samples.height == len(DEVICES) and dataset_series.height > 0
    assert_frame_equal(fleet_samples, dataset_samples)
    assert_frame_equal(fleet_series, dataset_series)


def test_versions_are_those_in_force_at_as_of_in_both_paths() -> None:
    raw = _raw()
    dataset, dataset_samples, _ = _dataset_path(raw)
    fleet_samples, _ = _fleet_path(raw)
    for samples in (dataset_samples, fleet_samples):
        rows = {r["device_id"]: r for r in samples.iter_rows(named=True)}
        # Hardware changed mid-month (B on the 1st, C from the 12th): the library sees C at as_of.
        assert (rows["a"]["hardware_revision"], rows["a"]["firmware_version_at_as_of"]) == ("C", "2.1")
        # Nothing in force before as_of (one event exactly at as_of, one after): unknown, never a later one.
        assert rows["n"]["hardware_revision"] is UNKNOWN_VERSION
        assert rows["n"]["firmware_version_at_as_of"] is UNKNOWN_VERSION
    by_device = {r["device_id"]: r for r in dataset.iter_rows(named=True)}
    # The dataset's own segment label stays "firmware at month start" (the first of the month for n).
    assert (by_device["a"]["firmware_version"], by_device["n"]["firmware_version"]) == ("2.0", "2.1")
    assert by_device["n"]["suggest_use"] is False  # no version in force: not suggested for evaluation


def test_movements_after_as_of_in_its_own_hour_are_not_seen() -> None:
    _, _, series = _dataset_path(_raw())
    last = series.filter((pl.col("sample_id") == "a") & (pl.col("ts") == HOUR_OF_AS_OF))
    assert last.select("valve_travel_pct", "motor_ms").rows() == [(7.0, 210)]
    moved = series.filter((pl.col("sample_id") == "a") & (pl.col("valve_travel_pct") > 0))
    assert moved.select("valve_travel_pct", "motor_ms").rows() == [(15.0, 500), (7.0, 210)]
    assert series.filter(pl.col("ts") >= AS_OF).height == 0


def _keys(as_of: datetime, *devices: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"sample_id": [f"{d}/x" for d in devices], "device_id": list(devices), "as_of": [as_of] * len(devices)},
        schema=KEY_SCHEMA,
    )


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (_utc(2026, 4, 8), "2.0"),  # the change takes effect at effective_at: not yet at that instant
        (_utc(2026, 4, 8) + timedelta(microseconds=1), "2.1"),
        (_utc(2026, 4, 30), "2.2"),
        (_utc(2025, 6, 1), UNKNOWN_VERSION),  # before the first record
    ],
)
def test_a_version_change_inside_the_month(as_of: datetime, expected: str | None) -> None:
    raw = _raw()
    samples = library_samples(_keys(as_of, "a"), raw.version_events, raw.battery_parameters)
    assert samples.get_column("firmware_version_at_as_of").to_list() == [expected]


def test_events_at_one_instant_resolve_the_same_whatever_the_row_order() -> None:
    at = _utc(2026, 1, 1)
    events = _events([("d", at, "firmware", "3.0"), ("d", at, "firmware", "3.1"), ("d", at, "hardware", "B")])
    params = _raw().battery_parameters
    picked = {
        library_samples(_keys(AS_OF, "d"), events.reverse() if flip else events, params).row(0, named=True)[
            "firmware_version_at_as_of"
        ]
        for flip in (False, True)
    }
    assert picked == {"3.1"}


def test_a_pack_that_went_in_after_as_of_is_unknown_unless_kept() -> None:
    raw = _raw()
    params = raw.battery_parameters.with_columns(
        pl.lit(_utc(2026, 4, 25)).cast(pl.Datetime("us", "UTC")).alias("installed_at")
    )
    keys = _keys(AS_OF, "a")
    unknown = library_samples(keys, raw.version_events, params).row(0, named=True)
    assert (unknown["battery_chemistry"], unknown["nominal_capacity_mah"], unknown["battery_installed_at"]) == (
        None,
        None,
        None,
    )
    assert unknown["cutoff_mv"] == 2200  # the device's, not the pack's
    kept = library_samples(keys, raw.version_events, params, later_pack="keep").row(0, named=True)
    assert (kept["battery_chemistry"], kept["battery_installed_at"]) == ("alkaline", _utc(2026, 4, 25))


def test_missing_source_columns_are_named() -> None:
    raw = _raw()
    sources = DeviceSources(
        version_events=raw.version_events.drop("component"),
        battery_parameters=raw.battery_parameters,
        sensor_logs=raw.sensor_logs,
        valve_movements=raw.valve_movements,
    )
    with pytest.raises(DataError, match=r"version events lack the columns \['component'\]"):
        library_input(_keys(AS_OF, "a"), sources, window=SERIES_WINDOW)


def test_series_have_the_contract_schema_and_order() -> None:
    raw = _raw()
    sources = DeviceSources(raw.version_events, raw.battery_parameters, raw.sensor_logs, raw.valve_movements)
    shuffled = replace(sources, sensor_logs=raw.sensor_logs.sample(fraction=1.0, shuffle=True, seed=3))
    _, series = library_input(_keys(AS_OF, "a", "n"), sources, window=timedelta(days=7))
    _, again = library_input(_keys(AS_OF, "a", "n"), shuffled, window=timedelta(days=7))
    assert series.schema == pl.Schema(SERIES_SCHEMA)
    assert series.height == 2 * 7 * 24  # hourly rows of 7 days before as_of, as_of's own hour included
    assert series.equals(again)
