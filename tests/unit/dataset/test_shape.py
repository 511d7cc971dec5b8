"""shape_month on hand-made frames: sample definition, version history as of the sample, quality signals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from eval_runner.contracts import DATASET_SCHEMA, SERIES_SCHEMA
from eval_runner.dataset.shape import (
    CAPACITY_TEST_SCHEMA,
    DEVICE_SCHEMA,
    EVENTS_SCHEMA,
    MonthSources,
    SuggestionPolicy,
    sample_events,
    shape_month,
)
from eval_runner.keys import Month
from eval_runner.library.inputs import BATTERY_PARAMETER_SCHEMA, VERSION_EVENT_SCHEMA
from eval_runner.sources.analytics import SENSOR_LOG_SCHEMA, VALVE_MOVEMENT_SCHEMA

MONTH = Month(2026, 4)
AS_OF = datetime(2026, 4, 20, 12, tzinfo=UTC)
GAP = range(100, 110)  # hours (from the window start) device a was offline
NULL_HOUR, STEP_HOUR, GLITCH_HOUR = 200, 400, 500


def _utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def _mv(hour: int) -> int | None:
    if hour == NULL_HOUR:
        return None  # a failed reading
    if hour == GLITCH_HOUR:
        return 5800  # a scaling bug: twice the real voltage
    return 2900 if hour < STEP_HOUR else 2500


def _sources(*, extra_sensor_rows: int = 0) -> MonthSources:
    start = AS_OF - timedelta(days=30)
    hours = [h for h in range(720) if h not in GAP]
    sensor = pl.DataFrame(
        {
            "device_id": ["a"] * len(hours),
            "ts": [start + timedelta(hours=h) for h in hours],
            "battery_mv": [_mv(h) for h in hours],
            "temperature_c": [20.0] * len(hours),
            "radio_tx": [3] * len(hours),
            "radio_rx": [1] * len(hours),
            "rssi_dbm": [-70] * len(hours),
            "valve_travel_total": [float(h) for h in hours],
        },
        schema=SENSOR_LOG_SCHEMA,
    )
    after = pl.DataFrame(  # rows at and after as_of are not the sample's
        {
            "device_id": ["a"] * extra_sensor_rows,
            "ts": [AS_OF + timedelta(hours=h) for h in range(extra_sensor_rows)],
        },
        schema={"device_id": pl.String(), "ts": pl.Datetime("us", "UTC")},
    )
    sensor = pl.concat([sensor, after], how="diagonal_relaxed")
    movement_hour = start + timedelta(hours=5)
    movements = pl.DataFrame(
        {
            "device_id": ["a", "a"],
            "ts": [movement_hour + timedelta(minutes=3), movement_hour + timedelta(minutes=40)],
            "travel_pct": [10.0, 5.0],
            "motor_ms": [300, 200],
        },
        schema=VALVE_MOVEMENT_SCHEMA,
    )
    return MonthSources(
        devices=pl.DataFrame(
            {
                "device_id": ["a", "b", "late"],
                "site_id": ["s"] * 3,
                "installed_at": [_utc(2025, 6, 1), _utc(2025, 6, 1), _utc(2026, 5, 2)],
            },
            schema=DEVICE_SCHEMA,
        ),
        capacity_tests=pl.DataFrame(
            {
                "test_id": ["t0", "t1", "t2"],
                "device_id": ["a", "a", "a"],
                "tested_at": [_utc(2026, 4, 2), AS_OF, _utc(2026, 5, 3)],
                "remaining_mah": [1500.0, 1200.0, 1100.0],
                "remaining_runtime_days": [200.0, 150.0, 140.0],
                "runtime_source": ["estimated", "observed", "estimated"],
                "runtime_censored": [False, False, True],
            },
            schema=CAPACITY_TEST_SCHEMA,
        ),
        version_events=pl.DataFrame(
            {
                "device_id": ["a", "a", "a", "a", "a", "b", "b"],
                "effective_at": [
                    _utc(2025, 6, 1),
                    _utc(2025, 6, 1),
                    _utc(2026, 4, 10),
                    _utc(2026, 4, 3),
                    _utc(2026, 4, 25),
                    _utc(2025, 6, 1),
                    _utc(2025, 6, 1),
                ],
                "component": [
                    "hardware",
                    "firmware",
                    "firmware",
                    "software",
                    "software",
                    "hardware",
                    "firmware",
                ],
                "version": ["B", "2.0", "2.1", "1.1", "1.2", "A", "1.9"],
            },
            schema=VERSION_EVENT_SCHEMA,
        ),
        battery_parameters=pl.DataFrame(
            {
                "device_id": ["a"],
                "chemistry": ["alkaline"],
                "nominal_capacity_mah": [2600.0],
                "cutoff_mv": [2200],
                "installed_at": [_utc(2025, 10, 1)],
            },
            schema=BATTERY_PARAMETER_SCHEMA,
        ),
        sensor_logs=sensor,
        valve_movements=movements,
    )


def test_samples_versions_and_signals() -> None:
    dataset, series = shape_month(MONTH, _sources(extra_sensor_rows=3))
    assert dataset.schema == pl.Schema(DATASET_SCHEMA)
    assert series.schema == pl.Schema(SERIES_SCHEMA)
    rows = {row["device_id"]: row for row in dataset.iter_rows(named=True)}
    assert set(rows) == {"a", "b"}  # "late" is installed after the month
    a, b = rows["a"], rows["b"]
    assert a["sample_id"] == "a/2026-04" and a["as_of"] == AS_OF
    assert (a["true_capacity_mah"], a["true_runtime_days"]) == (1200.0, 150.0)  # the month's last test
    assert (a["true_runtime_source"], a["true_runtime_censored"]) == ("observed", False)  # and how it knows
    assert (a["hardware_revision"], a["firmware_version"], a["firmware_version_at_as_of"]) == (
        "B",
        "2.0",
        "2.1",
    )
    assert a["software_changes"] == 2
    assert a["firmware_changed_mid_month"] is True
    assert a["longest_gap_hours"] == len(GAP)
    assert a["days_offline"] == pytest.approx(len(GAP) / 24)
    assert a["voltage_anomalies"] == 2  # the 400 mV step and the glitch; a failed reading is no anomaly
    assert a["suggest_use"] is False  # firmware changed mid-month
    assert (a["battery_chemistry"], a["cutoff_mv"]) == ("alkaline", 2200)

    assert b["missing_capacity_test"] is True and b["true_capacity_mah"] is None
    assert b["as_of"] == _utc(2026, 5, 1)
    assert b["days_offline"] == 30.0 and b["longest_gap_hours"] == 720
    assert b["firmware_version"] == "1.9" and b["suggest_use"] is False

    assert series["sample_id"].unique().to_list() == ["a/2026-04"]
    assert series.height == 720 - len(GAP)  # rows at and after as_of are excluded
    assert series["ts"].max() < AS_OF  # type: ignore[operator]
    moved = series.filter(pl.col("valve_travel_pct") > 0)
    assert moved.select("valve_travel_pct", "motor_ms").rows() == [(15.0, 500)]


def test_a_clean_sample_is_suggested() -> None:
    sources = _sources()
    clean = MonthSources(
        **{
            **sources.__dict__,
            "version_events": sources.version_events.filter(pl.col("effective_at") < _utc(2026, 4, 1)),
        }
    )
    dataset, _ = shape_month(MONTH, clean, SuggestionPolicy(max_gap_hours=12))
    assert dataset.filter(pl.col("device_id") == "a")["suggest_use"].to_list() == [True]
    strict, _ = shape_month(MONTH, clean, SuggestionPolicy(max_voltage_anomalies=1))
    assert strict.filter(pl.col("device_id") == "a")["suggest_use"].to_list() == [False]


def test_output_is_deterministic_whatever_the_input_order() -> None:
    sources = _sources()
    shuffled = MonthSources(**{k: v.sample(fraction=1.0, shuffle=True, seed=7) for k, v in sources.__dict__.items()})
    first, first_series = shape_month(MONTH, sources)
    second, second_series = shape_month(MONTH, shuffled)
    assert first.equals(second)
    assert first_series.equals(second_series)


def test_sample_events_are_those_inside_the_series_window() -> None:
    sources = _sources()
    dataset, _ = shape_month(MONTH, sources)
    events = sample_events(dataset, sources.version_events)
    assert events.schema == pl.Schema(EVENTS_SCHEMA)
    assert events.select("sample_id", "component", "version").rows() == [
        ("a/2026-04", "software", "1.1"),
        ("a/2026-04", "firmware", "2.1"),
    ]
