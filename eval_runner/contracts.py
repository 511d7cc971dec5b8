"""Data contracts between the field sources, the dataset, the library versions and the fleet steps.

These are the shapes several parts agree on. The spec files in contracts/ (SQL, JSON Schema, Arrow) are
their source of truth: change a spec file first, then this module (tests/unit/core/test_contract_specs.py
compares the two) and the simulator (which has its own copy, tested against the same files). Runtime code
never reads the spec files: images carry this module, not the checkout.
"""

from __future__ import annotations

import re
import zlib
from datetime import datetime
from typing import Annotated, Literal

import polars as pl
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

from eval_runner.stored import RecordPart

N_SHARDS = 5  # contracts/shard-api/ownership.json
# Extractor schema version: datasets of different versions are not comparable. 2: the runtime truth's
# source and censoring (true_runtime_source, true_runtime_censored).
SCHEMA_VERSION = 2


def shard_of(device_id: str, n_shards: int = N_SHARDS) -> int:
    """The API shard that owns ``device_id`` (CRC-32, stable across processes and languages)."""
    return zlib.crc32(device_id.encode()) % n_shards


# ---- analytics database (PostgreSQL): contracts/analytics.sql ------------------------------------
# Hourly sensor rows; an hour with no row is an hour the device was offline. Counters are cumulative
# since the battery was installed and reset to 0 at a battery swap (as devices really do).
ANALYTICS_DDL = """
CREATE TABLE IF NOT EXISTS sensor_logs (
    device_id            text        NOT NULL,
    ts                   timestamptz NOT NULL,
    battery_mv           integer,              -- NULL when the reading failed; quantised by the device
    temperature_c        real,
    radio_tx             integer     NOT NULL, -- messages sent in the hour
    radio_rx             integer     NOT NULL,
    rssi_dbm             smallint,
    valve_travel_total   real        NOT NULL, -- cumulative valve travel in % since battery install
    PRIMARY KEY (device_id, ts)
);
CREATE TABLE IF NOT EXISTS valve_movements (
    device_id            text        NOT NULL,
    ts                   timestamptz NOT NULL,
    travel_pct           real        NOT NULL, -- absolute travel of this movement, % of full stroke
    motor_ms             integer     NOT NULL, -- motor run time of this movement
    PRIMARY KEY (device_id, ts)
);
"""


# ---- API shards (HTTP JSON): contracts/shard-api/*.schema.json ---------------------------------------
# pydantic's lax mode would take "2600" or true for a number and a naive time, a date or a Unix number for
# a timestamp; the JSON Schemas take none of these, and a reader that is laxer than the spec hides a
# server's contract bug. These types make the models accept what the schemas accept.
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})")


def _json_number(value: object) -> object:
    if isinstance(value, bool | str):  # bool is an int to Python, never a number to JSON
        raise ValueError(f"expected a JSON number, found {value!r}")
    return value


def _rfc3339(value: object) -> object:
    if isinstance(value, datetime):  # built in Python rather than parsed: AwareDatetime still checks its offset
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(f"expected an RFC 3339 date-time with an offset, found {value!r}")
    return value


Number = Annotated[float, BeforeValidator(_json_number)]
Integer = Annotated[int, BeforeValidator(_json_number)]  # 2400.0 passes, as for JSON Schema's "integer"
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
RuntimeSource = Literal["observed", "estimated"]
RUNTIME_SOURCES: tuple[RuntimeSource, ...] = ("observed", "estimated")


# Records parts: a shard extract stores them as the API returned them.
class DeviceRecord(RecordPart):
    """GET /v1/devices: one device."""

    device_id: str
    site_id: str
    installed_at: Timestamp


class CapacityTest(RecordPart):
    """GET /v1/capacity-tests: ground truth at one moment (remaining charge above the device cut-off)."""

    test_id: str
    device_id: str
    tested_at: Timestamp
    remaining_mah: Number = Field(ge=0)
    remaining_runtime_days: Number = Field(ge=0)
    # How the runtime is known: the day the pack ran out (observed), or the forward model's estimate for
    # a pack still running when the record ends; censored: the estimate sits at the model's horizon, a
    # lower bound rather than a value.
    runtime_source: RuntimeSource
    runtime_censored: StrictBool  # JSON true or false: "false" and 0 are refused, as the schema does

    @model_validator(mode="after")
    def _observed_is_a_value(self) -> CapacityTest:
        if self.runtime_source == "observed" and self.runtime_censored:
            raise ValueError(f"capacity test {self.test_id!r}: an observed runtime cannot be censored")
        return self


class VersionEvent(RecordPart):
    """GET /v1/version-history: a component version taking effect on a device."""

    device_id: str
    effective_at: Timestamp
    component: Literal["hardware", "firmware", "software"]
    version: str


class BatteryParameters(RecordPart):
    """GET/PUT /v1/devices/{id}/battery-parameters (ETag / If-Match, Idempotency-Key on PUT)."""

    device_id: str
    chemistry: Literal["alkaline", "lithium"]
    nominal_capacity_mah: Number = Field(gt=0)
    cutoff_mv: Integer = Field(gt=0)
    installed_at: Timestamp  # when the current pack went in (a swap moves it)


class Page(BaseModel):
    """Every list endpoint returns pages: ``?page_token=&limit=``; the last page has no token."""

    model_config = ConfigDict(extra="forbid")

    items: list[dict[str, object]]
    next_page_token: str | None = None


# ---- the monthly dataset and the library input: contracts/dataset.arrow.json ------------------------
# dataset.parquet: one row per sample (device-month). A sample is "predict at as_of", with as_of the
# capacity test's time (the truth); devices without a test in the month are samples with null truth,
# flagged `missing_capacity_test`, so reviewers see them and evaluation skips them.
DATASET_SCHEMA: dict[str, pl.DataType] = {
    "sample_id": pl.String(),  # f"{device_id}/{YYYY-MM}"
    "month": pl.String(),  # "YYYY-MM"
    "device_id": pl.String(),
    "as_of": pl.Datetime("us", "UTC"),
    "hardware_revision": pl.String(),  # in force at as_of (eval_runner.library.inputs); null if none
    "firmware_version": pl.String(),  # at month start (or the month's first): a segment label, not an input
    "firmware_version_at_as_of": pl.String(),  # in force at as_of; null if none
    "software_changes": pl.Int32(),  # software changes during the month
    "battery_chemistry": pl.String(),
    "nominal_capacity_mah": pl.Float64(),
    "cutoff_mv": pl.Int32(),
    "battery_installed_at": pl.Datetime("us", "UTC"),
    "true_capacity_mah": pl.Float64(),  # null when missing_capacity_test
    "true_runtime_days": pl.Float64(),
    "true_runtime_source": pl.String(),  # RUNTIME_SOURCES: observed, or estimated (the pack still ran)
    "true_runtime_censored": pl.Boolean(),  # the estimate is at the model's horizon: a lower bound
    # quality signals the review UI shows as suggestions
    "days_offline": pl.Float64(),
    "longest_gap_hours": pl.Int32(),
    "firmware_changed_mid_month": pl.Boolean(),
    "voltage_anomalies": pl.Int32(),
    "missing_capacity_test": pl.Boolean(),
    "suggest_use": pl.Boolean(),  # the extractor's suggestion for use_for_training
}

# series.parquet and the library's series input: hourly rows of the 30 days up to as_of (gaps = offline).
SERIES_SCHEMA: dict[str, pl.DataType] = {
    "sample_id": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "battery_mv": pl.Int32(),
    "temperature_c": pl.Float32(),
    "radio_tx": pl.Int32(),
    "radio_rx": pl.Int32(),
    "valve_travel_total": pl.Float32(),  # cumulative since battery install
    "valve_travel_pct": pl.Float32(),  # travel in this hour, summed from valve_movements
    "motor_ms": pl.Int32(),  # motor time in this hour
}

# The fleet snapshot sends a shorter window than the dataset: 30 days hourly x 100k devices is 72M rows
# per run, 7 days is 17M. Generation-2 libraries must therefore accept any window of up to 30 days ending
# at as_of (fewer rows look like an offline device, which they already handle).
FLEET_SERIES_DAYS = 7

# What a library version receives for each sample (generation 2 API). eval_runner.library.inputs builds
# it, with the same rules for the dataset and the fleet snapshot. Column names equal the dataset's.
LIBRARY_SAMPLE_COLUMNS: tuple[str, ...] = (
    "sample_id",
    "device_id",
    "as_of",
    "hardware_revision",
    "firmware_version_at_as_of",
    "battery_chemistry",
    "nominal_capacity_mah",
    "cutoff_mv",
    "battery_installed_at",
)

# What every adapter returns, whatever the library generation (q10/q90 null where a version has none).
PREDICTION_SCHEMA: dict[str, pl.DataType] = {
    "sample_id": pl.String(),
    "capacity_mah_p10": pl.Float64(),
    "capacity_mah_p50": pl.Float64(),
    "capacity_mah_p90": pl.Float64(),
    "runtime_days_p10": pl.Float64(),
    "runtime_days_p50": pl.Float64(),
    "runtime_days_p90": pl.Float64(),
}
