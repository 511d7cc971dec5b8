"""Configuration mode against the simulator's shards and database, with the real S3."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from minio import Minio
from polars.testing import assert_frame_equal

from eval_runner import keys
from eval_runner.contracts import FLEET_SERIES_DAYS
from eval_runner.fleet.models import SnapshotManifest
from eval_runner.fleet.plan import DEFAULT_TARGETS
from eval_runner.fleet.run_state import done_batches, load_run
from eval_runner.fleet.shard import read_inputs
from eval_runner.parquet import parquet_to_frame
from eval_runner.settings import S3Settings
from eval_runner.storage import S3ObjectStore
from tests.integration.fleet.conftest import cli_env, run_cli

AS_OF = datetime(2026, 4, 30, tzinfo=UTC)
RUN = "configuration-2026-04-30"
BATCH = "10"
# fieldsim ships no type information; use it untyped rather than silencing mypy line by line.
fieldsim_shards: Any = importlib.import_module("fieldsim.shards")
snapshot_input: Any = importlib.import_module("fieldsim.library_input").snapshot_input


def _env(s3_settings: S3Settings, sources: Any) -> dict[str, str]:
    return cli_env(
        s3_settings,
        FLEET_EVAL_SHARDS_URLS=",".join(sources.shard_urls),
        FLEET_EVAL_POSTGRES_DSN=sources.postgres_dsn,
    )


def _requests(sources: Any) -> int:
    return sum(sources.requests(shard) for shard in range(5))


def _applied(sources: Any) -> int:
    return sum(sources.puts_applied(shard) for shard in range(5))


def _to_change(sources: Any) -> set[str]:
    params = sources.fleet.battery_parameters
    changed = set()
    for row in params.iter_rows(named=True):
        target = DEFAULT_TARGETS[row["chemistry"]]
        if (row["nominal_capacity_mah"], row["cutoff_mv"]) != (target.nominal_capacity_mah, target.cutoff_mv):
            changed.add(row["device_id"])
    return changed


def _snapshot(env: dict[str, str]) -> None:
    run_cli(env, "fleet", "snapshot", "--run-id", RUN, "--as-of", AS_OF.isoformat(), "--batch-size", BATCH)


def test_live_snapshot_then_dry_run_changes_nothing(
    object_store: S3ObjectStore, s3_settings: S3Settings, fieldsim_sources: Any
) -> None:
    env = _env(s3_settings, fieldsim_sources)
    _snapshot(env)
    key = keys.fleet_snapshot_manifest_key(RUN)
    manifest = SnapshotManifest.from_json_bytes(object_store.get_bytes(key), name=key)
    parts = [read_inputs(object_store, manifest, b.batch) for b in manifest.batches]
    expected_samples, expected_series = snapshot_input(fieldsim_sources.fleet, AS_OF, FLEET_SERIES_DAYS)
    assert_frame_equal(pl.concat([p[0] for p in parts]).sort("sample_id"), expected_samples)
    assert_frame_equal(pl.concat([p[1] for p in parts]).sort("sample_id", "ts"), expected_series)

    requests = _requests(fieldsim_sources)
    run_cli(env, "fleet", "plan", "--run-id", RUN, "--mode", "configuration", "--shards", "2")
    for shard in ("s000", "s001"):
        run_cli(env, "fleet", "shard", "--run-id", RUN, "--shard", shard)
    summary = run_cli(env, "fleet", "merge", "--run-id", RUN)
    assert _applied(fieldsim_sources) == 0
    assert _requests(fieldsim_sources) == requests  # the dry run diffs the snapshot; it calls no shard
    assert summary["mode"] == "configuration-dry-run"
    assert summary["counts"]["would_update"] == len(_to_change(fieldsim_sources)) > 0
    diff = parquet_to_frame(
        object_store.get_bytes(keys.fleet_results_key("configuration-dry-run", AS_OF.date(), "none", RUN)), name="diff"
    )
    assert set(diff.filter(pl.col("action") == "would_update").get_column("device_id")) == _to_change(fieldsim_sources)


@pytest.mark.slow
def test_apply_writes_each_device_once_and_a_retried_batch_sends_nothing(
    object_store: S3ObjectStore, s3_settings: S3Settings, fieldsim_sources: Any
) -> None:
    env = _env(s3_settings, fieldsim_sources)
    expected = _to_change(fieldsim_sources)
    out = run_cli(
        env, "fleet", "run", "--local", "--workers", "2", "--run-id", RUN, "--mode", "configuration", "--apply",
        "--as-of", AS_OF.isoformat(), "--batch-size", BATCH, "--max-error-rate", "0.2",
    )  # fmt: skip
    assert out["summary"]["counts"]["updated"] == len(expected)
    assert _applied(fieldsim_sources) == len(expected)

    # A retried batch: its journal was written but its .done marker is lost (pod killed just before).
    plan, _ = load_run(object_store, RUN)
    batch = next(
        b
        for b in range(1, plan.n_batches)
        if parquet_to_frame(object_store.get_bytes(keys.fleet_batch_key(RUN, b)), name=f"batch {b}")
        .filter(pl.col("action") == "updated")
        .height
    )
    Minio(
        s3_settings.endpoint,
        access_key=s3_settings.access_key.get_secret_value(),
        secret_key=s3_settings.secret_key.get_secret_value(),
        secure=False,
    ).remove_object(s3_settings.bucket, keys.fleet_batch_done_key(RUN, batch))
    assert batch not in done_batches(object_store, RUN)
    requests, applied = _requests(fieldsim_sources), _applied(fieldsim_sources)
    shard = next(s for s, batches in plan.shards.items() if batch in batches)
    report = run_cli(env, "fleet", "shard", "--run-id", RUN, "--shard", shard)
    assert report["processed"] == 1
    assert _requests(fieldsim_sources) == requests  # no GET, no PUT: every write of the batch is journaled
    assert _applied(fieldsim_sources) == applied
    assert batch in done_batches(object_store, RUN)

    rollback = parquet_to_frame(
        object_store.get_bytes(
            keys.fleet_results_sibling_key("configuration", AS_OF.date(), "none", RUN, "rollback.parquet")
        ),
        name="rollback",
    )
    before = fieldsim_sources.fleet.battery_parameters.select(
        "device_id", pl.col("cutoff_mv").cast(pl.Int32).alias("previous_cutoff_mv")
    )
    assert set(rollback.get_column("device_id")) == expected
    assert_frame_equal(
        rollback.select("device_id", "previous_cutoff_mv").sort("device_id"),
        before.filter(pl.col("device_id").is_in(list(expected))).sort("device_id"),
    )


@pytest.mark.slow
def test_apply_halts_on_injected_faults(
    object_store: S3ObjectStore, s3_settings: S3Settings, fieldsim_sources: Any
) -> None:
    env = _env(s3_settings, fieldsim_sources)
    _snapshot(env)
    for shard in range(5):
        fieldsim_sources.set_faults(shard, fieldsim_shards.Faults(error_rate=1.0, seed=shard))
    run_cli(
        env, "fleet", "run", "--local", "--run-id", RUN, "--mode", "configuration", "--apply",
        "--as-of", AS_OF.isoformat(), "--batch-size", BATCH, "--max-error-rate", "0.2", "--min-writes", "1",
        expect=3,
    )  # fmt: skip
    assert object_store.exists(keys.fleet_halt_key(RUN))
    assert _applied(fieldsim_sources) == 0
    rollback = parquet_to_frame(object_store.get_bytes(keys.fleet_report_key(RUN, "rollback.parquet")), name="rb")
    assert rollback.height == 0  # published on the halt, and exactly the PUTs applied: none
    assert _requests(fieldsim_sources) > 0
    fieldsim_sources.clear_faults()
    run_cli(env, "fleet", "merge", "--run-id", RUN, expect=3)  # a halted run is never published
    assert not object_store.list("fleet/results/")
