"""Chaos on kind: a shard pod deleted mid-run, and the S3 server stopped for 20 seconds mid-run.

Both rollouts must succeed through Argo's retries (pod errors, exit code 75) and the batch checkpoints;
the first one's published results must equal a clean run of the same snapshot, recomputed with
`eval-runner fleet run --local` in a scratch bucket.

The pod deletion needs shard pods that live long enough to be hit mid-run: at the e2e fleet's size a
shard pod is done in the time Python starts. So that test snapshots its own simulated fleet of
CHAOS_DEVICES into the run's inputs first (fleet-rollout's prepare step reuses an existing snapshot,
as a retried workflow does), and deletes a pod only after the run's first batch is checkpointed.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eval_runner import keys
from eval_runner.contracts import FLEET_SERIES_DAYS
from eval_runner.fleet import snapshot
from eval_runner.fleet.local import ENTRY
from eval_runner.storage import S3ObjectStore
from scripts.demo import cluster
from scripts.demo.argo import Workflow
from scripts.demo.loop import Loop, merge_summary
from tests.fixtures.cluster_runs import checkpointed_shard, data_store, running_shard_pod
from tests.fixtures.e2e_loop import Fleet
from tests.fixtures.fleet import FleetFrameSource

pytestmark = pytest.mark.timeout(2400)

# A version no other e2e test rolls out, so these rollouts publish under their own keys.
VERSION = "0.10.0"
LIBRARY = cluster.REPO / "demo" / "battery-lib" / VERSION
# ~7,000 devices per shard pod: 10-20 s of work each on two cores, 28 checkpointed batches each.
CHAOS_DEVICES = 20_000
# 0.10.0 is the version the gate refuses: these runs test the shard runner, not a release.
CHAOS_REASON = "e2e: chaos test of the shard runner (pod deletion, S3 outage), no gate"
CHAOS_SHARDS = 3
CHAOS_AS_OF = datetime(2026, 1, 20, tzinfo=UTC)


def _snapshot_simulated_fleet(store: S3ObjectStore, devices: int) -> str:
    """A fresh run id whose snapshot holds a simulated fleet of ``devices``."""
    import fieldsim

    run_id = f"chaos-{uuid.uuid4().hex[:10]}"
    config = fieldsim.SimConfig.for_snapshot(
        seed=20260120, devices=devices, as_of=CHAOS_AS_OF, window_days=FLEET_SERIES_DAYS
    )
    snapshot.run(
        snapshot.SnapshotParams(run_id, CHAOS_AS_OF), store=store, source=FleetFrameSource(fieldsim.simulate(config))
    )
    return run_id


def _read(loop: Loop, bucket: str, key: str) -> bytes:
    response = loop.s3.get_object(bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def _results_key(mode: str, summary: dict[str, object]) -> str:
    day = date.fromisoformat(str(summary["as_of"])[:10])
    return keys.fleet_results_key(mode, day, VERSION, str(summary["run_id"]))


def _clean_local_run(loop: Loop, run_id: str, mode: str) -> pl.DataFrame:
    """The same snapshot run cleanly by `fleet run --local` in a scratch bucket; its published results."""
    bucket = f"chaos-ref-{uuid.uuid4().hex[:10]}"
    loop.s3.make_bucket(bucket)
    prefix = f"fleet/runs/{run_id}/inputs/"
    from minio.commonconfig import CopySource

    for obj in loop.s3.list_objects(cluster.DATA_BUCKET, prefix=prefix, recursive=True):
        loop.s3.copy_object(bucket, obj.object_name, CopySource(cluster.DATA_BUCKET, obj.object_name))
    env = {
        **os.environ,
        "FLEET_EVAL_S3_ENDPOINT": cluster.S3_HOST,
        "FLEET_EVAL_S3_ACCESS_KEY": loop.creds.s3_access_key,
        "FLEET_EVAL_S3_SECRET_KEY": loop.creds.s3_secret_key,
        "FLEET_EVAL_S3_BUCKET": bucket,
        "PYTHONPATH": os.pathsep.join([str(LIBRARY), str(cluster.REPO)]),
    }
    command = [sys.executable, "-c", ENTRY, "fleet", "run", "--local", "--workers", "2", "--run-id", run_id]
    done = subprocess.run([*command, "--mode", mode], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)["summary"]
    return pl.read_parquet(io.BytesIO(_read(loop, bucket, _results_key(mode, summary))))


def _skipped_batches(wf: Workflow) -> int:
    """Batches the shard pods found checkpointed already: only a restarted shard skips any in a fresh run.

    Argo brings a deleted shard back either by recreating its pod under the same node (what v4.0.5 did
    here) or, when the pod ended Failed first, by a retry (exit 143 is retried); both must resume.
    """
    return sum(int(outputs.get("skipped") or 0) for outputs in wf.node_outputs("shard"))


def test_deleted_shard_pod_is_retried_and_results_equal_a_clean_run(e2e_loop: Loop, e2e_fleet: Fleet) -> None:
    store = data_store(e2e_loop)
    run_id = _snapshot_simulated_fleet(store, CHAOS_DEVICES)
    name = e2e_loop.submit_rollout(
        VERSION, "fleet", shards=CHAOS_SHARDS, batch_size=250, run_id=run_id, gate_override_reason=CHAOS_REASON
    )
    # Mid-run, and the victim has checkpointed at least one batch of its own (other shards' do not count).
    victim = running_shard_pod(name, checkpointed_shard(store, run_id))
    cluster.kubectl("-n", cluster.NAMESPACE, "delete", "pod", victim, "--wait=false")
    wf = e2e_loop.argo.require_success(e2e_loop.argo.wait(name, timeout=1800))
    assert _skipped_batches(wf) >= 1, f"{victim} was deleted mid-run, yet no shard resumed from checkpoints in {name}"
    summary = merge_summary(wf)
    assert summary["devices"] == CHAOS_DEVICES
    published = pl.read_parquet(io.BytesIO(_read(e2e_loop, cluster.DATA_BUCKET, _results_key("fleet", summary))))
    clean = _clean_local_run(e2e_loop, run_id, "fleet")
    assert published["device_id"].n_unique() == published.height == CHAOS_DEVICES
    assert_frame_equal(published.sort("device_id"), clean.sort("device_id"))


def test_s3_outage_of_20_seconds_is_survived(e2e_loop: Loop, e2e_fleet: Fleet) -> None:
    # configuration (dry run): besides S3, its shards read every device's parameters from the shard APIs.
    name = e2e_loop.submit_rollout(VERSION, "configuration", shards=3, batch_size=50, gate_override_reason=CHAOS_REASON)
    running_shard_pod(name)
    cluster.scale("deployment/s3", 0, "fleet-infra")
    try:
        time.sleep(20)
    finally:
        cluster.scale("deployment/s3", 1, "fleet-infra")
        cluster.kubectl("-n", "fleet-infra", "rollout", "status", "deployment/s3", "--timeout=180s")
    wf = e2e_loop.argo.require_success(e2e_loop.argo.wait(name, timeout=1800))
    assert merge_summary(wf)["devices"] == e2e_fleet.devices
