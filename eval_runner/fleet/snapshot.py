"""Snapshot step: read the fleet's inputs from the sources into per-batch Parquet on S3, manifest last."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import polars as pl

from eval_runner import keys
from eval_runner.concurrency import in_order
from eval_runner.contracts import FLEET_SERIES_DAYS
from eval_runner.errors import ConfigError, DataError
from eval_runner.fleet.models import SnapshotBatch, SnapshotManifest
from eval_runner.fleet.planning import DEFAULT_BATCH_SIZE, assign_batches
from eval_runner.hashing import sha256_bytes
from eval_runner.library.inputs import DeviceSources, library_input
from eval_runner.parquet import frame_to_parquet
from eval_runner.storage import ObjectStore, put_record

log = logging.getLogger(__name__)

# Batches in flight at once, one database connection each: on 2 cores 3 beat 2 and 4 (bench/results/snapshot.txt).
SNAPSHOT_WORKERS = 3


class FleetSource(Protocol):
    """Where the snapshot reads the fleet from (the live sources, or a generator in tests and benchmarks)."""

    def device_ids(self) -> list[str]:
        """Return every device of the fleet."""
        ...

    def device_sources(self, device_ids: Sequence[str], *, start: datetime, as_of: datetime) -> DeviceSources:
        """Return the raw rows of ``device_ids`` the library's input is built from.

        Version history, the current battery parameters (one row per device), sensor rows and valve
        movements with ``start <= ts < as_of``. Rows at or after as_of are allowed and ignored. The
        snapshot calls it from several threads at once, one batch each.
        """
        ...


def sample_id_of(device_id: pl.Expr, as_of: datetime) -> pl.Expr:
    """Fleet sample ids: f"{device_id}/{as_of:%Y-%m-%d}" (one prediction per device and snapshot)."""
    return pl.concat_str([device_id, pl.lit(f"/{as_of:%Y-%m-%d}")])


def shape_batch(
    sources: DeviceSources, device_ids: Sequence[str], *, as_of: datetime, window: timedelta, batch: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Check one batch's source rows and build the library's samples and series from them (pure).

    Every listed device must have exactly one battery-parameter record (the shards' record of it); the
    input itself is ``library_input``'s, the same as the dataset's for a sample at ``as_of``.
    """
    if "device_id" not in sources.battery_parameters.columns:
        raise DataError(f"fleet snapshot batch {batch}: the source's battery parameters lack device_id")
    got = sources.battery_parameters.get_column("device_id")
    duplicated = got.filter(got.is_duplicated()).unique().sort()
    if duplicated.len():
        raise DataError(f"fleet snapshot batch {batch}: devices returned twice: {duplicated.head(5).to_list()}")
    absent = sorted(set(device_ids) - set(got.to_list()))
    if absent or got.len() != len(device_ids):
        raise DataError(
            f"fleet snapshot batch {batch}: the source returned no record for {len(absent)} devices, "
            f"e.g. {absent[:5]} (or records for devices not asked for)"
        )
    sample_keys = pl.DataFrame({"device_id": sorted(device_ids)}, schema={"device_id": pl.String()}).select(
        sample_id_of(pl.col("device_id"), as_of).alias("sample_id"),
        "device_id",
        pl.lit(as_of).cast(pl.Datetime("us", "UTC")).alias("as_of"),
    )
    try:
        # "keep": configuration mode reads these samples as the shards' current parameters (library.inputs).
        samples, series = library_input(sample_keys, sources, window=window, later_pack="keep")
    except DataError as e:
        raise DataError(f"fleet snapshot batch {batch}: {e}") from e
    return samples.sort("device_id"), series


@dataclass(frozen=True)
class SnapshotParams:
    """What `fleet snapshot` is asked: the run, the moment its inputs are read at, and how they are cut."""

    run_id: str
    as_of: datetime
    batch_size: int = DEFAULT_BATCH_SIZE
    series_days: int = FLEET_SERIES_DAYS


def run(
    params: SnapshotParams,
    *,
    store: ObjectStore,
    source: FleetSource,
    check_batches: Callable[[int], None] | None = None,
    workers: int = SNAPSHOT_WORKERS,
) -> SnapshotManifest:
    """Write the run's inputs batch by batch, then devices.parquet, then the manifest last.

    ``workers`` batches are read, shaped and written at once: while one thread waits for the database
    another shapes, so the database and this process work at the same time. A run whose manifest
    exists is complete and returned as is, so a retried step does nothing. Inputs written before a
    crash are overwritten on retry: nothing trusts them until the manifest exists.
    """
    run_id, as_of, batch_size, series_days = params.run_id, params.as_of, params.batch_size, params.series_days
    if as_of.tzinfo is None:
        raise ConfigError(f"fleet snapshot: as_of {as_of.isoformat()} needs a time zone (use UTC)")
    complete = complete_snapshot(store, run_id)
    if complete is not None:
        return complete
    assigned = assign_batches(pl.Series("device_id", source.device_ids(), dtype=pl.String()), batch_size)
    if check_batches is not None:  # e.g. the canary batch: refused before any per-device read
        check_batches(assigned.get_column("batch").n_unique())
    start = as_of - timedelta(days=series_days)

    def write_batch(member: tuple[int, list[str]]) -> SnapshotBatch:
        batch, ids = member
        samples, series = shape_batch(
            source.device_sources(ids, start=start, as_of=as_of),
            ids,
            as_of=as_of,
            window=timedelta(days=series_days),
            batch=batch,
        )
        samples_bytes, series_bytes = frame_to_parquet(samples), frame_to_parquet(series)
        store.put_bytes(keys.fleet_samples_key(run_id, batch), samples_bytes, overwrite=True)
        store.put_bytes(keys.fleet_series_key(run_id, batch), series_bytes, overwrite=True)
        log.info("snapshot %s: batch %d written (%d devices, %d series rows)", run_id, batch, len(ids), series.height)
        return SnapshotBatch(
            batch=batch,
            devices=len(ids),
            first_device=ids[0],
            last_device=ids[-1],
            samples_sha256=sha256_bytes(samples_bytes),
            series_sha256=sha256_bytes(series_bytes),
            series_rows=series.height,
        )

    members = [
        (int(batch), frame.get_column("device_id").to_list())
        for (batch,), frame in assigned.group_by(["batch"], maintain_order=True)
    ]
    # Every batch may be queued (its result is a small record), so the workers never wait on a slow one;
    # the first failure ends the snapshot and the batches not started never start.
    with in_order(write_batch, members, workers=workers, ahead=len(members) or 1, name="snapshot") as written:
        batches = list(written)
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
    put_record(store, keys.fleet_snapshot_manifest_key(run_id), manifest)
    return manifest


def complete_snapshot(store: ObjectStore, run_id: str) -> SnapshotManifest | None:
    """The run's snapshot if its manifest exists (written last, so the snapshot is complete), else None."""
    manifest_key = keys.fleet_snapshot_manifest_key(run_id)
    if not store.exists(manifest_key):
        return None
    log.info("snapshot of run %s is complete already; reusing it", run_id)
    return SnapshotManifest.from_json_bytes(store.get_bytes(manifest_key), name=manifest_key)


def snapshot_sources(
    params: SnapshotParams,
    *,
    store: ObjectStore,
    open_source: Callable[[], AbstractContextManager[FleetSource]],
    check_batches: Callable[[int], None] | None = None,
) -> SnapshotManifest:
    """``run`` from sources opened only when the run has no complete snapshot.

    A retried step whose snapshot is complete connects to nothing (the database and the shards may be
    the reason it was retried).
    """
    complete = complete_snapshot(store, params.run_id)
    if complete is not None:
        return complete
    with open_source() as source:
        return run(params, store=store, source=source, check_batches=check_batches)


def snapshot_summary(run_id: str, manifest: SnapshotManifest) -> dict[str, object]:
    """What `fleet snapshot` prints, and the part of the prepare step's summary about the snapshot."""
    return {
        "run_id": run_id,
        "as_of": manifest.as_of,
        "devices": manifest.n_devices,
        "batches": len(manifest.batches),
    }
