"""The CSV parsing of the analytics reader's per-device groups (the database round trip is an integration test)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eval_runner.errors import DataError
from eval_runner.sources.analytics import SENSOR_LOG_SCHEMA, VALVE_MOVEMENT_SCHEMA, _parse_groups


def test_csv_with_epoch_microseconds_and_nulls_becomes_the_schema() -> None:
    ts = int(datetime(2026, 4, 1, 13, tzinfo=UTC).timestamp() * 1_000_000)
    data = f"{ts},2950,19.5,3,1,-71,12.5\n{ts + 3_600_000_000},,,0,0,,12.5\n{ts},2800,18.0,1,1,-80,3.0\n".encode()
    frame = _parse_groups(["dev-1", "dev-2"], [2, 1], data, SENSOR_LOG_SCHEMA, "sensor_logs")
    expected = pl.DataFrame(
        {
            "device_id": ["dev-1", "dev-1", "dev-2"],
            "ts": [datetime(2026, 4, 1, hour, tzinfo=UTC) for hour in (13, 14, 13)],
            "battery_mv": [2950, None, 2800],
            "temperature_c": [19.5, None, 18.0],
            "radio_tx": [3, 0, 1],
            "radio_rx": [1, 0, 1],
            "rssi_dbm": [-71, None, -80],
            "valve_travel_total": [12.5, 12.5, 3.0],
        },
        schema=SENSOR_LOG_SCHEMA,
    )
    assert_frame_equal(frame, expected)


def test_no_rows_is_an_empty_frame_with_the_schema() -> None:
    frame = _parse_groups([], [], b"", VALVE_MOVEMENT_SCHEMA, "valve_movements")
    assert frame.schema == pl.Schema(VALVE_MOVEMENT_SCHEMA)
    assert frame.height == 0


def test_a_group_whose_lines_disagree_with_its_count_is_a_data_error() -> None:
    with pytest.raises(DataError, match="valve_movements: 1 rows parsed, the database counted 2"):
        _parse_groups(["dev-1"], [2], b"1775048400000000,2.5,120\n", VALVE_MOVEMENT_SCHEMA, "valve_movements")
