"""build_month and source fingerprints: chunking changes nothing; equal rows give equal hashes anywhere."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl
import pyarrow
from fieldsim.fleet import Fleet
from polars.testing import assert_frame_equal

from eval_runner.contracts import BatteryParameters, CapacityTest, DeviceRecord, VersionEvent
from eval_runner.dataset.build import build_month, frame_fingerprint
from eval_runner.dataset.shape import read_window, shape_month
from eval_runner.keys import Month, dataset_file_key
from eval_runner.parquet import parquet_to_frame
from eval_runner.sources.extract import ShardExtract
from tests.unit.dataset.test_against_oracle import month_sources

FRAME = pl.DataFrame(
    {"device_id": ["a", None, "c"], "ts": [datetime(2026, 4, 1, h, tzinfo=UTC) for h in range(3)], "mv": [1, None, 3]}
)
SCRIPT = """
from datetime import UTC, datetime
import polars as pl
from eval_runner.dataset.build import frame_fingerprint
frame = pl.DataFrame(
    {"device_id": ["a", None, "c"], "ts": [datetime(2026, 4, 1, h, tzinfo=UTC) for h in range(3)], "mv": [1, None, 3]}
)
print(frame_fingerprint(frame).sha256)
"""


def test_fingerprint_is_the_same_in_another_process() -> None:
    other = subprocess.run([sys.executable, "-c", SCRIPT], check=True, capture_output=True, text=True).stdout.strip()
    assert other == frame_fingerprint(FRAME).sha256


def test_fingerprint_changes_with_any_value_or_the_schema() -> None:
    base = frame_fingerprint(FRAME)
    assert base.rows == 3
    changed = FRAME.with_columns(pl.when(pl.col("mv") == 3).then(4).otherwise(pl.col("mv")).alias("mv"))
    assert frame_fingerprint(changed).sha256 != base.sha256
    assert frame_fingerprint(FRAME.with_columns(pl.col("mv").cast(pl.Int32))).sha256 != base.sha256


class FleetAnalytics:
    """AnalyticsSource over the simulated fleet's frames, counting the rows it hands out."""

    location = "memory://fleet"

    def __init__(self, fleet: Fleet) -> None:
        self.frames = month_sources(fleet)
        self.calls = 0

    def _rows(self, frame: pl.DataFrame, start: datetime, end: datetime, ids: Sequence[str] | None) -> pl.DataFrame:
        self.calls += 1
        rows = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
        return (rows if ids is None else rows.filter(pl.col("device_id").is_in(list(ids)))).sort("device_id", "ts")

    def sensor_logs(self, start: datetime, end: datetime, device_ids: Sequence[str] | None = None) -> pl.DataFrame:
        return self._rows(self.frames.sensor_logs, start, end, device_ids)

    def valve_movements(self, start: datetime, end: datetime, device_ids: Sequence[str] | None = None) -> pl.DataFrame:
        return self._rows(self.frames.valve_movements, start, end, device_ids)


def _extracts(fleet: Fleet) -> list[ShardExtract]:
    def records(name: str) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = fleet.source_frames()[name].to_dicts()
        return rows

    return [
        ShardExtract(
            shard=0,
            month="2026-04",
            devices=[DeviceRecord.model_validate(r) for r in records("devices")],
            capacity_tests=[CapacityTest.model_validate(r) for r in records("capacity_tests")],
            version_events=[VersionEvent.model_validate(r) for r in records("version_events")],
            battery_parameters=[BatteryParameters.model_validate(r) for r in records("battery_parameters")],
        ).canonical()
    ]


def test_chunked_build_equals_the_whole_fleet_at_once(fieldsim_fleet: Fleet) -> None:
    month = Month(2026, 4)
    extracts = _extracts(fieldsim_fleet)
    analytics = FleetAnalytics(fieldsim_fleet)
    whole = build_month(month, analytics=analytics, extracts=extracts, chunk_devices=1000)
    chunked = build_month(month, analytics=analytics, extracts=extracts, chunk_devices=7)
    assert chunked.objects == whole.objects
    assert chunked.manifest == whole.manifest
    assert (whole.manifest.engines.polars, whole.manifest.engines.pyarrow) == (pl.__version__, pyarrow.__version__)
    assert analytics.calls == 2 + 2 * 9  # 60 devices in chunks of 7
    dataset, series = shape_month(month, analytics.frames)
    assert_frame_equal(parquet_to_frame(whole.objects[dataset_file_key(month, "dataset")], name="d"), dataset)
    assert_frame_equal(parquet_to_frame(whole.objects[dataset_file_key(month, "series")], name="s"), series)
    everything = analytics.sensor_logs(*read_window(month))
    everything = everything.filter(pl.col("device_id").is_in(dataset["device_id"].implode()))
    assert whole.manifest.sources["sensor_logs"].sha256 == frame_fingerprint(everything).sha256
