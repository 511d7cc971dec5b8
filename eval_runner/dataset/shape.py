"""Shape one month's field data into the dataset and series frames (pure polars, no I/O).

A sample is one device-month, predicted "as of" the month's last capacity test of the device (the
truth); a device without a test is still a sample, flagged ``missing_capacity_test`` with as_of at the
month's end, so reviewers see it and evaluation skips it. What the library receives (versions in force,
battery, series) is built by ``eval_runner.library.inputs``, the same code the fleet snapshot uses, so a
library sees in evaluation what it will see in the fleet. Output order is fixed (sample_id, ts) so
equal inputs give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from eval_runner.contracts import (
    DATASET_SCHEMA,
    BatteryParameters,
    CapacityTest,
    DeviceRecord,
    VersionEvent,
)
from eval_runner.keys import Month
from eval_runner.library.inputs import (
    BATTERY_PARAMETER_SCHEMA,
    VERSION_EVENT_SCHEMA,
    DeviceSources,
    library_input,
    version_in_force,
)

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
    "runtime_source": pl.String(),
    "runtime_censored": pl.Boolean(),
}
# events.parquet (a file of the dataset, not a library input): version changes within each sample's
# series window, so the review UI can mark firmware changes on the plots.
EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "sample_id": pl.String(),
    "effective_at": _UTC,
    "component": pl.String(),
    "version": pl.String(),
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
                "runtime_source": [t.runtime_source for t in tests],
                "runtime_censored": [t.runtime_censored for t in tests],
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
            pl.col("runtime_source").alias("true_runtime_source"),
            pl.col("runtime_censored").alias("true_runtime_censored"),
            pl.col("tested_at").is_null().alias("missing_capacity_test"),
        )
        .sort("sample_id")
    )


def attach_month_versions(month: Month, samples: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Add the dataset's own version columns: firmware at month start and the month's changes.

    These are segment labels and quality signals for reviewers and the gate, not library inputs (those
    come from ``library_input``). ``firmware_version`` is the version in force at the month start by
    the library-input rule; a device with none then (installed during the month) is labelled with its
    first firmware of the month, so it still falls in a firmware segment.
    """
    start, end = month_bounds(month)
    keys = samples.select("sample_id", "device_id", pl.lit(start, dtype=_UTC).alias("as_of"))
    at_start = version_in_force(keys, events, "firmware", "firmware_version")
    joined = keys.join(events, on="device_id", how="inner")
    first = (
        joined.filter((pl.col("component") == "firmware") & (pl.col("effective_at") < end))
        .sort("sample_id", "effective_at", "version")
        .group_by("sample_id")
        .agg(pl.col("version").first().alias("_first"))
    )
    in_month = (pl.col("effective_at") >= start) & (pl.col("effective_at") < end)
    changes = joined.group_by("sample_id").agg(
        ((pl.col("component") == "software") & in_month).sum().cast(pl.Int32).alias("software_changes"),
        ((pl.col("component") == "firmware") & in_month).any().alias("firmware_changed_mid_month"),
    )
    firmware = at_start.join(first, on="sample_id", how="left").select(
        "sample_id", pl.coalesce("firmware_version", "_first").alias("firmware_version")
    )
    return (
        samples.join(firmware, on="sample_id", how="left")
        .join(changes, on="sample_id", how="left")
        .with_columns(
            pl.col("software_changes").fill_null(0),
            pl.col("firmware_changed_mid_month").fill_null(False),
        )
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
            & pl.col("hardware_revision").is_not_null()  # no version in force at as_of: see library.inputs
            & pl.col("firmware_version_at_as_of").is_not_null()
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
    library, series = library_input(
        samples.select("sample_id", "device_id", "as_of"),
        DeviceSources(
            version_events=sources.version_events,
            battery_parameters=sources.battery_parameters,
            sensor_logs=sources.sensor_logs,
            valve_movements=sources.valve_movements,
        ),
        window=SERIES_WINDOW,
    )
    samples = samples.join(library.drop("device_id", "as_of"), on="sample_id", how="left")
    samples = attach_month_versions(month, samples, sources.version_events)
    samples = quality_signals(samples, series, policy)
    dataset = samples.select([pl.col(name).cast(dtype) for name, dtype in DATASET_SCHEMA.items()]).sort("sample_id")
    return dataset, series
