"""Pure per-mode logic: batch rows from predictions, the published fleet tables, the configuration diff."""

from __future__ import annotations

import hashlib

import polars as pl

from eval_runner.errors import DataError
from eval_runner.fleet.models import ParameterTarget

# What a `fleet` / `fleet-q10-distributions` batch result holds: one row per device.
FLEET_ROW_SCHEMA: dict[str, pl.DataType] = {
    "device_id": pl.String(),
    "batch": pl.Int32(),
    "hardware_revision": pl.String(),
    "battery_chemistry": pl.String(),
    "nominal_capacity_mah": pl.Float64(),
    "capacity_mah_p10": pl.Float64(),
    "capacity_mah_p50": pl.Float64(),
    "capacity_mah_p90": pl.Float64(),
    "runtime_days_p10": pl.Float64(),
    "runtime_days_p50": pl.Float64(),
    "runtime_days_p90": pl.Float64(),
}

# What a `configuration` batch result holds: one row per device, whether it changed or not.
CONFIG_ROW_SCHEMA: dict[str, pl.DataType] = {
    "device_id": pl.String(),
    "batch": pl.Int32(),
    "action": pl.String(),  # unchanged | would_update | updated | failed
    "battery_chemistry": pl.String(),
    "previous_nominal_capacity_mah": pl.Float64(),
    "previous_cutoff_mv": pl.Int32(),
    "previous_installed_at": pl.Datetime("us", "UTC"),
    "target_nominal_capacity_mah": pl.Float64(),
    "target_cutoff_mv": pl.Int32(),
    "idempotency_key": pl.String(),
    "etag_after": pl.String(),
    "error": pl.String(),
    # Whether our PUT changed the device: true for "updated" and for a failure after the write (its
    # journal entry was lost), false when nothing was written, null when nobody knows (an answer lost
    # and the read-back failed). The rollback restores exactly the true ones.
    "written": pl.Boolean(),
}

FAILED_COLUMNS = ("device_id", "batch", "battery_chemistry", "error", "written")

ROLLBACK_COLUMNS = (
    "device_id",
    "battery_chemistry",
    "previous_nominal_capacity_mah",
    "previous_cutoff_mv",
    "previous_installed_at",
    "etag_after",
)

RUNTIME_BUCKET_DAYS = 30
CAPACITY_BUCKET_PCT = 10


def fleet_rows(samples: pl.DataFrame, predictions: pl.DataFrame, batch: int) -> pl.DataFrame:
    """Join a batch's samples with the library's predictions into FLEET_ROW_SCHEMA, sorted by device."""
    joined = samples.join(predictions, on="sample_id", how="left", validate="1:1")
    if joined.height != samples.height:
        raise DataError(f"batch {batch}: {joined.height} prediction rows for {samples.height} samples")
    return (
        joined.with_columns(pl.lit(batch, dtype=pl.Int32()).alias("batch"))
        .select(pl.col(name).cast(dtype) for name, dtype in FLEET_ROW_SCHEMA.items())
        .sort("device_id")
    )


def fleet_results(rows: pl.DataFrame) -> pl.DataFrame:
    """Build the published `fleet` table: per device Q10/Q50/Q90 of remaining capacity and runtime."""
    return rows.drop("batch").sort("device_id")


def q10_distributions(rows: pl.DataFrame) -> pl.DataFrame:
    """Count devices per Q10 bucket, overall and per hardware revision (`fleet-q10-distributions`).

    Runtime Q10 in 30-day ranges, capacity Q10 in 10 % ranges of the nominal capacity. A device without
    a Q10 (a generation-1 library, or no usable data) lands in a bucket with null bounds rather than
    disappearing, so bucket counts always add up to the fleet.
    """
    runtime_lower = (pl.col("runtime_days_p10") // RUNTIME_BUCKET_DAYS * RUNTIME_BUCKET_DAYS).cast(pl.Float64())
    capacity_pct = pl.col("capacity_mah_p10") / pl.col("nominal_capacity_mah") * 100
    capacity_lower = (capacity_pct // CAPACITY_BUCKET_PCT * CAPACITY_BUCKET_PCT).cast(pl.Float64())
    long = pl.concat(
        [
            rows.select(
                "hardware_revision",
                pl.lit("runtime_days_p10").alias("quantity"),
                runtime_lower.alias("bucket_lower"),
                (runtime_lower + RUNTIME_BUCKET_DAYS).alias("bucket_upper"),
            ),
            rows.select(
                "hardware_revision",
                pl.lit("capacity_pct_p10").alias("quantity"),
                capacity_lower.alias("bucket_lower"),
                (capacity_lower + CAPACITY_BUCKET_PCT).alias("bucket_upper"),
            ),
        ]
    )
    keys = ["quantity", "bucket_lower", "bucket_upper"]
    overall = (
        long.group_by(keys)
        .agg(pl.len().cast(pl.Int64()).alias("devices"))
        .with_columns(pl.lit("overall").alias("scope"), pl.lit(None, dtype=pl.String()).alias("hardware_revision"))
    )
    per_revision = (
        long.group_by(["hardware_revision", *keys])
        .agg(pl.len().cast(pl.Int64()).alias("devices"))
        .with_columns(pl.lit("hardware_revision").alias("scope"))
    )
    columns = ["scope", "hardware_revision", *keys, "devices"]
    table = pl.concat([overall.select(columns), per_revision.select(columns)])
    group = ["scope", "hardware_revision", "quantity"]
    totals = table.group_by(group).agg(pl.col("devices").sum().alias("_total"))
    return (
        table.join(totals, on=["scope", "hardware_revision", "quantity"], nulls_equal=True)
        .with_columns((pl.col("devices") / pl.col("_total")).alias("share"))
        .drop("_total")
        .sort(["scope", "hardware_revision", "quantity", "bucket_lower"], nulls_last=True)
    )


def idempotency_key(run_id: str, device_id: str, target: ParameterTarget) -> str:
    """The base of a device's Idempotency-Key: run, device and what is written (see ``attempt_key``)."""
    text = f"{run_id}\n{device_id}\n{target.nominal_capacity_mah!r}\n{target.cutoff_mv}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def attempt_key(base: str, if_match: str) -> str:
    """The Idempotency-Key of one PUT: the base key and the ETag the write is based on.

    A retry of the same write (same ETag: its answer was lost) repeats the key, and the shard replays
    its first answer instead of writing twice; a write based on a newer ETag (after a 412, which the
    shard caches under the old key) is a new write with a new key, or it could never succeed.
    """
    return hashlib.sha256(f"{base}\n{if_match}".encode()).hexdigest()[:32]


def configuration_diff(
    samples: pl.DataFrame, targets: dict[str, ParameterTarget], *, run_id: str, batch: int
) -> pl.DataFrame:
    """Per device: current vs target parameters, action "would_update" or "unchanged" (CONFIG_ROW_SCHEMA).

    ``samples`` carries the snapshot's current parameters (battery_chemistry, nominal_capacity_mah,
    cutoff_mv, battery_installed_at). A chemistry without a target is a DataError naming the device.
    """
    unknown = samples.filter(~pl.col("battery_chemistry").is_in(list(targets)))
    if unknown.height:
        example = unknown.row(0, named=True)
        raise DataError(
            f"batch {batch}: device {example['device_id']!r} has chemistry {example['battery_chemistry']!r}, "
            f"which the configuration has no target for (targets: {sorted(targets)})"
        )
    target_frame = pl.DataFrame(
        {
            "battery_chemistry": list(targets),
            "target_nominal_capacity_mah": [t.nominal_capacity_mah for t in targets.values()],
            "target_cutoff_mv": [t.cutoff_mv for t in targets.values()],
        },
        schema={
            "battery_chemistry": pl.String(),
            "target_nominal_capacity_mah": pl.Float64(),
            "target_cutoff_mv": pl.Int32(),
        },
    )
    diff = samples.join(target_frame, on="battery_chemistry", how="left").with_columns(
        pl.lit(batch, dtype=pl.Int32()).alias("batch"),
        pl.col("nominal_capacity_mah").alias("previous_nominal_capacity_mah"),
        pl.col("cutoff_mv").alias("previous_cutoff_mv"),
        pl.col("battery_installed_at").alias("previous_installed_at"),
    )
    changed = (pl.col("previous_nominal_capacity_mah") != pl.col("target_nominal_capacity_mah")) | (
        pl.col("previous_cutoff_mv") != pl.col("target_cutoff_mv")
    )
    keys = [
        idempotency_key(run_id, row["device_id"], targets[row["battery_chemistry"]])
        for row in diff.select("device_id", "battery_chemistry").iter_rows(named=True)
    ]
    return (
        diff.with_columns(
            pl.when(changed).then(pl.lit("would_update")).otherwise(pl.lit("unchanged")).alias("action"),
            pl.Series("idempotency_key", keys, dtype=pl.String()),
            pl.lit(None, dtype=pl.String()).alias("etag_after"),
            pl.lit(None, dtype=pl.String()).alias("error"),
            pl.lit(None, dtype=pl.Boolean()).alias("written"),
        )
        .select(pl.col(name).cast(dtype) for name, dtype in CONFIG_ROW_SCHEMA.items())
        .sort("device_id")
    )


def rollback_manifest(rows: pl.DataFrame) -> pl.DataFrame:
    """Select the previous parameters of every device a configuration run changed, to put them back."""
    return rows.filter(pl.col("written").fill_null(value=False)).select(ROLLBACK_COLUMNS).sort("device_id")


def failed_devices(rows: pl.DataFrame) -> pl.DataFrame:
    """Every device whose write is not resolved, with why and whether it was written (failed.parquet)."""
    return rows.filter(pl.col("action") == "failed").select(FAILED_COLUMNS).sort("device_id")


def action_counts(rows: pl.DataFrame) -> dict[str, int]:
    """How many devices ended in each action (for the summary)."""
    counted = rows.group_by("action").agg(pl.len()).sort("action")
    return {str(a): int(n) for a, n in counted.iter_rows()}
