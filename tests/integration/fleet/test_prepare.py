"""`fleet prepare`: resolve + snapshot + plan in one process, as fleet-rollout's first pod runs it.

Real S3 (versitygw) and the real package index (pypiserver with the demo's battery-lib wheels). The
snapshot is taken beforehand from the simulator's frames, so prepare reuses it as a retried pod does
and never needs PostgreSQL or the shard APIs.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval_runner import keys
from eval_runner.fleet.snapshot import run_snapshot
from eval_runner.storage import S3ObjectStore
from tests.fixtures.fleet import FleetFrameSource
from tests.integration.fleet.conftest import cli_env, run_cli
from tests.services.package_index import PackageIndex
from tests.services.s3 import S3Server

AS_OF = datetime(2026, 4, 30, tzinfo=UTC)
RUN = "rollout-prepare"
REPOSITORY = "localhost:5001/fleet-eval/runner"


def _store(s3_server: S3Server) -> S3ObjectStore:
    store = S3ObjectStore.from_settings(s3_server.settings(f"prepare-{uuid.uuid4().hex[:12]}"))
    store.ensure_bucket()
    return store


def _prepare(env: dict[str, str], out: Path, version: str, context: Path, *, expect: int = 0) -> Any:
    return run_cli(
        env,
        *("fleet", "prepare", "--run-id", RUN, "--version", version, "--image-repository", REPOSITORY),
        *("--runner-context", str(context)),
        *("--output-dir", str(out), "--as-of", AS_OF.isoformat(), "--batch-size", "4", "--shards", "3"),
        *("--mode", "fleet"),
        expect=expect,
    )


def test_prepare_resolves_reuses_the_snapshot_and_plans(
    s3_server: S3Server, package_index: PackageIndex, fieldsim_fleet: Any, tmp_path: Path, runner_context: Path
) -> None:
    store = _store(s3_server)
    manifest = run_snapshot(RUN, AS_OF, store=store, source=FleetFrameSource(fieldsim_fleet), batch_size=4)
    env = cli_env(s3_server.settings(store.bucket), FLEET_EVAL_INDEX_URL=f"{package_index.url}/simple/")

    shard_ids = _prepare(env, tmp_path, "latest", runner_context)

    assert shard_ids == ["s000", "s001", "s002"]
    assert store.exists(keys.fleet_plan_key(RUN))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["library_version"] == "0.10.0"  # latest in the demo index
    assert summary["devices"] == manifest.n_devices == fieldsim_fleet.devices.height
    assert summary["batches"] == len(manifest.batches)
    assert summary["shards"] == 3
    assert (tmp_path / "library_version.txt").read_text() == "0.10.0"
    assert (tmp_path / "image.txt").read_text().startswith(f"{REPOSITORY}:0.10.0-runner-")
    # No --registry-url: nothing is reported missing, so the workflow builds nothing.
    assert json.loads((tmp_path / "missing.json").read_text()) == []


def test_a_version_typo_fails_before_the_sources_are_read(
    s3_server: S3Server, package_index: PackageIndex, tmp_path: Path, runner_context: Path
) -> None:
    store = _store(s3_server)
    # No snapshot and no PostgreSQL: were the sources read, this would be a transient error (75).
    env = cli_env(s3_server.settings(store.bucket), FLEET_EVAL_INDEX_URL=f"{package_index.url}/simple/")
    _prepare(env, tmp_path, "0.9.9", runner_context, expect=2)
    assert store.list(keys.fleet_run_prefix(RUN)) == []
