from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import polars as pl
import pytest

from eval_runner import keys
from eval_runner.errors import ConfigError, DataError
from eval_runner.fleet import merge, plan, shard, snapshot
from eval_runner.fleet.apply import ParameterClient
from eval_runner.fleet.models import ConfigurationSettings, GateBinding, Mode, Plan, Summary
from eval_runner.fleet.plan import DEFAULT_TARGETS
from eval_runner.fleet.shard import ShardReport
from eval_runner.parquet import parquet_to_frame
from tests.fakes import FakePredictor, FakeShardApi, MemoryObjectStore
from tests.fixtures.fleet import AS_OF, SyntheticSource

N = 1050  # 11 batches of 100, the last one short
RUN = "r1"


def _prepare(store: MemoryObjectStore, mode: Mode = "fleet", shards: int = 3, **config: object) -> None:
    snapshot.run(snapshot.SnapshotParams("r1", AS_OF, batch_size=100), store=store, source=SyntheticSource(N))
    settings = None
    if mode == "configuration":
        settings = ConfigurationSettings.model_validate({"targets": DEFAULT_TARGETS, **config})
    plan.run(plan.PlanParams("r1", mode, n_shards=shards, configuration=settings), store=store)


def _all_shards(store: MemoryObjectStore, predictor: Callable[[], FakePredictor] = FakePredictor) -> None:
    for shard_id in ("s000", "s001", "s002"):
        shard.run(shard.ShardParams("r1", shard_id), store=store, predictor_factory=predictor)


def _published(store: MemoryObjectStore, mode: str) -> bytes:
    return store.objects[keys.fleet_results_key(mode, AS_OF.date(), "0.0.0+fake", RUN)]


def test_fleet_run_publishes_every_device_once(memory_store: MemoryObjectStore) -> None:
    _prepare(memory_store)
    _all_shards(memory_store)
    summary = merge.run(merge.MergeParams("r1"), store=memory_store)
    results = parquet_to_frame(_published(memory_store, "fleet"), name="results")
    assert summary.devices == results.height == N
    assert results.get_column("device_id").is_unique().all()
    assert results.get_column("device_id").is_sorted()
    assert results.get_column("capacity_mah_p10").null_count() == 0
    summary_key = keys.fleet_results_sibling_key("fleet", AS_OF.date(), "0.0.0+fake", RUN, "summary.json")
    assert summary_key in memory_store.objects
    again = merge.run(merge.MergeParams("r1"), store=memory_store)  # idempotent: same bytes, no error
    assert again == summary


def test_a_rerun_skips_done_batches_and_publishes_identical_bytes(memory_store: MemoryObjectStore) -> None:
    reference = MemoryObjectStore()
    _prepare(reference)
    _all_shards(reference)
    merge.run(merge.MergeParams("r1"), store=reference)

    class Crashing(FakePredictor):
        def predict(self, samples: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
            if self.calls == 2:
                raise RuntimeError("killed")
            return super().predict(samples, series)

    _prepare(memory_store)
    with pytest.raises(RuntimeError):
        shard.run(shard.ShardParams("r1", "s000"), store=memory_store, predictor_factory=Crashing)
    with pytest.raises(DataError, match="not done"):
        merge.run(merge.MergeParams("r1"), store=memory_store)
    report = shard.run(shard.ShardParams("r1", "s000"), store=memory_store, predictor_factory=FakePredictor)
    assert (report.skipped, report.processed) == (2, 2)
    _all_shards(memory_store)
    merge.run(merge.MergeParams("r1"), store=memory_store)
    assert _published(memory_store, "fleet") == _published(reference, "fleet")
    done = keys.fleet_batch_done_key("r1", 0)
    assert memory_store.writes.count(done) == 1


def test_progress_file_counts_devices(memory_store: MemoryObjectStore, tmp_path: Path) -> None:
    _prepare(memory_store)
    progress = tmp_path / "progress"
    shard.run(
        shard.ShardParams("r1", "s002", progress_path=progress), store=memory_store, predictor_factory=FakePredictor
    )
    assert progress.read_text() == "250/250\n"  # batches 8 and 9 (100 each) and 10 (50)
    shard.run(
        shard.ShardParams("r1", "s002", progress_path=progress), store=memory_store, predictor_factory=FakePredictor
    )
    assert progress.read_text() == "250/250\n"


def test_a_changed_result_under_a_done_marker_fails_the_merge(memory_store: MemoryObjectStore) -> None:
    _prepare(memory_store)
    _all_shards(memory_store)
    key = keys.fleet_batch_key("r1", 4)
    memory_store.objects[key] = memory_store.objects[keys.fleet_batch_key("r1", 5)]
    with pytest.raises(DataError, match=r"batch=00004\.parquet.*does not match"):
        merge.run(merge.MergeParams("r1"), store=memory_store)


def test_distributions_mode_publishes_bucket_counts(memory_store: MemoryObjectStore) -> None:
    _prepare(memory_store, mode="fleet-q10-distributions")
    _all_shards(memory_store)
    merge.run(merge.MergeParams("r1"), store=memory_store)
    table = parquet_to_frame(_published(memory_store, "fleet-q10-distributions"), name="results")
    overall = table.filter(pl.col("scope") == "overall")
    assert overall.group_by("quantity").agg(pl.col("devices").sum()).get_column("devices").to_list() == [N, N]
    assert set(table.get_column("hardware_revision").drop_nulls()) == {"B", "C"}


def test_a_run_stored_in_the_old_encoding_replans_and_merges_again_as_a_no_op(memory_store: MemoryObjectStore) -> None:
    _prepare(memory_store)
    _all_shards(memory_store)
    summary = merge.run(merge.MergeParams("r1"), store=memory_store)
    summary_key = keys.fleet_results_sibling_key("fleet", AS_OF.date(), "0.0.0+fake", RUN, "summary.json")
    plan_key = keys.fleet_plan_key("r1")
    for key, record in ((plan_key, Plan), (summary_key, Summary)):  # before sorted keys: field order, indent 1
        stored = record.from_json_bytes(memory_store.objects[key], name=key)
        memory_store.objects[key] = (stored.model_dump_json(indent=1, exclude_none=record is Plan) + "\n").encode()
    old = dict(memory_store.objects)
    memory_store.writes.clear()
    plan.run(plan.PlanParams("r1", "fleet", n_shards=3), store=memory_store)
    assert merge.run(merge.MergeParams("r1"), store=memory_store) == summary
    assert memory_store.objects == old
    assert plan_key not in memory_store.writes and summary_key not in memory_store.writes


def test_replanning_differently_is_refused(memory_store: MemoryObjectStore) -> None:
    _prepare(memory_store)
    plan.run(plan.PlanParams("r1", "fleet", n_shards=3), store=memory_store)
    with pytest.raises(DataError, match="already planned differently"):
        plan.run(plan.PlanParams("r1", "fleet", n_shards=4), store=memory_store)


def _client(api: FakeShardApi) -> Callable[[], AbstractAsyncContextManager[ParameterClient]]:
    return lambda: api


def _apply_shard(store: MemoryObjectStore, shard_id: str, api: FakeShardApi, *, canary: bool = False) -> ShardReport:
    return shard.run(
        shard.ShardParams("r1", shard_id, canary=canary),
        store=store,
        predictor_factory=FakePredictor,
        client_factory=_client(api),
    )


def _changed(api: FakeShardApi) -> int:
    frame = SyntheticSource(N).devices(SyntheticSource(N).device_ids(), AS_OF)
    targets = {k: (t.nominal_capacity_mah, t.cutoff_mv) for k, t in DEFAULT_TARGETS.items()}
    return sum(
        (r["nominal_capacity_mah"], r["cutoff_mv"]) != targets[r["battery_chemistry"]]
        for r in frame.iter_rows(named=True)
    )


def test_dry_run_changes_nothing(memory_store: MemoryObjectStore) -> None:
    api = FakeShardApi.for_source(SyntheticSource(N), AS_OF)
    _prepare(memory_store, mode="configuration")
    for shard_id in ("s000", "s001", "s002"):
        _apply_shard(memory_store, shard_id, api)
    summary = merge.run(merge.MergeParams("r1"), store=memory_store)
    assert api.puts == {}
    assert summary.mode == "configuration-dry-run"
    assert summary.counts["would_update"] == _changed(api) > 0


def test_apply_needs_the_canary_then_writes_each_device_once(memory_store: MemoryObjectStore) -> None:
    api = FakeShardApi.for_source(SyntheticSource(N), AS_OF)
    expected = _changed(api)
    _prepare(memory_store, mode="configuration", apply=True)
    with pytest.raises(ConfigError, match="canary batch 0 is not done"):
        _apply_shard(memory_store, "s001", api)
    shard.run(
        shard.ShardParams("r1", "s000", canary=True),
        store=memory_store,
        predictor_factory=FakePredictor,
        client_factory=_client(api),
    )
    for shard_id in ("s000", "s001", "s002"):
        _apply_shard(memory_store, shard_id, api)
    assert sum(api.puts.values()) == len(api.puts) == expected
    # a retried batch (its marker lost after the journal was written) sends no second PUT
    del memory_store.objects[keys.fleet_batch_done_key("r1", 5)]
    puts_before = dict(api.puts)
    report = _apply_shard(memory_store, "s001", api)
    assert report.processed == 1
    assert api.puts == puts_before
    summary = merge.run(merge.MergeParams("r1"), store=memory_store)
    assert summary.counts["updated"] == expected
    rollback_key = keys.fleet_results_sibling_key("configuration", AS_OF.date(), "none", RUN, "rollback.parquet")
    rollback = parquet_to_frame(memory_store.objects[rollback_key], name="rollback")
    assert rollback.height == expected
    first = rollback.row(0, named=True)
    assert api.parameters[first["device_id"]].nominal_capacity_mah in (2600.0, 3000.0)
    original = SyntheticSource(N).devices([first["device_id"]], AS_OF).row(0, named=True)
    assert first["previous_nominal_capacity_mah"] == original["nominal_capacity_mah"]
    assert first["previous_cutoff_mv"] == original["cutoff_mv"]


class _PodDiesBeforeJournal(MemoryObjectStore):
    """A store whose journal writes fail while ``dying``: a pod killed between a PUT and its journal entry."""

    dying = True

    def _write(self, key: str, data: bytes, sha256: str, *, if_absent: bool) -> None:
        if self.dying and "/journal/" in key:
            raise RuntimeError(f"pod killed before {key} was written")
        super()._write(key, data, sha256, if_absent=if_absent)


def test_a_put_whose_journal_was_lost_is_not_sent_again_and_stays_in_the_rollback() -> None:
    store = _PodDiesBeforeJournal()
    api = FakeShardApi.for_source(SyntheticSource(N), AS_OF)
    originals = {d: p.model_copy() for d, p in api.parameters.items()}
    _prepare(store, mode="configuration", apply=True)
    store.dying = False
    _apply_shard(store, "s000", api, canary=True)
    store.dying = True
    with pytest.raises(RuntimeError, match="pod killed"):
        _apply_shard(store, "s001", api)
    landed = {d for d, n in api.puts.items() if n and originals[d] != api.parameters[d]}
    assert landed, "no PUT landed before the simulated crash"
    store.dying = False
    for shard_id in ("s000", "s001", "s002"):
        _apply_shard(store, shard_id, api)
    assert set(api.puts.values()) == {1}, "a device was sent a second PUT"
    merge.run(merge.MergeParams("r1"), store=store)
    rollback_key = keys.fleet_results_sibling_key("configuration", AS_OF.date(), "none", RUN, "rollback.parquet")
    rollback = parquet_to_frame(store.objects[rollback_key], name="rollback")
    assert rollback.height == _changed(api) == len(api.puts)
    restored = {r["device_id"]: r for r in rollback.iter_rows(named=True)}
    for device in landed:  # their journal entries were lost; the intents kept what they held before
        assert restored[device]["previous_nominal_capacity_mah"] == originals[device].nominal_capacity_mah
        assert restored[device]["previous_cutoff_mv"] == originals[device].cutoff_mv


def test_apply_halts_when_the_error_rate_passes_the_threshold(memory_store: MemoryObjectStore) -> None:
    api = FakeShardApi.for_source(SyntheticSource(N), AS_OF)
    api.failing = {f"trv-{i:06d}" for i in range(400, 600)}  # batches 4 and 5 fail entirely
    _prepare(memory_store, mode="configuration", apply=True, max_error_rate=0.1)
    shard.run(
        shard.ShardParams("r1", "s000", canary=True),
        store=memory_store,
        predictor_factory=FakePredictor,
        client_factory=_client(api),
    )
    with pytest.raises(DataError, match="halted: shard s001 failed 100 of 100 writes by batch 4"):
        _apply_shard(memory_store, "s001", api)
    assert keys.fleet_halt_key("r1") in memory_store.objects
    assert keys.fleet_batch_done_key("r1", 4) not in memory_store.objects
    assert keys.fleet_batch_pending_key("r1", 4) in memory_store.objects
    # The halted run has its rollback (the canary's writes) and the list of failed devices at once.
    rollback = parquet_to_frame(memory_store.objects[keys.fleet_report_key("r1", "rollback.parquet")], name="rb")
    failed = parquet_to_frame(memory_store.objects[keys.fleet_report_key("r1", "failed.parquet")], name="failed")
    assert rollback.height == sum(api.puts.values()) > 0
    assert failed.height == 100
    assert failed.get_column("written").to_list() == [False] * 100
    puts = sum(api.puts.values())
    with pytest.raises(DataError, match="halted"):
        _apply_shard(memory_store, "s002", api)
    with pytest.raises(DataError, match="halted"):
        merge.run(merge.MergeParams("r1"), store=memory_store)
    assert sum(api.puts.values()) == puts


def test_a_second_run_on_the_same_day_publishes_beside_the_first(memory_store: MemoryObjectStore) -> None:
    # Two runs of one version and mode on one day are two computations: neither replaces the other.
    _prepare(memory_store)
    _all_shards(memory_store)
    first = merge.run(merge.MergeParams(RUN), store=memory_store)
    snapshot.run(snapshot.SnapshotParams("r2", AS_OF, batch_size=100), store=memory_store, source=SyntheticSource(N))
    plan.run(plan.PlanParams("r2", "fleet", n_shards=3, configuration=None), store=memory_store)
    for shard_id in ("s000", "s001", "s002"):
        shard.run(shard.ShardParams("r2", shard_id), store=memory_store, predictor_factory=FakePredictor)
    second = merge.run(merge.MergeParams("r2"), store=memory_store)
    assert (first.run_id, second.run_id) == ("r1", "r2")
    assert keys.fleet_results_key("fleet", AS_OF.date(), "0.0.0+fake", "r2") in memory_store.objects
    assert (
        _published(memory_store, "fleet")
        == memory_store.objects[keys.fleet_results_key("fleet", AS_OF.date(), "0.0.0+fake", "r2")]
    )


def test_a_plan_records_its_gate_binding_or_override_and_an_ungated_plan_reads_as_before(
    memory_store: MemoryObjectStore,
) -> None:
    snapshot.run(snapshot.SnapshotParams("r1", AS_OF, batch_size=100), store=memory_store, source=SyntheticSource(N))
    binding = GateBinding(
        release_id="release-0-9-0", verdict="pass", library_version="0.9.0",
        candidate_image="sha256:" + "ab" * 32, image="localhost:5001/fleet-eval/runner@sha256:" + "ab" * 32,
    )  # fmt: skip
    planned = plan.run(plan.PlanParams("r1", "fleet", n_shards=3, gate=binding), store=memory_store)
    stored = Plan.from_json_bytes(memory_store.objects[keys.fleet_plan_key("r1")], name="plan")
    assert stored.gate == binding and stored.gate_override_reason is None and stored == planned
    with pytest.raises(DataError, match="already planned differently"):
        plan.run(plan.PlanParams("r1", "fleet", n_shards=3, gate_override_reason="e2e"), store=memory_store)
    with pytest.raises(ConfigError, match="not both"):
        plan.run(
            plan.PlanParams("r1", "fleet", n_shards=3, gate=binding, gate_override_reason="e2e"), store=memory_store
        )

    ungated = plan.run(plan.PlanParams("r2", "fleet", n_shards=3), store=_snapshotted("r2"))
    assert b'"gate' not in ungated.to_json_bytes()  # it reads as a plan from before the gated rollout
    assert Plan.from_json_bytes(ungated.to_json_bytes(), name="plan") == ungated


def _snapshotted(run_id: str) -> MemoryObjectStore:
    store = MemoryObjectStore()
    snapshot.run(snapshot.SnapshotParams(run_id, AS_OF, batch_size=100), store=store, source=SyntheticSource(N))
    return store
