"""What a library version receives for a device as of a moment, built one way for the dataset and the fleet.

The dataset build (``dataset/shape.py``) and the fleet snapshot (``fleet/snapshot.py``) both call
``library_input`` with the raw source rows and one key row per sample (sample_id, device_id, as_of). A
gate judges a library on the inputs it received in evaluation; a rollout is only as good as that verdict
if the library receives the same inputs in the fleet. So every field is defined by what was knowable
*at as_of* and nothing else: no "month start", no fallback to a later record, no row at or after as_of.
The rules, one per field:

- ``hardware_revision``, ``firmware_version_at_as_of``: the version *in force* at as_of, that is the
  ``version`` of the device's last event of that component with ``effective_at < as_of``. An event takes
  effect at ``effective_at``, so one at exactly as_of is not yet in force (the simulator's rule too).
  Two events at the same instant resolve to the greater version text, so row order never matters. A
  device with no such event has a null version (``UNKNOWN_VERSION``): the fleet cannot know a version it
  has no record of, so evaluation must not either (the dataset used to fall back to the month's first
  version, possibly one that took effect after as_of). The dataset does not suggest such samples.
- ``battery_chemistry``, ``nominal_capacity_mah``, ``cutoff_mv``, ``battery_installed_at``: the shards'
  current record of the device. The shards serve the current pack only, so when it went in after as_of
  the pack at as_of is unknown: with ``later_pack="null"`` (the dataset) the three pack fields are null
  and ``cutoff_mv``, the device's, is kept. The fleet snapshot passes ``later_pack="keep"``: its samples
  are also the configuration mode's view of the shards' current parameters. The two agree whenever
  as_of is "now" (no pack can have gone in after now); they differ only for a back-dated snapshot,
  which only simulations make. A device without parameters has all four null.
- series: the device's sensor rows with ``as_of - window <= ts < as_of``, ``ts`` truncated to the hour,
  with that hour's valve travel and motor time summed from the movements with
  ``as_of - window <= ts < as_of`` (a movement after as_of in as_of's own hour has not happened yet
  when the fleet predicts). ``window`` is 30 days in the dataset and ``FLEET_SERIES_DAYS`` in the fleet
  (see contracts): the one deliberate difference, which libraries must accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

import polars as pl

from eval_runner.contracts import DATASET_SCHEMA, LIBRARY_SAMPLE_COLUMNS, SERIES_SCHEMA
from eval_runner.errors import DataError

_UTC = pl.Datetime("us", "UTC")

# A version with no event in force at as_of: null in both the dataset and the fleet.
UNKNOWN_VERSION: Final = None

# The raw rows the input is built from (shards: version history, battery parameters; analytics
# database: sensor_logs, valve_movements). Sources may send more columns; these are the ones read.
VERSION_EVENT_SCHEMA: dict[str, pl.DataType] = {
    "device_id": pl.String(),
    "effective_at": _UTC,
    "component": pl.String(),
    "version": pl.String(),
}
BATTERY_PARAMETER_SCHEMA: dict[str, pl.DataType] = {
    "device_id": pl.String(),
    "chemistry": pl.String(),
    "nominal_capacity_mah": pl.Float64(),
    "cutoff_mv": pl.Int32(),
    "installed_at": _UTC,
}
_FROM_VALVES = ("valve_travel_pct", "motor_ms")
SENSOR_ROW_SCHEMA: dict[str, pl.DataType] = {
    "device_id": pl.String(),
    **{name: dtype for name, dtype in SERIES_SCHEMA.items() if name != "sample_id" and name not in _FROM_VALVES},
}
VALVE_ROW_SCHEMA: dict[str, pl.DataType] = {
    "device_id": pl.String(),
    "ts": _UTC,
    "travel_pct": pl.Float32(),
    "motor_ms": pl.Int32(),
}
KEY_SCHEMA: dict[str, pl.DataType] = {"sample_id": pl.String(), "device_id": pl.String(), "as_of": _UTC}


@dataclass(frozen=True)
class DeviceSources:
    """Raw source rows of some devices (frames with at least the columns of the schemas above)."""

    version_events: pl.DataFrame
    battery_parameters: pl.DataFrame
    sensor_logs: pl.DataFrame
    valve_movements: pl.DataFrame


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType], *, what: str) -> pl.DataFrame:
    """Select and cast ``schema``'s columns of ``frame``; a missing column is a DataError naming ``what``."""
    missing = [name for name in schema if name not in frame.columns]
    if missing:
        raise DataError(f"library input: {what} lack the columns {missing} (have {frame.columns})")
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


def version_in_force(keys: pl.DataFrame, events: pl.DataFrame, component: str, name: str) -> pl.DataFrame:
    """Per key row (sample_id, device_id, as_of): ``component``'s version in force at as_of, as ``name``.

    The rule is the module's: last event with ``effective_at < as_of``, ties by version text, else null.
    Every sample_id of ``keys`` comes back once.
    """
    own = events.filter(pl.col("component") == component).select("device_id", "effective_at", "version")
    # Few events per device, so joining them to their samples is cheap and needs no asof join (whose
    # choice among equal timestamps is not specified).
    in_force = (
        keys.select("sample_id", "device_id", "as_of")
        .join(own, on="device_id", how="inner")
        .filter(pl.col("effective_at") < pl.col("as_of"))
        .sort("sample_id", "effective_at", "version")
        .group_by("sample_id")
        .agg(pl.col("version").last().alias(name))
    )
    return keys.select("sample_id").join(in_force, on="sample_id", how="left")


LaterPack = Literal["null", "keep"]


def battery_at(keys: pl.DataFrame, parameters: pl.DataFrame, *, later_pack: LaterPack = "null") -> pl.DataFrame:
    """Per key row: battery chemistry, nominal capacity, cut-off and pack install time (see the module rule)."""
    joined = keys.select("sample_id", "device_id", "as_of").join(
        parameters.select(
            "device_id",
            pl.col("chemistry").alias("battery_chemistry"),
            "nominal_capacity_mah",
            "cutoff_mv",
            pl.col("installed_at").alias("battery_installed_at"),
        ),
        on="device_id",
        how="left",
    )
    unknown = pl.col("battery_installed_at") > pl.col("as_of") if later_pack == "null" else pl.lit(False)
    return joined.select(
        "sample_id",
        *(
            pl.when(unknown).then(None).otherwise(pl.col(name)).alias(name)
            for name in ("battery_chemistry", "nominal_capacity_mah", "battery_installed_at")
        ),
        "cutoff_mv",
    )


def library_samples(
    keys: pl.DataFrame, events: pl.DataFrame, parameters: pl.DataFrame, *, later_pack: LaterPack = "null"
) -> pl.DataFrame:
    """LIBRARY_SAMPLE_COLUMNS (dataset types) for every key row, sorted by sample_id."""
    out = keys
    for frame in (
        version_in_force(keys, events, "hardware", "hardware_revision"),
        version_in_force(keys, events, "firmware", "firmware_version_at_as_of"),
        battery_at(keys, parameters, later_pack=later_pack),
    ):
        out = out.join(frame, on="sample_id", how="left")
    return out.select(pl.col(name).cast(DATASET_SCHEMA[name]) for name in LIBRARY_SAMPLE_COLUMNS).sort("sample_id")


def library_series(
    keys: pl.DataFrame, sensor_logs: pl.DataFrame, valve_movements: pl.DataFrame, *, window: timedelta
) -> pl.DataFrame:
    """SERIES_SCHEMA rows of the ``window`` before each key row's as_of, sorted by sample_id, ts."""
    windows = keys.select("sample_id", "device_id", "as_of")
    in_window = (pl.col("ts") >= pl.col("as_of") - window) & (pl.col("ts") < pl.col("as_of"))
    per_hour = (
        valve_movements.join(windows, on="device_id", how="inner")
        .filter(in_window)
        .group_by("sample_id", pl.col("ts").dt.truncate("1h"))
        .agg(
            pl.col("travel_pct").sum().cast(pl.Float32).alias("valve_travel_pct"),
            pl.col("motor_ms").sum().cast(pl.Int32).alias("motor_ms"),
        )
    )
    return (
        sensor_logs.join(windows, on="device_id", how="inner")
        .filter(in_window)
        .with_columns(pl.col("ts").dt.truncate("1h"))
        .join(per_hour, on=["sample_id", "ts"], how="left")
        .with_columns(pl.col("valve_travel_pct").fill_null(0.0), pl.col("motor_ms").fill_null(0))
        .select(pl.col(name).cast(dtype) for name, dtype in SERIES_SCHEMA.items())
        .sort("sample_id", "ts")
    )


def library_input(
    keys: pl.DataFrame, sources: DeviceSources, *, window: timedelta, later_pack: LaterPack = "null"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(samples, series) the library receives for ``keys`` (sample_id, device_id, as_of), by the rules above."""
    keys = conform(keys, KEY_SCHEMA, what="sample keys")
    events = conform(sources.version_events, VERSION_EVENT_SCHEMA, what="version events")
    parameters = conform(sources.battery_parameters, BATTERY_PARAMETER_SCHEMA, what="battery parameters")
    sensor = conform(sources.sensor_logs, SENSOR_ROW_SCHEMA, what="sensor rows")
    valves = conform(sources.valve_movements, VALVE_ROW_SCHEMA, what="valve movements")
    samples = library_samples(keys, events, parameters, later_pack=later_pack)
    return samples, library_series(keys, sensor, valves, window=window)
