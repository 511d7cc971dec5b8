"""Configuration --apply for one batch: GET, record the intent, PUT with If-Match and Idempotency-Key, journal.

A device whose journal entry exists is never sent again, so a retried batch never writes twice; the
Idempotency-Key covers the remaining window (PUT done, journal write lost): the shard answers a repeated
key with its first response and changes nothing. The intent (the values right before the PUT) covers the
rollback in that window: a retry that finds the device at its target and an intent of its own reports
the device as updated from the intent's values, so the rollback manifest still restores it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from eval_runner import keys
from eval_runner.contracts import BatteryParameters
from eval_runner.errors import DataError, FleetEvalError
from eval_runner.fleet.modes import CONFIG_ROW_SCHEMA
from eval_runner.storage import ObjectStore

if TYPE_CHECKING:
    from eval_runner.sources.shards import VersionedParameters


class ParameterClient(Protocol):
    """What the apply needs from the shard client (eval_runner.sources.shards.ShardClient)."""

    async def get_battery_parameters(self, device_id: str) -> VersionedParameters:
        """Return the current parameters and their ETag."""
        ...

    async def put_battery_parameters(
        self, parameters: BatteryParameters, *, if_match: str, idempotency_key: str
    ) -> VersionedParameters:
        """Replace the parameters (idempotent per key)."""
        ...


@dataclass(frozen=True)
class BatchOutcome:
    """Rows of one applied batch and the counts its error rate is judged on."""

    rows: pl.DataFrame
    attempted: int
    failed: int
    errors: tuple[str, ...]

    @property
    def error_rate(self) -> float:
        """Failed over attempted devices of this attempt (0 when nothing needed a write)."""
        return self.failed / self.attempted if self.attempted else 0.0


def _row_from_journal(data: bytes, key: str) -> dict[str, Any]:
    try:
        row = json.loads(data)
    except ValueError as error:
        raise DataError(f"{key}: journal entry is not JSON ({error})") from error
    if not isinstance(row, dict) or set(row) != set(CONFIG_ROW_SCHEMA):
        raise DataError(f"{key}: journal entry does not have the configuration row's fields")
    try:
        row["previous_installed_at"] = datetime.fromisoformat(row["previous_installed_at"])
    except (TypeError, ValueError) as error:
        raise DataError(f"{key}: previous_installed_at is not an ISO timestamp ({error})") from error
    return row


def _intent_entry(device_id: str, before: BatteryParameters) -> bytes:
    return json.dumps(
        {
            "device_id": device_id,
            "previous_nominal_capacity_mah": before.nominal_capacity_mah,
            "previous_cutoff_mv": before.cutoff_mv,
            "previous_installed_at": before.installed_at.isoformat(),
        },
        sort_keys=True,
    ).encode()


def _read_intent(store: ObjectStore, key: str) -> dict[str, Any] | None:
    if not store.exists(key):
        return None
    try:
        intent = json.loads(store.get_bytes(key))
        return {**intent, "previous_installed_at": datetime.fromisoformat(intent["previous_installed_at"])}
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"{key}: intent entry is not valid ({error})") from error


async def _write_journal(store: ObjectStore, run_id: str, batch: int, done: dict[str, Any]) -> None:
    """Record an applied device, so no retry sends it again."""
    entry = json.dumps({**done, "previous_installed_at": done["previous_installed_at"].isoformat()}, sort_keys=True)
    key = keys.fleet_journal_key(run_id, batch, done["device_id"])
    await asyncio.to_thread(store.put_bytes, key, entry.encode())


async def _apply_one(
    row: dict[str, Any], *, client: ParameterClient, store: ObjectStore, run_id: str, batch: int
) -> dict[str, Any]:
    device_id = row["device_id"]
    target_nominal = row["target_nominal_capacity_mah"]
    target_cutoff = row["target_cutoff_mv"]
    intent_key = keys.fleet_intent_key(run_id, batch, device_id)
    try:
        for attempt in (1, 2):
            current = await client.get_battery_parameters(device_id)
            now = current.parameters
            if now.nominal_capacity_mah == target_nominal and now.cutoff_mv == target_cutoff:
                intent = await asyncio.to_thread(_read_intent, store, intent_key)
                if intent is None:
                    return {**row, "action": "unchanged", "error": "already at target when applied"}
                # Our own PUT landed and the journal write was lost (the pod died in between).
                done = {**row, **intent, "action": "updated", "etag_after": current.etag, "error": None}
                await _write_journal(store, run_id, batch, done)
                return done
            wanted = now.model_copy(update={"nominal_capacity_mah": target_nominal, "cutoff_mv": target_cutoff})
            # Before the PUT: what it overwrites (overwritten by a second attempt, which overwrites other values).
            await asyncio.to_thread(store.put_bytes, intent_key, _intent_entry(device_id, now), overwrite=True)
            try:
                written = await client.put_battery_parameters(
                    wanted, if_match=current.etag, idempotency_key=row["idempotency_key"]
                )
            except DataError as error:
                # A 412 means someone wrote in between: re-read once, then give up on this device.
                if attempt == 1 and type(error).__name__ == "StaleETagError":
                    continue
                raise
            done = {
                **row,
                "action": "updated",
                "previous_nominal_capacity_mah": now.nominal_capacity_mah,
                "previous_cutoff_mv": now.cutoff_mv,
                "previous_installed_at": now.installed_at,
                "etag_after": written.etag,
                "error": None,
            }
            await _write_journal(store, run_id, batch, done)
            return done
    except FleetEvalError as error:
        return {**row, "action": "failed", "error": f"{type(error).__name__}: {error}"}
    return {**row, "action": "failed", "error": "the ETag went stale twice"}


async def apply_batch(
    diff: pl.DataFrame, *, client: ParameterClient, store: ObjectStore, run_id: str, batch: int
) -> BatchOutcome:
    """Apply a batch's diff (CONFIG_ROW_SCHEMA rows from ``configuration_diff``); return the final rows."""
    journal = {}
    for key in store.list(keys.fleet_journal_prefix(run_id, batch)):
        row = _row_from_journal(store.get_bytes(key), key)
        journal[row["device_id"]] = row
    rows = diff.to_dicts()
    pending = [r for r in rows if r["action"] == "would_update" and r["device_id"] not in journal]
    applied = await asyncio.gather(
        *(_apply_one(r, client=client, store=store, run_id=run_id, batch=batch) for r in pending)
    )
    by_device = {r["device_id"]: r for r in applied} | journal
    final = [by_device.get(r["device_id"], r) for r in rows]
    failures = [r for r in applied if r["action"] == "failed"]
    frame = pl.DataFrame(final, schema=CONFIG_ROW_SCHEMA).sort("device_id")
    return BatchOutcome(
        rows=frame,
        attempted=len(pending),
        failed=len(failures),
        errors=tuple(f"{r['device_id']}: {r['error']}" for r in failures[:5]),
    )
