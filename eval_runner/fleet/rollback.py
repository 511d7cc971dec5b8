"""`fleet rollback`: put back exactly the devices a configuration run wrote, with the apply's safety.

The devices and their previous parameters come from the run's report, rebuilt from its batch results
now (so a halted run rolls back too). The restore is itself a configuration write under its own run id
(``<run>-rollback``): the same confirm-and-journal apply, so a resumed rollback never writes a device
twice; a device someone changed after the run wrote it (its ETag is no longer the run's) is left alone
and reported. Dry run by default; with ``apply`` a canary chunk goes first, and the error-rate halt
applies once ``min_writes`` writes were attempted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import polars as pl

from eval_runner import keys
from eval_runner.errors import DataError
from eval_runner.fleet.apply import ClientFactory, apply_batch, error_rate_halts
from eval_runner.fleet.models import (
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_MIN_WRITES,
    DEFAULT_ROLLBACK_CANARY,
    ParameterTarget,
)
from eval_runner.fleet.modes import CONFIG_ROW_SCHEMA, failed_devices, idempotency_key
from eval_runner.fleet.report import refresh_report
from eval_runner.parquet import frame_to_parquet
from eval_runner.storage import ObjectStore


def rollback_id(run_id: str) -> str:
    """The run id the restore writes its intents and journal under."""
    return f"{run_id}-rollback"


def restore_diff(rollback: pl.DataFrame, restore_run: str, chunk: int) -> pl.DataFrame:
    """The rollback rows as configuration rows whose target is the previous parameters (CONFIG_ROW_SCHEMA)."""
    rows = []
    for index, row in enumerate(rollback.sort("device_id").iter_rows(named=True)):
        target = ParameterTarget(
            nominal_capacity_mah=row["previous_nominal_capacity_mah"], cutoff_mv=row["previous_cutoff_mv"]
        )
        rows.append(
            {
                "device_id": row["device_id"],
                "batch": index // chunk,
                "action": "would_update",
                "battery_chemistry": row["battery_chemistry"],
                "previous_nominal_capacity_mah": None,
                "previous_cutoff_mv": None,
                "previous_installed_at": None,
                "target_nominal_capacity_mah": target.nominal_capacity_mah,
                "target_cutoff_mv": target.cutoff_mv,
                "idempotency_key": idempotency_key(restore_run, row["device_id"], target),
                "etag_after": None,
                "error": None,
                "written": None,
            }
        )
    return pl.DataFrame(rows, schema=CONFIG_ROW_SCHEMA)


@dataclass(frozen=True)
class RollbackParams:
    """What `fleet rollback` is asked: the run to undo, whether to write, and when to stop."""

    run_id: str
    apply: bool
    canary: int = DEFAULT_ROLLBACK_CANARY
    chunk: int = 250
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    min_writes: int = DEFAULT_MIN_WRITES


def run(params: RollbackParams, *, store: ObjectStore, client_factory: ClientFactory) -> dict[str, Any]:
    """Restore the devices run ``run_id`` wrote; return counts. Raises DataError on a halt or failures."""
    run_id, apply, canary, chunk = params.run_id, params.apply, params.canary, params.chunk
    max_error_rate, min_writes = params.max_error_rate, params.min_writes
    rollback, _ = refresh_report(store, run_id)
    restore_run = rollback_id(run_id)
    expected = dict(rollback.select("device_id", "etag_after").iter_rows())
    diff = restore_diff(rollback, restore_run, chunk)
    if not apply:
        return {"run_id": run_id, "mode": "dry-run", "would_restore": diff.height}
    # The canary chunk first (its own batch number past the others), then the rest in chunks.
    canary_ids = set(diff.get_column("device_id").head(canary))
    first = diff.filter(pl.col("device_id").is_in(canary_ids))
    rest = diff.filter(~pl.col("device_id").is_in(canary_ids))
    parts = [first] + [frame for _, frame in rest.group_by("batch", maintain_order=True)]

    async def restore() -> tuple[list[pl.DataFrame], int]:
        """The restored rows of each part, and how many devices this call tried (journaled ones are not tried again)."""
        outcomes: list[pl.DataFrame] = []
        attempted = failed = 0
        async with client_factory() as client:
            for index, part in enumerate(parts):
                batch = index  # 0 is the canary; journal keys stay stable across a resume
                frame = part.with_columns(pl.lit(batch).cast(pl.Int32).alias("batch"))
                outcome = await apply_batch(
                    frame, client=client, store=store, run_id=restore_run, batch=batch, expected_etags=expected
                )
                outcomes.append(outcome.rows)
                attempted, failed = attempted + outcome.attempted, failed + outcome.failed
                halted = error_rate_halts(attempted, failed, max_error_rate=max_error_rate, min_writes=min_writes)
                if (index == 0 and outcome.failed) or halted:
                    break
        return outcomes, attempted

    outcomes, tried = asyncio.run(restore()) if parts else ([diff], 0)
    rows = pl.concat(outcomes)
    failed = failed_devices(rows)
    store.put_bytes(keys.fleet_report_key(restore_run, "failed.parquet"), frame_to_parquet(failed), overwrite=True)
    counts = {str(a): int(n) for a, n in rows.group_by("action").agg(pl.len()).iter_rows()}
    # "tried": devices this call read and wrote (or found changed by someone else); a resumed rollback
    # shows it left every journaled device alone.
    summary = {
        "run_id": run_id, "mode": "apply", "devices": diff.height, "attempted": rows.height, "tried": tried, **counts,
    }  # fmt: skip
    if failed.height or rows.height < diff.height:
        raise DataError(
            f"fleet rollback of {run_id!r}: {failed.height} devices not restored and "
            f"{diff.height - rows.height} not attempted (stopped after the canary or on the error rate); each "
            f"failure with why in {keys.fleet_report_key(restore_run, 'failed.parquet')!r}. Run the rollback "
            f"again to resume it ({summary})"
        )
    return summary
