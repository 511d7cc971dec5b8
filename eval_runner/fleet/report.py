"""A configuration run's report: rollback.parquet and failed.parquet from every batch result there is.

Written by the shard that halts (so a halted run has its rollback although merge never runs), by every
shard that stops on a halt, and by merge; each rebuilds it from the stored batch results, so the last
writer has seen every batch committed before it. `eval-runner fleet rollback` rebuilds it the same way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import polars as pl

from eval_runner import keys
from eval_runner.errors import DataError
from eval_runner.fleet.models import DoneMarker
from eval_runner.fleet.modes import CONFIG_ROW_SCHEMA, failed_devices, rollback_manifest
from eval_runner.fleet.run_state import batch_markers
from eval_runner.parquet import frame_to_parquet, parquet_to_frame
from eval_runner.storage import ObjectStore

READERS = 8


def read_result(store: ObjectStore, run_id: str, batch: int, marker_key: str) -> tuple[DoneMarker, pl.DataFrame]:
    """A batch's marker and its result, verified against the marker's hash and device count."""
    marker = DoneMarker.from_json_bytes(store.get_bytes(marker_key), name=marker_key)
    result_key = keys.fleet_batch_key(run_id, batch)
    frame = parquet_to_frame(store.get_bytes(result_key, expected_sha256=marker.result_sha256), name=result_key)
    if frame.height != marker.devices:
        raise DataError(f"{result_key}: {frame.height} rows but its marker counts {marker.devices} devices")
    return marker, frame


def committed_rows(store: ObjectStore, run_id: str) -> pl.DataFrame:
    """Every committed configuration batch result of the run, concatenated (CONFIG_ROW_SCHEMA)."""
    markers = batch_markers(store, run_id)
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        frames = list(pool.map(lambda item: read_result(store, run_id, *item)[1], sorted(markers.items())))
    return pl.concat(frames) if frames else pl.DataFrame(schema=CONFIG_ROW_SCHEMA)


def write_report(store: ObjectStore, run_id: str, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Store rollback.parquet and failed.parquet of ``rows``; return (rollback, failed)."""
    rollback, failed = rollback_manifest(rows), failed_devices(rows)
    store.put_bytes(keys.fleet_report_key(run_id, "rollback.parquet"), frame_to_parquet(rollback), overwrite=True)
    store.put_bytes(keys.fleet_report_key(run_id, "failed.parquet"), frame_to_parquet(failed), overwrite=True)
    return rollback, failed


def refresh_report(store: ObjectStore, run_id: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rebuild the report from the batch results stored now."""
    return write_report(store, run_id, committed_rows(store, run_id))
