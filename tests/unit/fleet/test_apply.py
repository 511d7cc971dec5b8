"""Configuration --apply under faults: done only when confirmed and journaled, pending until resolved."""

from __future__ import annotations

import threading
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import polars as pl
import pytest

from eval_runner import keys
from eval_runner.errors import DataError, TransientError
from eval_runner.fleet import merge, plan, rollback, shard, snapshot
from eval_runner.fleet.apply import ParameterClient, error_rate_halts
from eval_runner.fleet.models import DEFAULT_MAX_ERROR_RATE, DEFAULT_MIN_WRITES, ConfigurationSettings
from eval_runner.fleet.modes import attempt_key
from eval_runner.fleet.plan import DEFAULT_TARGETS
from eval_runner.fleet.shard import ShardReport
from eval_runner.parquet import parquet_to_frame
from tests.fakes import FakePredictor, FakeShardApi, MemoryObjectStore
from tests.fixtures.fleet import AS_OF, SyntheticSource

N = 300  # 3 batches of 100
RUN = "r1"
SHARDS = ("s000", "s001", "s002")


def _prepare(store: MemoryObjectStore, **config: object) -> None:
    snapshot.run(snapshot.SnapshotParams(RUN, AS_OF, batch_size=100), store=store, source=SyntheticSource(N))
    settings = ConfigurationSettings.model_validate({"targets": DEFAULT_TARGETS, "apply": True, **config})
    plan.run(plan.PlanParams(RUN, "configuration", n_shards=3, configuration=settings), store=store)


def _shard(store: MemoryObjectStore, api: FakeShardApi, shard_id: str | None) -> ShardReport:
    def client() -> AbstractAsyncContextManager[ParameterClient]:
        return api

    return shard.run(
        shard.ShardParams(RUN, shard_id or "canary", canary=shard_id is None),
        store=store,
        predictor_factory=FakePredictor,
        client_factory=client,
    )


def _run_all(store: MemoryObjectStore, api: FakeShardApi) -> None:
    _shard(store, api, None)
    for shard_id in SHARDS:
        _shard(store, api, shard_id)


def _to_change(api: FakeShardApi) -> list[str]:
    return sorted(
        d
        for d, p in api.parameters.items()
        if (p.nominal_capacity_mah, p.cutoff_mv)
        != (DEFAULT_TARGETS[p.chemistry].nominal_capacity_mah, DEFAULT_TARGETS[p.chemistry].cutoff_mv)
    )


def _after_canary(devices: list[str]) -> list[str]:
    """Devices outside the canary batch 0 (a canary with failures blocks the shards, on purpose)."""
    return [d for d in devices if d >= "trv-000100"]


def _report(store: MemoryObjectStore, name: str) -> pl.DataFrame:
    return parquet_to_frame(store.objects[keys.fleet_report_key(RUN, name)], name=name)


def _published_rollback(store: MemoryObjectStore) -> pl.DataFrame:
    key = keys.fleet_results_sibling_key("configuration", AS_OF.date(), "none", RUN, "rollback.parquet")
    return parquet_to_frame(store.objects[key], name="rollback")


class _JournalFails(MemoryObjectStore):
    """S3 refusing journal writes for the devices in ``refuse`` (once each), after their PUT."""

    def __init__(self, refuse: set[str]) -> None:
        super().__init__()
        self.refuse = set(refuse)
        self.lock = threading.Lock()

    def _write(self, key: str, data: bytes, sha256: str, *, if_absent: bool) -> None:
        with self.lock:  # journal writes run in threads (asyncio.to_thread)
            device = next((d for d in self.refuse if "/journal/" in key and key.endswith(f"device={d}.json")), None)
            self.refuse.discard(device or "")
        if device is not None:
            raise TransientError(f"put s3://bucket/{key}: S3 is busy (SlowDown); gave up after 4 attempts")
        super()._write(key, data, sha256, if_absent=if_absent)


def test_a_lost_answer_is_resolved_by_reading_the_device_back() -> None:
    store = MemoryObjectStore()
    api = FakeShardApi.for_source(SyntheticSource(N), AS_OF)
    changing = _to_change(api)
    api.lose_answer = set(changing[::3])
    _prepare(store)
    _run_all(store, api)
    summary = merge.run(merge.MergeParams(RUN), store=store)
    assert summary.counts["updated"] == len(changing)
    assert summary.counts["failures"] == 0
    assert set(api.applied.values()) == {1}  # nothing written twice
    assert sum(api.puts.values()) == len(changing)  # and no PUT sent again: the read-back told
    assert set(_published_rollback(store).get_column("device_id")) == set(changing)


def test_a_put_that_failed_stays_pending_and_the_run_is_not_published_until_resumed() -> None:
    store = MemoryObjectStore()
    api = FakeShardApi.for_source(SyntheticSource(N), AS_OF)
    changing = _to_change(api)
    dropped = set(_after_canary(changing)[1::10])
    api.drop_put = set(dropped)
    _prepare(store, max_error_rate=0.5)
    _run_all(store, api)
    with pytest.raises(DataError, match=rf"{len(dropped)} devices are not resolved .*/failed\.parquet"):
        merge.run(merge.MergeParams(RUN), store=store)
    failed = _report(store, "failed.parquet")
    assert set(failed.get_column("device_id")) == dropped
    assert failed.get_column("error").str.starts_with("not written").all()
    assert not store.list("fleet/results/")  # nothing published while devices are unresolved
    assert len(_report(store, "rollback.parquet")) == sum(api.applied.values())

    puts = sum(api.puts.values())
    for shard_id in SHARDS:  # resume: only the pending batches run, only their failed devices are sent
        _shard(store, api, shard_id)
    assert sum(api.puts.values()) == puts + len(dropped)
    summary = merge.run(merge.MergeParams(RUN), store=store)
    assert summary.counts["updated"] == len(changing)
    assert set(api.applied.values()) == {1}
    assert _published_rollback(store).height == sum(api.applied.values()) == len(changing)


def test_a_journal_write_that_fails_after_the_put_keeps_the_device_in_the_rollback() -> None:
    api = FakeShardApi.for_source(SyntheticSource(N), AS_OF)
    changing = _to_change(api)
    refused = set(_after_canary(changing)[2::7])
    store = _JournalFails(refused)
    _prepare(store, max_error_rate=0.5)
    _run_all(store, api)
    with pytest.raises(DataError, match="not resolved"):
        merge.run(merge.MergeParams(RUN), store=store)
    failed = _report(store, "failed.parquet")
    assert set(failed.get_column("device_id")) == refused
    assert failed.get_column("written").to_list() == [True] * len(refused)
    # written but not journaled: still restored by the rollback, which matches the PUTs applied
    rollback = _report(store, "rollback.parquet")
    assert set(rollback.get_column("device_id")) == set(api.applied) == set(changing)

    puts = sum(api.puts.values())
    for shard_id in SHARDS:
        _shard(store, api, shard_id)
    assert sum(api.puts.values()) == puts  # resolved from the intent and a GET: no PUT sent again
    summary = merge.run(merge.MergeParams(RUN), store=store)
    assert summary.counts == {"devices": N, "updated": len(changing), "failures": 0}
    assert set(_published_rollback(store).get_column("device_id")) == set(changing)


def test_a_write_after_a_412_uses_a_new_idempotency_key_and_succeeds() -> None:
    # The shard caches the 412 under the key; reusing it, the retry could never succeed.
    store = MemoryObjectStore()
    api = FakeShardApi.for_source(SyntheticSource(N), AS_OF)
    changing = _to_change(api)
    api.interfere = set(changing[:5])
    _prepare(store)
    _run_all(store, api)
    summary = merge.run(merge.MergeParams(RUN), store=store)
    assert summary.counts["updated"] == len(changing)
    assert all(api.puts[d] == 2 and api.applied[d] == 1 for d in changing[:5])
    results = parquet_to_frame(
        store.objects[keys.fleet_results_key("configuration", AS_OF.date(), "none", RUN)], name="results"
    )
    sent = dict(results.select("device_id", "idempotency_key").iter_rows())
    device = changing[0]
    etag_after_interference = f'"{device}-1"'
    assert sent[device] == attempt_key(_base_key(device), etag_after_interference)


def _base_key(device: str) -> str:
    from eval_runner.fleet.modes import idempotency_key

    chemistry = SyntheticSource(N).devices([device], AS_OF).row(0, named=True)["battery_chemistry"]
    return idempotency_key(RUN, device, DEFAULT_TARGETS[chemistry])


def test_one_failure_among_few_writes_does_not_halt() -> None:
    store = MemoryObjectStore()
    api = FakeShardApi.for_source(SyntheticSource(N), AS_OF)
    changing = _to_change(api)
    api.drop_put = {changing[0]}  # in the canary batch: 1 of its writes fails, a rate of a few percent
    _prepare(store, max_error_rate=0.0, min_writes=1000)
    _shard(store, api, None)
    assert keys.fleet_halt_key(RUN) not in store.objects
    # The same failure once a single write is enough for the rate to count: it halts.
    halting = ConfigurationSettings.model_validate(
        {"targets": DEFAULT_TARGETS, "apply": True, "max_error_rate": 0.0, "min_writes": 1}
    )
    store2 = MemoryObjectStore()
    api2 = FakeShardApi.for_source(SyntheticSource(N), AS_OF)
    api2.drop_put = {changing[0]}
    snapshot.run(snapshot.SnapshotParams(RUN, AS_OF, batch_size=100), store=store2, source=SyntheticSource(N))
    plan.run(plan.PlanParams(RUN, "configuration", n_shards=3, configuration=halting), store=store2)
    with pytest.raises(DataError, match="halted"):
        _shard(store2, api2, None)
    assert keys.fleet_report_key(RUN, "rollback.parquet") in store2.objects


def test_options_are_refused_before_any_source_is_read(tmp_path: Path) -> None:
    from eval_runner.cli import main

    # No S3, shard or database settings at all: the error must come from the options alone.
    assert main(["fleet", "run", "--local", "--run-id", "x", "--mode", "fleet", "--apply"]) == 2
    targets = tmp_path / "targets.json"
    targets.write_text("not json")
    code = main(["fleet", "run", "--local", "--run-id", "x", "--mode", "configuration", "--targets", str(targets)])
    assert code == 2


def test_rollback_restores_exactly_the_written_devices_and_leaves_later_changes_alone() -> None:
    store = MemoryObjectStore()
    api = FakeShardApi.for_source(SyntheticSource(N), AS_OF)
    originals = {d: p.model_copy() for d, p in api.parameters.items()}
    changing = _to_change(api)
    api.drop_put = set(_after_canary(changing)[::9])  # some writes fail: the run ends unresolved
    _prepare(store, max_error_rate=0.5)
    _run_all(store, api)
    with pytest.raises(DataError, match="not resolved"):
        merge.run(merge.MergeParams(RUN), store=store)
    written = set(api.applied)
    touched_later = sorted(written)[-1]  # an operator changes one device after the run wrote it
    api.versions[touched_later] += 1

    def client() -> AbstractAsyncContextManager[ParameterClient]:
        return api

    assert rollback.run(rollback.RollbackParams(RUN, apply=False), store=store, client_factory=client) == {
        "run_id": RUN,
        "mode": "dry-run",
        "would_restore": len(written),
    }
    puts = sum(api.puts.values())
    with pytest.raises(DataError, match=r"1 devices not restored and 0 not attempted"):
        rollback.run(rollback.RollbackParams(RUN, apply=True, max_error_rate=0.5), store=store, client_factory=client)
    assert sum(api.puts.values()) == puts + len(written) - 1
    for device in written - {touched_later}:
        assert api.parameters[device] == originals[device]
    assert api.parameters[touched_later] != originals[touched_later]
    # Resumed, the rollback sends nothing again: its journal holds every restored device, and says so.
    with pytest.raises(DataError, match=r"1 devices not restored") as resumed:
        rollback.run(rollback.RollbackParams(RUN, apply=True, max_error_rate=0.5), store=store, client_factory=client)
    assert sum(api.puts.values()) == puts + len(written) - 1
    assert "'tried': 1," in str(resumed.value)  # only the device someone changed is tried again (and refused)


def test_configuration_settings_default_to_the_halt_constants() -> None:
    """The plan's model repeats the halt defaults as literals (models.py is being reworked): they must agree."""
    settings = ConfigurationSettings(targets=DEFAULT_TARGETS)
    assert (settings.max_error_rate, settings.min_writes) == (DEFAULT_MAX_ERROR_RATE, DEFAULT_MIN_WRITES)


@pytest.mark.parametrize(
    ("attempted", "failed", "halts"),
    [(19, 19, False), (20, 1, False), (20, 2, True), (100, 5, False), (100, 6, True)],
)
def test_error_rate_halts_only_above_the_rate_and_after_enough_writes(attempted: int, failed: int, halts: bool) -> None:
    assert error_rate_halts(attempted, failed, max_error_rate=0.05, min_writes=20) is halts
