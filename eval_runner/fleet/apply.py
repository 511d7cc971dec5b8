"""Configuration --apply for one batch: GET, record the intent, PUT with If-Match and Idempotency-Key, journal.

A device is done only when its write is confirmed and journaled:
- confirmed: the PUT answered, or its answer was lost and reading the device back shows our values;
- journaled: its journal entry is stored, so no retry sends it again.
Anything short of that is a failure that stays pending (the batch gets no .done marker) and is retried
on resume. The Idempotency-Key includes the ETag the write is based on (``modes.attempt_key``): a
repeated write replays the shard's first answer, a write after a 412 is a new one. The intent (the values
right before the PUT) covers the window between PUT and journal: a retry that finds the device at its
target and an intent of its own reports it as updated from the intent's values, so the rollback still
restores it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from eval_runner import keys
from eval_runner.contracts import BatteryParameters
from eval_runner.errors import DataError, FleetEvalError, TransientError
from eval_runner.fleet.modes import CONFIG_ROW_SCHEMA, attempt_key
from eval_runner.storage import ObjectStore

if TYPE_CHECKING:
    from eval_runner.sources.shards import VersionedParameters


def error_rate_halts(attempted: int, failed: int, *, max_error_rate: float, min_writes: int) -> bool:
    """Whether ``failed`` of ``attempted`` writes halt a configuration write (a rate needs enough writes)."""
    return attempted >= min_writes and failed / attempted > max_error_rate


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


# Opens one client per task (a shard's batches, a rollback): the caller owns its connections' lifetime.
ClientFactory = Callable[[], AbstractAsyncContextManager[ParameterClient]]


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


def _intent_entry(device_id: str, before: BatteryParameters, if_match: str, key: str) -> bytes:
    return json.dumps(
        {
            "device_id": device_id,
            "previous_nominal_capacity_mah": before.nominal_capacity_mah,
            "previous_cutoff_mv": before.cutoff_mv,
            "previous_installed_at": before.installed_at.isoformat(),
            "if_match": if_match,
            "idempotency_key": key,
        },
        sort_keys=True,
    ).encode()


def _read_intent(store: ObjectStore, key: str) -> dict[str, Any] | None:
    if not store.exists(key):
        return None
    try:
        intent = json.loads(store.get_bytes(key))
        return {
            "previous_nominal_capacity_mah": intent["previous_nominal_capacity_mah"],
            "previous_cutoff_mv": intent["previous_cutoff_mv"],
            "previous_installed_at": datetime.fromisoformat(intent["previous_installed_at"]),
            "idempotency_key": intent["idempotency_key"],
        }
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"{key}: intent entry is not valid ({error})") from error


async def _write_journal(store: ObjectStore, run_id: str, batch: int, done: dict[str, Any]) -> None:
    """Record an applied device, so no retry sends it again."""
    entry = json.dumps({**done, "previous_installed_at": done["previous_installed_at"].isoformat()}, sort_keys=True)
    key = keys.fleet_journal_key(run_id, batch, done["device_id"])
    await asyncio.to_thread(store.put_bytes, key, entry.encode())


def _failed(row: dict[str, Any], why: str, *, written: bool | None, **extra: Any) -> dict[str, Any]:
    return {**row, **extra, "action": "failed", "error": why, "written": written}


def _at(parameters: BatteryParameters, nominal: float, cutoff: int) -> bool:
    return parameters.nominal_capacity_mah == nominal and parameters.cutoff_mv == cutoff


async def _confirmed(store: ObjectStore, run_id: str, batch: int, done: dict[str, Any]) -> dict[str, Any]:
    """Journal a confirmed write; if the journal cannot be written the device stays pending (written)."""
    try:
        await _write_journal(store, run_id, batch, done)
    except FleetEvalError as error:
        return _failed(done, f"written, but its journal entry was not stored ({error})", written=True)
    return done


async def _read_back(
    client: ParameterClient, device_id: str, nominal: float, cutoff: int, if_match: str
) -> tuple[bool | None, str | None]:
    """After a lost answer: whether our write landed (True/False, None: unknown) and the device's ETag."""
    try:
        now = await client.get_battery_parameters(device_id)
    except FleetEvalError:
        return None, None
    if _at(now.parameters, nominal, cutoff):
        return True, now.etag
    return (False if now.etag == if_match else None), now.etag


async def _apply_one(
    row: dict[str, Any],
    *,
    client: ParameterClient,
    store: ObjectStore,
    run_id: str,
    batch: int,
    expected_etag: str | None = None,
) -> dict[str, Any]:
    device_id = row["device_id"]
    nominal, cutoff = row["target_nominal_capacity_mah"], row["target_cutoff_mv"]
    intent_key = keys.fleet_intent_key(run_id, batch, device_id)
    try:
        current = await client.get_battery_parameters(device_id)
        intent = await asyncio.to_thread(_read_intent, store, intent_key)
    except FleetEvalError as error:
        return _failed(row, f"not written: reading the device or its intent failed ({error})", written=False)
    for attempt in (1, 2):
        now = current.parameters
        if _at(now, nominal, cutoff):
            if intent is None:
                return {**row, "action": "unchanged", "error": "already at target when applied", "written": False}
            # Our own PUT landed and its answer or journal entry was lost (the pod died in between).
            done = {**row, **intent, "action": "updated", "etag_after": current.etag, "error": None, "written": True}
            return await _confirmed(store, run_id, batch, done)
        if expected_etag is not None and current.etag != expected_etag:
            # A rollback: someone changed the device after the run wrote it; restoring would undo that.
            why = f"not written: changed since the run wrote it (ETag {current.etag}, the run left {expected_etag})"
            return _failed(row, why, written=False)
        wanted = now.model_copy(update={"nominal_capacity_mah": nominal, "cutoff_mv": cutoff})
        key = attempt_key(row["idempotency_key"], current.etag)
        previous = {
            "previous_nominal_capacity_mah": now.nominal_capacity_mah,
            "previous_cutoff_mv": now.cutoff_mv,
            "previous_installed_at": now.installed_at,
            "idempotency_key": key,
        }
        try:  # before the PUT: what it overwrites (a second attempt overwrites it with what it read)
            await asyncio.to_thread(
                store.put_bytes, intent_key, _intent_entry(device_id, now, current.etag, key), overwrite=True
            )
        except FleetEvalError as error:
            return _failed(row, f"not written: its intent could not be stored ({error})", written=False)
        intent = previous
        try:
            answer = await client.put_battery_parameters(wanted, if_match=current.etag, idempotency_key=key)
        except TransientError as error:
            # The PUT may have landed with its answer lost: read the device back rather than guess.
            landed, etag = await _read_back(client, device_id, nominal, cutoff, current.etag)
            if landed:
                done = {**row, **previous, "action": "updated", "etag_after": etag, "error": None, "written": True}
                return await _confirmed(store, run_id, batch, done)
            if landed is None:
                why = f"unknown: the PUT's answer was lost and reading the device back did not tell ({error})"
                return _failed(row, why, written=None, **previous)
            return _failed(row, f"not written: {error}", written=False, **previous)
        except DataError as error:
            # A 412: someone wrote in between. Re-read once and write on the new ETag (a new key).
            if attempt == 1 and type(error).__name__ == "StaleETagError":
                try:
                    current = await client.get_battery_parameters(device_id)
                except FleetEvalError as again:
                    return _failed(row, f"not written: stale ETag, then the re-read failed ({again})", written=False)
                continue
            return _failed(row, f"not written: {type(error).__name__}: {error}", written=False, **previous)
        except FleetEvalError as error:
            return _failed(row, f"not written: {type(error).__name__}: {error}", written=False, **previous)
        done = {**row, **previous, "action": "updated", "etag_after": answer.etag, "error": None, "written": True}
        return await _confirmed(store, run_id, batch, done)
    return _failed(row, "not written: the ETag went stale twice", written=False)


async def apply_batch(
    diff: pl.DataFrame,
    *,
    client: ParameterClient,
    store: ObjectStore,
    run_id: str,
    batch: int,
    expected_etags: dict[str, str] | None = None,
) -> BatchOutcome:
    """Apply a batch's diff (CONFIG_ROW_SCHEMA rows from ``configuration_diff``); return the final rows."""
    journal = {}
    for key in store.list(keys.fleet_journal_prefix(run_id, batch)):
        row = _row_from_journal(store.get_bytes(key), key)
        journal[row["device_id"]] = row
    rows = diff.to_dicts()
    pending = [r for r in rows if r["action"] == "would_update" and r["device_id"] not in journal]
    applied = await asyncio.gather(
        *(
            _apply_one(
                r,
                client=client,
                store=store,
                run_id=run_id,
                batch=batch,
                expected_etag=None if expected_etags is None else expected_etags.get(r["device_id"]),
            )
            for r in pending
        )
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
