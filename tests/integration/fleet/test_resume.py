"""A shard killed with SIGKILL mid-run resumes from its checkpoints; the published result is unchanged."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from eval_runner import keys
from eval_runner.fleet import snapshot
from eval_runner.fleet.run_state import done_batches
from eval_runner.parquet import parquet_to_frame
from eval_runner.storage import S3ObjectStore
from tests.fixtures.fleet import FleetFrameSource
from tests.integration.fleet.conftest import cli_env, eval_runner_command, run_cli
from tests.services.s3 import S3Server

AS_OF = datetime(2026, 4, 30, tzinfo=UTC)
RUN = "fleet-2026-04-30"
VERSION = "0.0.1+fleetstub"
BATCH = 2


def _fresh_store(s3_server: S3Server) -> S3ObjectStore:
    store = S3ObjectStore.from_settings(s3_server.settings(f"fleet-{uuid.uuid4().hex[:12]}"))
    store.ensure_bucket()
    return store


def _snapshot(store: S3ObjectStore, fleet: Any) -> None:
    # batches of 2: many small batches, so the kill lands mid-run with several done and several not
    snapshot.run(snapshot.SnapshotParams(RUN, AS_OF, batch_size=BATCH), store=store, source=FleetFrameSource(fleet))


def _settings(s3_server: S3Server, store: S3ObjectStore) -> dict[str, str]:
    return cli_env(s3_server.settings(store.bucket))


def _results(store: S3ObjectStore) -> bytes:
    return store.get_bytes(keys.fleet_results_key("fleet", AS_OF.date(), VERSION, RUN))


@pytest.mark.slow
def test_sigkilled_shard_resumes_to_byte_identical_results(s3_server: S3Server, fieldsim_fleet: Any) -> None:
    reference = _fresh_store(s3_server)
    _snapshot(reference, fieldsim_fleet)
    env = _settings(s3_server, reference)
    assert run_cli(env, "fleet", "plan", "--run-id", RUN, "--mode", "fleet", "--shards", "1") == ["s000"]
    run_cli(env, "fleet", "shard", "--run-id", RUN, "--shard", "s000")
    run_cli(env, "fleet", "merge", "--run-id", RUN)

    store = _fresh_store(s3_server)
    _snapshot(store, fieldsim_fleet)
    env = _settings(s3_server, store)
    run_cli(env, "fleet", "plan", "--run-id", RUN, "--mode", "fleet", "--shards", "1")
    n_devices = fieldsim_fleet.devices.height
    n_batches = -(-n_devices // BATCH)
    process = subprocess.Popen(
        eval_runner_command("fleet", "shard", "--run-id", RUN, "--shard", "s000"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while len(done_batches(store, RUN)) < 5 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL, "the shard finished before it could be killed"
    done_at_kill = len(done_batches(store, RUN))
    assert 5 <= done_at_kill < n_batches
    run_cli(env, "fleet", "merge", "--run-id", RUN, expect=3)  # not all batches done: a data error

    report = run_cli(env, "fleet", "shard", "--run-id", RUN, "--shard", "s000")
    assert report["skipped"] >= done_at_kill
    assert report["skipped"] + report["processed"] == n_batches
    summary = run_cli(env, "fleet", "merge", "--run-id", RUN)

    published = _results(store)
    assert published == _results(reference)
    results = parquet_to_frame(published, name="results")
    assert summary["devices"] == results.height == n_devices
    assert results.get_column("device_id").is_unique().all()
    assert set(results.get_column("device_id")) == set(fieldsim_fleet.devices.get_column("device_id"))
    assert results.filter(pl.col("capacity_mah_p50").is_null()).height == 0
