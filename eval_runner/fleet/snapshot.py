"""Snapshot step: read the fleet's inputs from the sources into per-batch Parquet on S3, manifest last."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import polars as pl

from eval_runner import keys
from eval_runner.contracts import FLEET_SERIES_DAYS, LIBRARY_SAMPLE_COLUMNS, SERIES_SCHEMA
from eval_runner.errors import ConfigError, DataError
from eval_runner.fleet.models import SnapshotBatch, SnapshotManifest, parse_model
from eval_runner.fleet.planning import DEFAULT_BATCH_SIZE, assign_batches
from eval_runner.hashing import sha256_bytes
from eval_runner.parquet import frame_to_parquet
from eval_runner.storage import ObjectStore

log = logging.getLogger(__name__)

# Per-device columns a source returns; the snapshot adds sample_id and as_of.
DEVICE_COLUMNS: dict[str, pl.DataType] = {
    "device_id": pl.String(),
    "hardware_revision": pl.String(),
    "firmware_version_at_as_of": pl.String(),
    "battery_chemistry": pl.String(),
    "nominal_capacity_mah": pl.Float64(),
    "cutoff_mv": pl.Int32(),
    "battery_installed_at": pl.Datetime("us", "UTC"),
}
# Series columns a source returns: SERIES_SCHEMA keyed by device_id instead of sample_id.
DEVICE_SERIES_COLUMNS: dict[str, pl.DataType] = {
    "device_id": pl.String(),
    **{name: dtype for name, dtype in SERIES_SCHEMA.items() if name != "sample_id"},
}


class FleetSource(Protocol):
    """Where the snapshot reads the fleet from (the live sources, or a generator in benchmarks)."""

    def device_ids(self) -> list[str]:
        """Return every device of the fleet."""
        ...

    def devices(self, device_ids: Sequence[str], as_of: datetime) -> pl.DataFrame:
        """Return DEVICE_COLUMNS of ``device_ids`` at ``as_of``: revision, firmware, battery parameters."""
        ...

    def series(self, device_ids: Sequence[str], start: datetime, end: datetime) -> pl.DataFrame:
        """Return DEVICE_SERIES_COLUMNS rows of ``device_ids`` with ``start <= ts < end``."""
        ...


def sample_id_of(device_id: pl.Expr, as_of: datetime) -> pl.Expr:
    """Fleet sample ids: f"{device_id}/{as_of:%Y-%m-%d}" (one prediction per device and snapshot)."""
    return pl.concat_str([device_id, pl.lit(f"/{as_of:%Y-%m-%d}")])


def shape_batch(
    devices: pl.DataFrame, series: pl.DataFrame, device_ids: Sequence[str], *, as_of: datetime, batch: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Check one batch's source rows and shape them into the library's samples and series (pure).

    Every listed device must come back exactly once; series rows are cut to the window and sorted.
    """
    missing_columns = [name for name in DEVICE_COLUMNS if name not in devices.columns]
    if missing_columns:
        raise DataError(f"fleet snapshot batch {batch}: the source's device rows lack {missing_columns}")
    got = devices.get_column("device_id")
    duplicated = got.filter(got.is_duplicated()).unique().sort()
    if duplicated.len():
        raise DataError(f"fleet snapshot batch {batch}: devices returned twice: {duplicated.head(5).to_list()}")
    absent = sorted(set(device_ids) - set(got.to_list()))
    if absent or got.len() != len(device_ids):
        raise DataError(
            f"fleet snapshot batch {batch}: the source returned no record for {len(absent)} devices, "
            f"e.g. {absent[:5]} (or records for devices not asked for)"
        )
    samples = (
        devices.select(pl.col(name).cast(dtype) for name, dtype in DEVICE_COLUMNS.items())
        .with_columns(
            sample_id_of(pl.col("device_id"), as_of).alias("sample_id"),
            pl.lit(as_of).cast(pl.Datetime("us", "UTC")).alias("as_of"),
        )
        .select(LIBRARY_SAMPLE_COLUMNS)
        .sort("device_id")
    )
    missing_series = [name for name in DEVICE_SERIES_COLUMNS if name not in series.columns]
    if missing_series:
        raise DataError(f"fleet snapshot batch {batch}: the source's series rows lack {missing_series}")
    shaped = (
        series.select(pl.col(name).cast(dtype) for name, dtype in DEVICE_SERIES_COLUMNS.items())
        .filter(pl.col("device_id").is_in(list(device_ids)))
        .with_columns(sample_id_of(pl.col("device_id"), as_of).alias("sample_id"))
        .select(list(SERIES_SCHEMA))
        .sort(["sample_id", "ts"])
    )
    return samples, shaped


def run_snapshot(
    run_id: str,
    as_of: datetime,
    *,
    store: ObjectStore,
    source: FleetSource,
    batch_size: int = DEFAULT_BATCH_SIZE,
    series_days: int = FLEET_SERIES_DAYS,
    check_batches: Callable[[int], None] | None = None,
) -> SnapshotManifest:
    """Write the run's inputs batch by batch, then devices.parquet, then the manifest last.

    A run whose manifest exists is complete and returned as is, so a retried step does nothing. Inputs
    written before a crash are overwritten on retry: nothing trusts them until the manifest exists.
    """
    if as_of.tzinfo is None:
        raise ConfigError(f"fleet snapshot: as_of {as_of.isoformat()} needs a time zone (use UTC)")
    manifest_key = keys.fleet_snapshot_manifest_key(run_id)
    if store.exists(manifest_key):
        log.info("snapshot of run %s is complete already; reusing it", run_id)
        return parse_model(SnapshotManifest, store.get_bytes(manifest_key), name=manifest_key)
    assigned = assign_batches(pl.Series("device_id", source.device_ids(), dtype=pl.String()), batch_size)
    if check_batches is not None:  # e.g. the canary batch: refused before any per-device read
        check_batches(assigned.get_column("batch").n_unique())
    start = as_of - timedelta(days=series_days)
    batches: list[SnapshotBatch] = []
    for (batch,), members in assigned.group_by(["batch"], maintain_order=True):
        ids = members.get_column("device_id").to_list()
        samples, series = shape_batch(
            source.devices(ids, as_of), source.series(ids, start, as_of), ids, as_of=as_of, batch=int(batch)
        )
        samples_bytes, series_bytes = frame_to_parquet(samples), frame_to_parquet(series)
        store.put_bytes(keys.fleet_samples_key(run_id, int(batch)), samples_bytes, overwrite=True)
        store.put_bytes(keys.fleet_series_key(run_id, int(batch)), series_bytes, overwrite=True)
        batches.append(
            SnapshotBatch(
                batch=int(batch),
                devices=len(ids),
                first_device=ids[0],
                last_device=ids[-1],
                samples_sha256=sha256_bytes(samples_bytes),
                series_sha256=sha256_bytes(series_bytes),
                series_rows=series.height,
            )
        )
        log.info(
            "snapshot %s: batch %d written (%d devices, %d series rows)",
            run_id,
            batch,
            len(ids),
            series.height,
        )
    devices_bytes = frame_to_parquet(assigned)
    devices_sha = store.put_bytes(keys.fleet_devices_key(run_id), devices_bytes, overwrite=True)
    manifest = SnapshotManifest(
        run_id=run_id,
        as_of=as_of,
        series_days=series_days,
        batch_size=batch_size,
        n_devices=assigned.height,
        devices_sha256=devices_sha,
        batches=tuple(batches),
    )
    store.put_bytes(manifest_key, manifest.to_json_bytes())
    return manifest
