"""The oracle: library input (dataset, series) built straight from the simulation's frames and truth.

This is what a correct extractor must produce from the served sources for the same month; it feeds the
library-ranking test and is the reference the extractor is cross-checked against. Where the sources
cannot know something (the pack in place at ``as_of``) the oracle uses the simulator's truth.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from fieldsim.contracts import DATASET_SCHEMA, LIBRARY_SAMPLE_COLUMNS, SERIES_SCHEMA
from fieldsim.fleet import UTC_US, Fleet

WINDOW_DAYS = 30  # SERIES_SCHEMA: the 30 days up to as_of
_VOLTAGE_RANGE_MV = (1500, 4000)  # readings outside are glitches (scaling bugs, dropouts)
_NOMINAL = {"alkaline": 2600.0, "lithium": 3000.0}
_CUTOFF = {"A": 2400, "B": 2300, "C": 2300}


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    year, mon = (int(p) for p in month.split("-"))
    start = datetime(year, mon, 1, tzinfo=UTC)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _latest(events: pl.DataFrame, component: str, at: pl.Expr, name: str, samples: pl.DataFrame) -> pl.DataFrame:
    """For each sample, the version of ``component`` in effect just before the sample's ``at`` moment."""
    ev = events.filter(pl.col("component") == component).select(
        "device_id", pl.col("effective_at").alias("_at"), pl.col("version").alias(name)
    )
    keys = samples.select("sample_id", "device_id", at.alias("_at")).sort("_at")
    # Half-open: an event takes effect at effective_at, so "at month start" excludes events at that instant.
    return keys.join_asof(
        ev.sort("_at"),
        on="_at",
        by="device_id",
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    ).select("sample_id", name)


def _pack_at(fleet: Fleet, samples: pl.DataFrame) -> pl.DataFrame:
    keys = samples.select("sample_id", "device_id", pl.col("as_of").alias("_at")).sort("_at")
    packs = fleet.packs.select(
        "device_id", pl.col("installed_at").alias("_at"), "chemistry", pl.col("installed_at")
    ).sort("_at")
    return keys.join_asof(packs, on="_at", by="device_id", strategy="backward", check_sortedness=False).select(
        "sample_id",
        pl.col("chemistry").alias("battery_chemistry"),
        pl.col("installed_at").alias("battery_installed_at"),
    )


def _device_range(frame: pl.DataFrame, first: str, last: str) -> pl.DataFrame:
    """Rows of devices ``first`` .. ``last`` of a frame sorted by device_id (a slice, no scan)."""
    ids = frame["device_id"]
    lo = int(ids.search_sorted(first, side="left"))
    hi = int(ids.search_sorted(last, side="right"))
    return frame.slice(lo, hi - lo)


def series_for(
    fleet: Fleet, samples: pl.DataFrame, window_days: int = WINDOW_DAYS, chunk_devices: int = 5_000
) -> pl.DataFrame:
    """Hourly SERIES_SCHEMA rows of ``window_days`` before each sample's ``as_of`` (as_of excluded).

    Works through the samples in device ranges, so memory stays bounded for 100k-device fleets.
    """
    window = timedelta(days=window_days)
    ordered = samples.select("sample_id", "device_id", "as_of").sort("device_id")
    parts = []
    for offset in range(0, ordered.height, chunk_devices):
        chunk = ordered.slice(offset, chunk_devices)
        first, last = chunk["device_id"][0], chunk["device_id"][-1]
        in_window = (pl.col("ts") >= pl.col("as_of") - window) & (pl.col("ts") < pl.col("as_of"))
        # Only movements before as_of count, even inside as_of's own hour: later ones have not happened yet.
        moves = (
            chunk.join(_device_range(fleet.valve_movements, first, last), on="device_id")
            .filter(in_window)
            .group_by("sample_id", pl.col("ts").dt.truncate("1h"))
            .agg(
                pl.col("travel_pct").sum().alias("valve_travel_pct"),
                pl.col("motor_ms").sum().alias("motor_ms"),
            )
        )
        rows = (
            chunk.join(_device_range(fleet.sensor_logs, first, last), on="device_id")
            .filter(in_window)
            .join(moves, on=["sample_id", "ts"], how="left")
            .with_columns(pl.col("valve_travel_pct").fill_null(0.0), pl.col("motor_ms").fill_null(0))
        )
        parts.append(rows.select([pl.col(c).cast(t) for c, t in SERIES_SCHEMA.items()]))
    if not parts:
        return pl.DataFrame(schema=SERIES_SCHEMA)
    return pl.concat(parts).sort("sample_id", "ts")


def month_dataset(fleet: Fleet, month: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(dataset, series) of one month, in DATASET_SCHEMA and SERIES_SCHEMA."""
    start, end = _month_bounds(month)
    tests = fleet.capacity_tests.filter((pl.col("tested_at") >= start) & (pl.col("tested_at") < end))
    samples = (
        fleet.devices.select("device_id")
        .join(tests, on="device_id", how="left")
        .with_columns(
            pl.concat_str(pl.col("device_id"), pl.lit(f"/{month}")).alias("sample_id"),
            pl.lit(month).alias("month"),
            pl.col("tested_at").fill_null(pl.lit(end, dtype=UTC_US)).alias("as_of"),
            pl.col("remaining_mah").alias("true_capacity_mah"),
            pl.col("remaining_runtime_days").alias("true_runtime_days"),
            pl.col("runtime_source").alias("true_runtime_source"),
            pl.col("runtime_censored").alias("true_runtime_censored"),
            pl.col("test_id").is_null().alias("missing_capacity_test"),
        )
    )
    events = fleet.version_events
    hardware = _latest(events, "hardware", pl.col("as_of"), "hardware_revision", samples)
    fw_start = _latest(events, "firmware", pl.lit(start, dtype=UTC_US), "firmware_version", samples)
    fw_as_of = _latest(events, "firmware", pl.col("as_of"), "firmware_version_at_as_of", samples)
    in_month = events.filter((pl.col("effective_at") >= start) & (pl.col("effective_at") < end))
    changes = in_month.group_by("device_id").agg(
        (pl.col("component") == "software").sum().cast(pl.Int32).alias("software_changes"),
        (pl.col("component") == "firmware").any().alias("firmware_changed_mid_month"),
    )
    hours_in_month = int((end - start).total_seconds() // 3600)
    logs = fleet.sensor_logs.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
    quality = (
        logs.sort("device_id", "ts")
        .group_by("device_id", maintain_order=True)
        .agg(
            pl.len().alias("_rows"),
            pl.col("battery_mv").is_between(*_VOLTAGE_RANGE_MV).not_().sum().cast(pl.Int32).alias("voltage_anomalies"),
            # Longest gap: the largest step between consecutive rows, and the edges of the month.
            pl.max_horizontal(
                (pl.col("ts").diff().dt.total_hours().max().fill_null(1) - 1),
                (pl.col("ts").first() - pl.lit(start, dtype=UTC_US)).dt.total_hours(),
                (pl.lit(end, dtype=UTC_US) - pl.col("ts").last()).dt.total_hours() - 1,
            )
            .cast(pl.Int32)
            .alias("longest_gap_hours"),
        )
    )
    dataset = (
        samples.join(hardware, on="sample_id")
        .join(fw_start, on="sample_id")
        .join(fw_as_of, on="sample_id")
        .join(_pack_at(fleet, samples), on="sample_id")
        .join(changes, on="device_id", how="left")
        .join(quality, on="device_id", how="left")
        .with_columns(
            pl.col("software_changes").fill_null(0),
            pl.col("firmware_changed_mid_month").fill_null(False),
            pl.col("voltage_anomalies").fill_null(0),
            pl.col("longest_gap_hours").fill_null(hours_in_month),
            ((hours_in_month - pl.col("_rows").fill_null(0)) / 24.0).alias("days_offline"),
            pl.col("battery_chemistry").replace_strict(_NOMINAL, return_dtype=pl.Float64).alias("nominal_capacity_mah"),
            pl.col("hardware_revision").replace_strict(_CUTOFF, return_dtype=pl.Int32).alias("cutoff_mv"),
        )
        .with_columns(
            (
                ~pl.col("missing_capacity_test") & (pl.col("days_offline") < 5.0) & (pl.col("voltage_anomalies") < 5)
            ).alias("suggest_use")
        )
        .select([pl.col(c).cast(t) for c, t in DATASET_SCHEMA.items()])
        .sort("sample_id")
    )
    return dataset, series_for(fleet, dataset)


def library_samples(dataset: pl.DataFrame) -> pl.DataFrame:
    """Select the LIBRARY_SAMPLE_COLUMNS a generation-2 library receives, from a dataset-shaped frame."""
    return dataset.select(LIBRARY_SAMPLE_COLUMNS)


def snapshot_input(fleet: Fleet, as_of: datetime, window_days: int = WINDOW_DAYS) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Fleet-rollout input: one sample per device predicting at ``as_of`` from the last ``window_days``.

    Hardware and firmware come from the version history, chemistry and pack install time from the
    battery parameters (what the fleet step can read from the shards).
    """
    label = f"{as_of:%Y-%m-%d}"
    samples = fleet.devices.select(
        pl.concat_str(pl.col("device_id"), pl.lit(f"/{label}")).alias("sample_id"),
        "device_id",
        pl.lit(as_of, dtype=UTC_US).alias("as_of"),
    )
    hardware = _latest(fleet.version_events, "hardware", pl.col("as_of"), "hardware_revision", samples)
    firmware = _latest(fleet.version_events, "firmware", pl.col("as_of"), "firmware_version_at_as_of", samples)
    params = fleet.battery_parameters.select(
        "device_id",
        pl.col("chemistry").alias("battery_chemistry"),
        pl.col("nominal_capacity_mah").cast(pl.Float64),
        pl.col("cutoff_mv").cast(pl.Int32),
        pl.col("installed_at").alias("battery_installed_at"),
    )
    out = (
        samples.join(hardware, on="sample_id")
        .join(firmware, on="sample_id")
        .join(params, on="device_id")
        .select([pl.col(c).cast(DATASET_SCHEMA[c]) for c in LIBRARY_SAMPLE_COLUMNS])
        .sort("sample_id")
    )
    return out, series_for(fleet, out, window_days)
