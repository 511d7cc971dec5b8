"""fetch_month: all shards concurrently, finished shards recorded, a rerun fetches only what failed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from eval_runner.errors import DataError, TransientError
from eval_runner.keys import Month
from eval_runner.sources.extract import MemoryCheckpoint, ShardExtract, fetch_month
from eval_runner.sources.shards import RetryPolicy, ShardClient
from tests.fakes import FakeShard

MONTH = Month(2026, 4)


def _run(shards: list[FakeShard], checkpoint: MemoryCheckpoint) -> list[ShardExtract]:
    async def nosleep(_: float) -> None:
        return None

    async def go() -> list[ShardExtract]:
        clients = [httpx.AsyncClient(base_url="http://s", transport=httpx.MockTransport(s)) for s in shards]
        async with ShardClient(clients, policy=RetryPolicy(attempts=2), sleep=nosleep) as client:
            return await fetch_month(client, MONTH, checkpoint)

    return asyncio.run(go())


def test_rerun_fetches_only_the_shard_that_failed() -> None:
    shards = [FakeShard(i) for i in range(5)]
    shards[3].broken = True
    checkpoint = MemoryCheckpoint()
    with pytest.raises(TransientError, match=r"failed on shard\(s\) \[3\].*rerun fetches only the failed shards"):
        _run(shards, checkpoint)
    assert sorted(checkpoint.records) == [0, 1, 2, 4]

    shards[3].broken = False
    calls_before = [s.calls for s in shards]
    extracts = _run(shards, checkpoint)
    assert [s.calls - before for s, before in zip(shards, calls_before, strict=True)] == [0, 0, 0, 4, 0]
    assert [e.shard for e in extracts] == [0, 1, 2, 3, 4]
    assert extracts[3].battery_parameters[0].device_id == shards[3].device
    assert extracts[3].capacity_tests[0].tested_at == datetime(2026, 4, 20, 10, tzinfo=UTC)


def test_records_are_canonical_bytes() -> None:
    first = _run([FakeShard(i) for i in range(5)], MemoryCheckpoint())
    second = _run([FakeShard(i) for i in range(5)], MemoryCheckpoint())
    assert [e.to_json_bytes() for e in first] == [e.to_json_bytes() for e in second]


def test_a_corrupt_record_is_a_data_error() -> None:
    checkpoint = MemoryCheckpoint({0: b"{not json"})
    with pytest.raises(DataError, match="record of shard 0: not a valid shard extract"):
        _run([FakeShard(i) for i in range(5)], checkpoint)


def test_a_device_without_battery_parameters_is_a_data_error_naming_it() -> None:
    shards = [FakeShard(i) for i in range(5)]
    shards[2].lost_parameters = True
    with pytest.raises(DataError, match=rf"shard 2 /v1/battery-parameters: no parameters .*{shards[2].device}"):
        _run(shards, MemoryCheckpoint())
