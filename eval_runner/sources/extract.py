"""Fetch one month from all API shards concurrently, recording each finished shard.

A shard's result is saved as soon as it is complete, so when one shard fails the rerun (an Argo retry)
fetches only the shards that have no record yet.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Protocol

from eval_runner.contracts import BatteryParameters, CapacityTest, DeviceRecord, VersionEvent
from eval_runner.errors import DataError, FleetEvalError, TransientError
from eval_runner.keys import Month
from eval_runner.sources.shards import ShardClient
from eval_runner.storage import ObjectStore
from eval_runner.stored import StoredRecord

log = logging.getLogger(__name__)


class ShardExtract(StoredRecord):
    """Everything one shard holds for a month, in a canonical order."""

    record_type: ClassVar[str] = "shard extract"
    compact: ClassVar[bool] = True  # one line: its bytes are hashed into the source fingerprint

    shard: int
    month: str
    devices: list[DeviceRecord]
    capacity_tests: list[CapacityTest]
    version_events: list[VersionEvent]
    battery_parameters: list[BatteryParameters]

    def canonical(self) -> ShardExtract:
        """Return the same content sorted, so equal source data always serialises to equal bytes."""
        return ShardExtract(
            shard=self.shard,
            month=self.month,
            devices=sorted(self.devices, key=lambda d: d.device_id),
            capacity_tests=sorted(self.capacity_tests, key=lambda t: (t.device_id, t.tested_at, t.test_id)),
            version_events=sorted(
                self.version_events, key=lambda e: (e.device_id, e.effective_at, e.component, e.version)
            ),
            battery_parameters=sorted(self.battery_parameters, key=lambda p: p.device_id),
        )


class ShardCheckpoint(Protocol):
    """The record of finished shards."""

    def load(self, shard: int) -> bytes | None:
        """Return the recorded extract of ``shard``, or None."""
        ...

    def save(self, shard: int, data: bytes) -> None:
        """Record the extract of ``shard``."""
        ...


@dataclass
class StoreCheckpoint:
    """ShardCheckpoint in the object store under ``prefix`` (scratch state, not a published result)."""

    store: ObjectStore
    prefix: str

    def key(self, shard: int) -> str:
        """Key of one shard's record."""
        return f"{self.prefix}shard={shard}.json"

    def load(self, shard: int) -> bytes | None:
        """Return the recorded extract of ``shard``, or None."""
        key = self.key(shard)
        return self.store.get_bytes(key) if self.store.exists(key) else None

    def save(self, shard: int, data: bytes) -> None:
        """Record the extract; a forced refetch may replace an older record, so overwrite is allowed."""
        self.store.put_bytes(self.key(shard), data, overwrite=True)


@dataclass
class MemoryCheckpoint:
    """ShardCheckpoint in memory (tests, and builds that must not leave records)."""

    records: dict[int, bytes] = field(default_factory=dict)

    def load(self, shard: int) -> bytes | None:
        """Return the recorded extract of ``shard``, or None."""
        return self.records.get(shard)

    def save(self, shard: int, data: bytes) -> None:
        """Record the extract."""
        self.records[shard] = data


async def fetch_shard(client: ShardClient, shard: int, month: Month) -> ShardExtract:
    """Devices, the month's capacity tests, version history to month end and battery parameters of a shard."""
    # Four listings, a page per request: one request per device for the parameters took most of a build.
    devices, tests, events, parameters = await asyncio.gather(
        client.devices(shard),
        client.capacity_tests(shard, month.start, month.end),
        client.version_history(shard, month.end),
        client.battery_parameters(shard),
    )
    end = datetime(month.end.year, month.end.month, 1, tzinfo=UTC)
    wanted = {d.device_id for d in devices if d.installed_at < end}
    missing = sorted(wanted - {p.device_id for p in parameters})
    if missing:
        raise DataError(
            f"shard {shard} /v1/battery-parameters: no parameters for {len(missing)} of its devices, e.g. {missing[:5]}"
        )
    return ShardExtract(
        shard=shard,
        month=str(month),
        devices=devices,
        capacity_tests=tests,
        version_events=events,
        battery_parameters=[p for p in parameters if p.device_id in wanted],
    ).canonical()


async def fetch_month(
    client: ShardClient, month: Month, checkpoint: ShardCheckpoint, *, refetch: bool = False
) -> list[ShardExtract]:
    """Fetch every shard concurrently, reusing recorded shards unless ``refetch``; record each success."""

    async def one(shard: int) -> ShardExtract:
        recorded = None if refetch else checkpoint.load(shard)
        if recorded is not None:
            extract = ShardExtract.from_json_bytes(recorded, name=f"record of shard {shard}")
            if extract.month == str(month):
                log.info("shard %d: reusing the recorded extract of %s", shard, month)
                return extract
        extract = await fetch_shard(client, shard, month)
        checkpoint.save(shard, extract.to_json_bytes())
        return extract

    outcomes = await asyncio.gather(*(one(s) for s in range(client.n_shards)), return_exceptions=True)
    failed = {s: o for s, o in enumerate(outcomes) if isinstance(o, BaseException)}
    if failed:
        done = [s for s in range(client.n_shards) if s not in failed]
        detail = "; ".join(f"shard {s}: {error}" for s, error in failed.items())
        message = f"fetching {month} failed on shard(s) {sorted(failed)} ({detail}); shards {done} are recorded"
        # A data or configuration problem will not heal by retrying: surface it, not a TransientError.
        for error in failed.values():
            if isinstance(error, FleetEvalError) and not isinstance(error, TransientError):
                raise type(error)(message) from error
        first = next(iter(failed.values()))
        if not isinstance(first, Exception):
            raise first  # KeyboardInterrupt and friends pass through untouched
        raise TransientError(message + "; a rerun fetches only the failed shards") from first
    return [o for o in outcomes if isinstance(o, ShardExtract)]
