"""The simulator's side of the contracts in contracts/ (DDL, shard ownership, PUT bodies, dataset schemas).

fieldsim imports nothing from eval_runner: it plays the real sources, so it keeps its own copy of what
they serve and tests/unit/fieldsim/test_contract_specs.py checks that copy against the spec files, as
eval_runner's copy is checked against the same files. A contract bug on either side then fails a test
instead of moving both sides at once. The spec files are not read at runtime: the fieldsim image carries
this package only.
"""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime
from typing import Any

import polars as pl

# ---- shard ownership: contracts/shard-api/ownership.json -----------------------------------------
N_SHARDS = 5


def shard_of(device_id: str, n_shards: int = N_SHARDS) -> int:
    """The API shard that owns ``device_id``: CRC-32 of its UTF-8 bytes, mod ``n_shards``."""
    return zlib.crc32(device_id.encode("utf-8")) % n_shards


# ---- analytics database: contracts/analytics.sql ---------------------------------------------------
ANALYTICS_DDL = """
CREATE TABLE IF NOT EXISTS sensor_logs (
    device_id            text        NOT NULL,
    ts                   timestamptz NOT NULL,
    battery_mv           integer,
    temperature_c        real,
    radio_tx             integer     NOT NULL,
    radio_rx             integer     NOT NULL,
    rssi_dbm             smallint,
    valve_travel_total   real        NOT NULL,
    PRIMARY KEY (device_id, ts)
);
CREATE TABLE IF NOT EXISTS valve_movements (
    device_id            text        NOT NULL,
    ts                   timestamptz NOT NULL,
    travel_pct           real        NOT NULL,
    motor_ms             integer     NOT NULL,
    PRIMARY KEY (device_id, ts)
);
"""

# ---- PUT /v1/devices/{id}/battery-parameters: contracts/shard-api/battery-parameters.schema.json -------
CHEMISTRIES = ("alkaline", "lithium")
_BATTERY_FIELDS = ("device_id", "chemistry", "nominal_capacity_mah", "cutoff_mv", "installed_at")
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})")
STORED_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"  # what the shards serve: UTC, microseconds, Z


def battery_parameters(body: object) -> dict[str, Any]:
    """The stored form of a battery-parameters body, or ValueError saying what does not match the schema.

    Stored form: the schema's keys in its order, the capacity as a float, the cut-off as an int and the
    install time as UTC with microseconds, so an unchanged value always gets the same ETag.
    """
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, found {type(body).__name__}")
    missing = [key for key in _BATTERY_FIELDS if key not in body]
    extra = sorted(set(body) - set(_BATTERY_FIELDS))
    if missing or extra:
        raise ValueError(f"expected the keys {', '.join(_BATTERY_FIELDS)}; missing {missing}, unknown {extra}")
    device_id, chemistry = body["device_id"], body["chemistry"]
    if not isinstance(device_id, str):
        raise ValueError(f"device_id must be a string, found {device_id!r}")
    if chemistry not in CHEMISTRIES:
        raise ValueError(f"chemistry must be one of {CHEMISTRIES}, found {chemistry!r}")
    nominal = _positive(body, "nominal_capacity_mah")
    cutoff = _positive(body, "cutoff_mv")
    if cutoff != int(cutoff):  # JSON Schema's integer: 2400.0 is one, 2400.5 is not
        raise ValueError(f"cutoff_mv must be an integer, found {cutoff!r}")
    installed = body["installed_at"]
    if not isinstance(installed, str) or not _RFC3339.fullmatch(installed):
        raise ValueError(f"installed_at must be an RFC 3339 date-time with an offset, found {installed!r}")
    at = datetime.fromisoformat(installed).astimezone(UTC)
    return {
        "device_id": device_id,
        "chemistry": chemistry,
        "nominal_capacity_mah": float(nominal),
        "cutoff_mv": int(cutoff),
        "installed_at": at.strftime(STORED_TIME),
    }


def _positive(body: dict[str, Any], key: str) -> float:
    value = body[key]
    # bool is an int to Python, never a number to JSON
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{key} must be a number above 0, found {value!r}")
    return value


# ---- the dataset and the library input: contracts/dataset.arrow.json --------------------------------
DATASET_SCHEMA: dict[str, pl.DataType] = {
    "sample_id": pl.String(),
    "month": pl.String(),
    "device_id": pl.String(),
    "as_of": pl.Datetime("us", "UTC"),
    "hardware_revision": pl.String(),
    "firmware_version": pl.String(),
    "firmware_version_at_as_of": pl.String(),
    "software_changes": pl.Int32(),
    "battery_chemistry": pl.String(),
    "nominal_capacity_mah": pl.Float64(),
    "cutoff_mv": pl.Int32(),
    "battery_installed_at": pl.Datetime("us", "UTC"),
    "true_capacity_mah": pl.Float64(),
    "true_runtime_days": pl.Float64(),
    "true_runtime_source": pl.String(),
    "true_runtime_censored": pl.Boolean(),
    "days_offline": pl.Float64(),
    "longest_gap_hours": pl.Int32(),
    "firmware_changed_mid_month": pl.Boolean(),
    "voltage_anomalies": pl.Int32(),
    "missing_capacity_test": pl.Boolean(),
    "suggest_use": pl.Boolean(),
}

SERIES_SCHEMA: dict[str, pl.DataType] = {
    "sample_id": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "battery_mv": pl.Int32(),
    "temperature_c": pl.Float32(),
    "radio_tx": pl.Int32(),
    "radio_rx": pl.Int32(),
    "valve_travel_total": pl.Float32(),
    "valve_travel_pct": pl.Float32(),
    "motor_ms": pl.Int32(),
}

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
