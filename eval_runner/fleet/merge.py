"""Merge step: prove every device of the snapshot appears exactly once, then publish results and summary."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from eval_runner import keys
from eval_runner.errors import DataError
from eval_runner.fleet.models import Summary
from eval_runner.fleet.modes import action_counts, fleet_results, q10_distributions
from eval_runner.fleet.planning import check_exactly_once
from eval_runner.fleet.report import read_result, refresh_report, write_report
from eval_runner.fleet.run_state import batch_markers, check_not_halted, done_batches, load_run
from eval_runner.hashing import sha256_bytes
from eval_runner.parquet import frame_to_parquet, parquet_to_frame
from eval_runner.storage import ObjectStore, stored_encoding

READERS = 8


@dataclass(frozen=True)
class MergeParams:
    """What `fleet merge` is asked: the run whose batches are merged."""

    run_id: str


def run(params: MergeParams, *, store: ObjectStore) -> Summary:
    """Check every batch is done and every device present once, then publish; the summary goes last.

    A configuration --apply run first rewrites its report (rollback.parquet, failed.parquet under the
    run's prefix), and publishes nothing while any device is unresolved: it raises a DataError naming
    the report, so the workflow does not end Succeeded. Resuming (the shards again, same run id)
    retries exactly the unresolved devices.
    """
    run_id = params.run_id
    plan, manifest = load_run(store, run_id)
    applying = plan.configuration is not None and plan.configuration.apply
    if applying and store.exists(keys.fleet_halt_key(run_id)):
        refresh_report(store, run_id)
    check_not_halted(store, run_id)
    if applying:
        markers = batch_markers(store, run_id)
    else:
        markers = {batch: keys.fleet_batch_done_key(run_id, batch) for batch in done_batches(store, run_id)}
    missing = sorted(set(range(plan.n_batches)) - set(markers))
    if missing:
        raise DataError(
            f"fleet run {run_id!r}: {len(missing)} of {plan.n_batches} batches are not done "
            f"(e.g. {missing[:10]}); rerun their shards before merging"
        )
    devices_key = keys.fleet_devices_key(run_id)
    expected = parquet_to_frame(store.get_bytes(devices_key, expected_sha256=manifest.devices_sha256), name=devices_key)
    # Hundreds of small GETs: overlap their round trips; verification and decoding stay per batch.
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        loaded = list(pool.map(lambda b: read_result(store, run_id, b, markers[b]), range(plan.n_batches)))
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
        if applying:
            rollback, failed = write_report(store, run_id, rows)
            if failed.height:
                unknown = failed.filter(pl.col("written").is_null()).height
                raise DataError(
                    f"fleet run {run_id!r}: {failed.height} devices are not resolved ({unknown} of them unknown "
                    f"whether written), each listed with why in {keys.fleet_report_key(run_id, 'failed.parquet')!r}; "
                    f"the rollback of the {rollback.height} written devices is "
                    f"{keys.fleet_report_key(run_id, 'rollback.parquet')!r}. Rerun the shards with the same run id "
                    "to retry the unresolved devices, then merge again"
                )
            for name, frame in (("rollback.parquet", rollback), ("failed.parquet", failed)):
                extra[keys.fleet_results_sibling_key(mode, day, version, run_id, name)] = frame_to_parquet(frame)
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
    summary_key = keys.fleet_results_sibling_key(mode, day, version, run_id, "summary.json")
    store.publish(objects, marker_key=summary_key, marker=stored_encoding(store, summary_key, summary))
    return summary
