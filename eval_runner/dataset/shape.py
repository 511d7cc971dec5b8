"""Shape one month's field data into the dataset and series frames (pure polars, no I/O).

A sample is one device-month, predicted "as of" the month's last capacity test of the device (the
truth); a device without a test is still a sample, flagged ``missing_capacity_test`` with as_of at the
month's end, so reviewers see it and evaluation skips it. Output order is fixed (sample_id, ts) so
equal inputs give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from eval_runner.contracts import (
    DATASET_SCHEMA,
    SERIES_SCHEMA,
    BatteryParameters,
    CapacityTest,
    DeviceRecord,
    VersionEvent,
)
from eval_runner.keys import Month

SERIES_WINDOW = timedelta(days=30)
_HOUR = timedelta(hours=1)
_UTC = pl.Datetime("us", "UTC")

DEVICE_SCHEMA: dict[str, pl.DataType] = {
    "device_id": pl.String(),
    "site_id": pl.String(),
    "installed_at": _UTC,
}
CAPACITY_TEST_SCHEMA: dict[str, pl.DataType] = {
    "test_id": pl.String(),
    "device_id": pl.String(),
    "tested_at": _UTC,
    "remaining_mah": pl.Float64(),
    "remaining_runtime_days": pl.Float64(),
}
VERSION_EVENT_SCHEMA: dict[str, pl.DataType] = {
    "device_id": pl.String(),
    "effective_at": _UTC,
    "component": pl.String(),
    "version": pl.String(),
}
# events.parquet (a file of the dataset, not a library input): version changes within each sample's
# series window, so the review UI can mark firmware changes on the plots.
EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "sample_id": pl.String(),
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


@dataclass(frozen=True)
class SuggestionPolicy:
    """Thresholds behind ``suggest_use`` and ``voltage_anomalies``; recorded in the manifest."""

    max_days_offline: float = 3.0
    max_gap_hours: int = 48
    max_voltage_anomalies: int = 4
    # A 2xAA pack reads 1.6-3.4 V (lithium up to ~3.6 V, 4 V with margin); outside that the reading is a bug (scaling,
    # wrong cells), not a state of charge.
    min_plausible_mv: int = 1500
    max_plausible_mv: int = 4000
    # Under the light load of a valve, voltage moves a few mV per hour; a bigger step is a swap, a
    # loose contact or end-of-life oscillation, all of which make a sample suspect.
    max_step_mv: int = 300

    def as_dict(self) -> dict[str, float]:
        """Return the thresholds as the manifest records them."""
        return {key: float(value) for key, value in sorted(asdict(self).items())}


@dataclass(frozen=True)
class MonthSources:
    """Everything read from the field sources for one month (frames in the schemas above)."""

    devices: pl.DataFrame
    capacity_tests: pl.DataFrame
    version_events: pl.DataFrame
    battery_parameters: pl.DataFrame
    sensor_logs: pl.DataFrame  # analytics.SENSOR_LOG_SCHEMA, ts in [month start - 30 days, month end)
    valve_movements: pl.DataFrame  # analytics.VALVE_MOVEMENT_SCHEMA, same window


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def records_to_frames(
    devices: Sequence[DeviceRecord],
    tests: Sequence[CapacityTest],
    events: Sequence[VersionEvent],
    params: Sequence[BatteryParameters],
) -> dict[str, pl.DataFrame]:
    """Turn the shards' records into frames: devices, capacity_tests, version_events, battery_parameters."""
    return {
        "devices": pl.DataFrame(
            {
                "device_id": [d.device_id for d in devices],
                "site_id": [d.site_id for d in devices],
                "installed_at": [_utc(d.installed_at) for d in devices],
            },
            schema=DEVICE_SCHEMA,
        ),
        "capacity_tests": pl.DataFrame(
            {
                "test_id": [t.test_id for t in tests],
                "device_id": [t.device_id for t in tests],
                "tested_at": [_utc(t.tested_at) for t in tests],
                "remaining_mah": [t.remaining_mah for t in tests],
                "remaining_runtime_days": [t.remaining_runtime_days for t in tests],
            },
            schema=CAPACITY_TEST_SCHEMA,
        ),
        "version_events": pl.DataFrame(
            {
                "device_id": [v.device_id for v in events],
                "effective_at": [_utc(v.effective_at) for v in events],
                "component": [v.component for v in events],
                "version": [v.version for v in events],
            },
            schema=VERSION_EVENT_SCHEMA,
        ),
        "battery_parameters": pl.DataFrame(
            {
                "device_id": [p.device_id for p in params],
                "chemistry": [p.chemistry for p in params],
                "nominal_capacity_mah": [p.nominal_capacity_mah for p in params],
                "cutoff_mv": [p.cutoff_mv for p in params],
                "installed_at": [_utc(p.installed_at) for p in params],
            },
            schema=BATTERY_PARAMETER_SCHEMA,
        ),
    }


def month_bounds(month: Month) -> tuple[datetime, datetime]:
    """Start and exclusive end of ``month`` as UTC datetimes."""
    start, end = month.start, month.end
    return (
        datetime(start.year, start.month, start.day, tzinfo=UTC),
        datetime(end.year, end.month, end.day, tzinfo=UTC),
    )


def read_window(month: Month) -> tuple[datetime, datetime]:
    """Return the time range of analytics rows a month needs (series reach 30 days before as_of)."""
    start, end = month_bounds(month)
    return start - SERIES_WINDOW, end


def samples_for_month(month: Month, devices: pl.DataFrame, tests: pl.DataFrame) -> pl.DataFrame:
    """One row per device installed before the month's end, with the month's last capacity test."""
    start, end = month_bounds(month)
    last_test = (
        tests.filter((pl.col("tested_at") >= start) & (pl.col("tested_at") < end))
        .sort("device_id", "tested_at", "test_id")
        .group_by("device_id")
        .last()
    )
    return (
        devices.filter(pl.col("installed_at") < end)
        .join(last_test, on="device_id", how="left")
        .select(
            (pl.col("device_id") + f"/{month}").alias("sample_id"),
            pl.lit(str(month)).alias("month"),
            "device_id",
            pl.coalesce(pl.col("tested_at"), pl.lit(end, dtype=_UTC)).alias("as_of"),
            pl.col("installed_at").alias("device_installed_at"),
            pl.col("remaining_mah").alias("true_capacity_mah"),
            pl.col("remaining_runtime_days").alias("true_runtime_days"),
            pl.col("tested_at").is_null().alias("missing_capacity_test"),
        )
        .sort("sample_id")
    )


def attach_versions(month: Month, samples: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Add hardware/firmware at month start, firmware at as_of, and the month's changes.

    An event takes effect at ``effective_at``, so the version "at" a moment is the last event strictly
    before it (an update at 00:00 on the 1st is a change during the month). A device that has no
    event before the month start (installed during the month) gets its first version instead.
    """
    start, end = month_bounds(month)
    keys = samples.select("sample_id", "device_id", "as_of", pl.lit(start, dtype=_UTC).alias("start"))
    # Few events per device, so joining them to their device's sample is cheap and needs no asof join.
    joined = keys.join(events, on="device_id", how="inner").sort("sample_id", "effective_at", "version")

    def version_at(component: str, at: str, name: str) -> pl.DataFrame:
        own = joined.filter(pl.col("component") == component)
        before = (
            own.filter(pl.col("effective_at") < pl.col(at))
            .group_by("sample_id")
            .agg(pl.col("version").last().alias(name))
        )
        first = (
            own.filter(pl.col("effective_at") < end)
            .group_by("sample_id")
            .agg(pl.col("version").first().alias(f"_{name}_first"))
        )
        return first.join(before, on="sample_id", how="left").select(
            "sample_id", pl.coalesce(pl.col(name), pl.col(f"_{name}_first")).alias(name)
        )

    in_month = (pl.col("effective_at") >= start) & (pl.col("effective_at") < end)
    changes = joined.group_by("sample_id").agg(
        ((pl.col("component") == "software") & in_month).sum().cast(pl.Int32).alias("software_changes"),
        ((pl.col("component") == "firmware") & in_month).any().alias("firmware_changed_mid_month"),
    )
    out = samples
    for frame in (
        version_at("hardware", "start", "hardware_revision"),
        version_at("firmware", "start", "firmware_version"),
        version_at("firmware", "as_of", "firmware_version_at_as_of"),
        changes,
    ):
        out = out.join(frame, on="sample_id", how="left")
    return out.with_columns(
        pl.col("software_changes").fill_null(0),
        pl.col("firmware_changed_mid_month").fill_null(False),
    )


def attach_battery(samples: pl.DataFrame, parameters: pl.DataFrame) -> pl.DataFrame:
    """Add the battery parameters (chemistry, nominal capacity, cut-off, pack install time).

    The shards serve the *current* parameters. When the pack they describe went in after the
    sample's as_of, the pack at as_of is unknown: its fields stay null (the cut-off belongs to the
    device and is kept), which also keeps the sample from being suggested.
    """
    joined = samples.join(
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
    later_pack = pl.col("battery_installed_at") > pl.col("as_of")
    return joined.with_columns(
        pl.when(later_pack).then(None).otherwise(pl.col(name)).alias(name)
        for name in ("battery_chemistry", "nominal_capacity_mah", "battery_installed_at")
    )


def build_series(samples: pl.DataFrame, sensor_logs: pl.DataFrame, movements: pl.DataFrame) -> pl.DataFrame:
    """Hourly rows of the 30 days before each sample's as_of, with the hour's valve travel and motor time."""
    per_hour = (
        movements.with_columns(pl.col("ts").dt.truncate("1h"))
        .group_by("device_id", "ts")
        .agg(
            pl.col("travel_pct").sum().cast(pl.Float32).alias("valve_travel_pct"),
            pl.col("motor_ms").sum().cast(pl.Int32).alias("motor_ms"),
        )
    )
    windows = samples.select("sample_id", "device_id", "as_of")
    return (
        sensor_logs.join(windows, on="device_id", how="inner")
        .filter((pl.col("ts") >= pl.col("as_of") - SERIES_WINDOW) & (pl.col("ts") < pl.col("as_of")))
        .join(per_hour, on=["device_id", "ts"], how="left")
        .with_columns(pl.col("valve_travel_pct").fill_null(0.0), pl.col("motor_ms").fill_null(0))
        .select([pl.col(name).cast(dtype) for name, dtype in SERIES_SCHEMA.items()])
        .sort("sample_id", "ts")
    )


def _ceil_hour(column: pl.Expr) -> pl.Expr:
    return (column + _HOUR - timedelta(microseconds=1)).dt.truncate("1h")


def quality_signals(samples: pl.DataFrame, series: pl.DataFrame, policy: SuggestionPolicy) -> pl.DataFrame:
    """Add days offline, longest gap, voltage anomalies and the resulting ``suggest_use``."""
    mv = pl.col("battery_mv")
    # A failed reading (null) is not an anomaly of the cell; an implausible value is, and so is a jump
    # between plausible neighbours (swap, loose contact). Steps are taken over plausible readings only,
    # so one glitch counts once, not three times.
    implausible = (mv < policy.min_plausible_mv) | (mv > policy.max_plausible_mv)
    plausible = mv.filter(mv.is_not_null() & ~implausible)
    per_sample = series.group_by("sample_id").agg(
        pl.len().alias("observed_hours"),
        pl.col("ts").min().alias("first_ts"),
        pl.col("ts").max().alias("last_ts"),
        (pl.col("ts").diff().dt.total_hours() - 1).max().alias("inner_gap"),
        (implausible.sum() + (plausible.diff().abs() > policy.max_step_mv).sum()).alias("voltage_anomalies"),
    )
    first_slot = _ceil_hour(pl.max_horizontal(pl.col("as_of") - SERIES_WINDOW, pl.col("device_installed_at")))
    end_slot = _ceil_hour(pl.col("as_of"))  # exclusive
    slots = (end_slot - first_slot).dt.total_hours().clip(lower_bound=0)
    observed = pl.col("observed_hours").fill_null(0)
    longest = (
        pl.when(observed == 0)
        .then(slots)
        .otherwise(
            pl.max_horizontal(
                (pl.col("first_ts") - first_slot).dt.total_hours(),
                (end_slot - _HOUR - pl.col("last_ts")).dt.total_hours(),
                pl.col("inner_gap").fill_null(0),
            )
        )
    )
    out = samples.join(per_sample, on="sample_id", how="left").with_columns(
        ((slots - observed).clip(lower_bound=0) / 24.0).cast(pl.Float64).alias("days_offline"),
        longest.clip(lower_bound=0).cast(pl.Int32).alias("longest_gap_hours"),
        pl.col("voltage_anomalies").fill_null(0).cast(pl.Int32),
    )
    return out.with_columns(
        (
            ~pl.col("missing_capacity_test")
            & ~pl.col("firmware_changed_mid_month")
            & (pl.col("days_offline") <= policy.max_days_offline)
            & (pl.col("longest_gap_hours") <= policy.max_gap_hours)
            & (pl.col("voltage_anomalies") <= policy.max_voltage_anomalies)
            & pl.col("battery_chemistry").is_not_null()
        ).alias("suggest_use")
    )


def sample_events(dataset: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Version events inside each sample's series window (``as_of`` - 30 days up to ``as_of``)."""
    return (
        dataset.select("sample_id", "device_id", "as_of")
        .join(events, on="device_id", how="inner")
        .filter(
            (pl.col("effective_at") >= pl.col("as_of") - SERIES_WINDOW) & (pl.col("effective_at") < pl.col("as_of"))
        )
        .select([pl.col(name).cast(dtype) for name, dtype in EVENTS_SCHEMA.items()])
        .sort("sample_id", "effective_at", "component", "version")
    )


def shape_month(
    month: Month, sources: MonthSources, policy: SuggestionPolicy | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Build (dataset, series) for ``month`` in the contract schemas, sorted for byte-identical output."""
    policy = policy or SuggestionPolicy()
    samples = samples_for_month(month, sources.devices, sources.capacity_tests)
    samples = attach_versions(month, samples, sources.version_events)
    samples = attach_battery(samples, sources.battery_parameters)
    series = build_series(samples, sources.sensor_logs, sources.valve_movements)
    samples = quality_signals(samples, series, policy)
    dataset = samples.select([pl.col(name).cast(dtype) for name, dtype in DATASET_SCHEMA.items()]).sort("sample_id")
    return dataset, series
