"""The COPY CSV parsing of the analytics reader (the database round trip is an integration test)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from polars.testing import assert_frame_equal

from eval_runner.sources.analytics import SENSOR_LOG_SCHEMA, VALVE_MOVEMENT_SCHEMA, _parse_csv


def test_csv_with_epoch_microseconds_and_nulls_becomes_the_schema() -> None:
    ts = int(datetime(2026, 4, 1, 13, tzinfo=UTC).timestamp() * 1_000_000)
    data = f"dev-1,{ts},2950,19.5,3,1,-71,12.5\ndev-1,{ts + 3_600_000_000},,,0,0,,12.5\n".encode()
    frame = _parse_csv(data, SENSOR_LOG_SCHEMA, "sensor_logs")
    expected = pl.DataFrame(
        {
            "device_id": ["dev-1", "dev-1"],
            "ts": [datetime(2026, 4, 1, 13, tzinfo=UTC), datetime(2026, 4, 1, 14, tzinfo=UTC)],
            "battery_mv": [2950, None],
            "temperature_c": [19.5, None],
            "radio_tx": [3, 0],
            "radio_rx": [1, 0],
            "rssi_dbm": [-71, None],
            "valve_travel_total": [12.5, 12.5],
        },
        schema=SENSOR_LOG_SCHEMA,
    )
    assert_frame_equal(frame, expected)


def test_no_rows_is_an_empty_frame_with_the_schema() -> None:
    frame = _parse_csv(b"", VALVE_MOVEMENT_SCHEMA, "valve_movements")
    assert frame.schema == pl.Schema(VALVE_MOVEMENT_SCHEMA)
    assert frame.height == 0
