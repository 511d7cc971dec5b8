"""Merge step: prove every device of the snapshot appears exactly once, then publish results and summary."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import polars as pl

from eval_runner import keys
from eval_runner.errors import DataError
from eval_runner.fleet.models import DoneMarker, Summary, parse_model
from eval_runner.fleet.modes import action_counts, fleet_results, q10_distributions, rollback_manifest
from eval_runner.fleet.planning import check_exactly_once
from eval_runner.fleet.shard import check_not_halted, done_batches, load_run
from eval_runner.hashing import sha256_bytes
from eval_runner.parquet import frame_to_parquet, parquet_to_frame
from eval_runner.storage import ObjectStore

READERS = 8


def _read_batch(store: ObjectStore, run_id: str, batch: int) -> tuple[DoneMarker, pl.DataFrame]:
    done_key = keys.fleet_batch_done_key(run_id, batch)
    marker = parse_model(DoneMarker, store.get_bytes(done_key), name=done_key)
    result_key = keys.fleet_batch_key(run_id, batch)
    frame = parquet_to_frame(store.get_bytes(result_key, expected_sha256=marker.result_sha256), name=result_key)
    if frame.height != marker.devices:
        raise DataError(f"{result_key}: {frame.height} rows but its marker counts {marker.devices} devices")
    return marker, frame


def run_merge(run_id: str, *, store: ObjectStore) -> Summary:
    """Check every batch is done and every device present once, then publish; the summary goes last."""
    plan, manifest = load_run(store, run_id)
    check_not_halted(store, run_id)
    done = done_batches(store, run_id)
    missing = sorted(set(range(plan.n_batches)) - done)
    if missing:
        raise DataError(
            f"fleet run {run_id!r}: {len(missing)} of {plan.n_batches} batches are not done "
            f"(e.g. {missing[:10]}); rerun their shards before merging"
        )
    devices_key = keys.fleet_devices_key(run_id)
    expected = parquet_to_frame(store.get_bytes(devices_key, expected_sha256=manifest.devices_sha256), name=devices_key)
    # Hundreds of small GETs: overlap their round trips; verification and decoding stay per batch.
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        loaded = list(pool.map(lambda batch: _read_batch(store, run_id, batch), range(plan.n_batches)))
    frames = [frame for _, frame in loaded]
    versions = {marker.library_version for marker, _ in loaded}
    failures = sum(marker.failures for marker, _ in loaded)
    if len(versions) != 1:
        raise DataError(f"fleet run {run_id!r}: batches were computed by different library versions {sorted(versions)}")
    version = versions.pop()
    rows = pl.concat(frames)
    check_exactly_once(expected, rows.select("device_id", "batch"))
    rows = rows.sort("device_id")
    mode = plan.result_mode
    day = plan.as_of.date()
    counts: dict[str, int] = {"devices": rows.height}
    extra: dict[str, bytes] = {}
    if plan.mode == "fleet":
        table = fleet_results(rows)
    elif plan.mode == "fleet-q10-distributions":
        table = q10_distributions(rows)
    else:
        table = rows.drop("batch")
        counts |= action_counts(rows)
        if plan.configuration is not None and plan.configuration.apply:
            extra[keys.fleet_results_sibling_key(mode, day, version, run_id, "rollback.parquet")] = frame_to_parquet(
                rollback_manifest(rows)
            )
    counts["failures"] = failures
    results = frame_to_parquet(table)
    results_key = keys.fleet_results_key(mode, day, version, run_id)
    objects = {results_key: results, **extra}
    summary = Summary(
        run_id=run_id,
        mode=mode,
        library_version=version,
        as_of=plan.as_of,
        devices=rows.height,
        batches=plan.n_batches,
        results_sha256=sha256_bytes(results),
        counts=counts,
        extra_objects={key: sha256_bytes(data) for key, data in extra.items()},
    )
    store.publish(
        objects,
        marker_key=keys.fleet_results_sibling_key(mode, day, version, run_id, "summary.json"),
        marker=summary.to_json_bytes(),
    )
    return summary
