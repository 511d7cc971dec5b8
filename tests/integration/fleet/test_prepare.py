"""`fleet prepare`: resolve + snapshot + plan in one process, as fleet-rollout's first pod runs it.

Real S3 (versitygw) and the real package index (pypiserver with the demo's battery-lib wheels); the
registry is a stub answering manifest HEADs with one digest. The snapshot is taken beforehand from the
simulator's frames, so prepare reuses it as a retried pod does and never needs PostgreSQL or the shard
APIs: were the sources read, the test would see a transient error (75).
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from eval_runner import keys
from eval_runner.fleet import snapshot
from eval_runner.fleet.models import Plan
from eval_runner.storage import S3ObjectStore
from tests.fixtures.decisions import digest, gate_decision, store_decision
from tests.fixtures.fleet import FleetFrameSource
from tests.integration.fleet.conftest import cli_env, eval_runner_command, run_cli
from tests.services.package_index import PackageIndex
from tests.services.s3 import S3Server

AS_OF = datetime(2026, 4, 30, tzinfo=UTC)
RUN = "rollout-prepare"
REPOSITORY = "localhost:5001/fleet-eval/runner"
SERVED = digest("the 0.9.0 runner image the registry serves")


class _Registry(BaseHTTPRequestHandler):
    """A registry's manifest endpoint: every runner tag exists, with the digest SERVED."""

    def do_HEAD(self) -> None:
        found = self.path.startswith("/v2/fleet-eval/runner/manifests/")
        self.send_response(200 if found else 404)
        if found:
            self.send_header("Docker-Content-Digest", SERVED)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def registry() -> Iterator[list[str]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield ["--registry-url", url, "--registry-repository", "fleet-eval/runner"]
    httpd.shutdown()
    httpd.server_close()


def _store(s3_server: S3Server) -> S3ObjectStore:
    store = S3ObjectStore.from_settings(s3_server.settings(f"prepare-{uuid.uuid4().hex[:12]}"))
    store.ensure_bucket()
    return store


def _prepare(
    env: dict[str, str], out: Path, version: str, context: Path, *gate: str, expect: int = 0, run: str = RUN
) -> Any:
    return run_cli(
        env,
        *("fleet", "prepare", "--run-id", run, "--version", version, "--image-repository", REPOSITORY),
        *("--runner-context", str(context)),
        *("--output-dir", str(out), "--as-of", AS_OF.isoformat(), "--batch-size", "4", "--shards", "3"),
        *("--mode", "fleet", *gate),
        expect=expect,
    )


def _refused(env: dict[str, str], out: Path, version: str, context: Path, *gate: str, match: str) -> None:
    """`fleet prepare` exits 2 with ``match`` in its message (unset settings are exit 2 too)."""
    args = ("fleet", "prepare", "--run-id", RUN, "--version", version, "--image-repository", REPOSITORY,
            "--runner-context", str(context), "--output-dir", str(out), "--mode", "fleet", *gate)  # fmt: skip
    done = subprocess.run(eval_runner_command(*args), env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 2 and match in done.stderr, f"exit {done.returncode}: {done.stderr[-2000:]}"


def _plan(store: S3ObjectStore, run: str = RUN) -> Plan:
    key = keys.fleet_plan_key(run)
    return Plan.from_json_bytes(store.get_bytes(key), name=key)


def test_prepare_resolves_reuses_the_snapshot_and_plans(
    s3_server: S3Server, package_index: PackageIndex, fieldsim_fleet: Any, tmp_path: Path, runner_context: Path
) -> None:
    store = _store(s3_server)
    manifest = snapshot.run(
        snapshot.SnapshotParams(RUN, AS_OF, batch_size=4), store=store, source=FleetFrameSource(fieldsim_fleet)
    )
    env = cli_env(s3_server.settings(store.bucket), FLEET_EVAL_INDEX_URL=f"{package_index.url}/simple/")

    # 0.10.0 was never gated here: an override says why this rollout goes anyway.
    reason = "integration: prepare's resolve/snapshot/plan wiring, no gate"
    shard_ids = _prepare(env, tmp_path, "latest", runner_context, "--gate-override-reason", f" {reason} ")

    assert shard_ids == ["s000", "s001", "s002"]
    plan = _plan(store)
    assert plan.gate_override_reason == reason and plan.gate is None
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["library_version"] == "0.10.0"  # latest in the demo index
    assert summary["devices"] == manifest.n_devices == fieldsim_fleet.devices.height
    assert summary["batches"] == len(manifest.batches)
    assert summary["shards"] == 3
    assert summary["gate_override_reason"] == reason and summary["gate_release_id"] == ""
    assert (tmp_path / "library_version.txt").read_text() == "0.10.0"
    assert (tmp_path / "image.txt").read_text().startswith(f"{REPOSITORY}:0.10.0-runner-")
    # No --registry-url: nothing is reported missing, so the workflow builds nothing.
    assert json.loads((tmp_path / "missing.json").read_text()) == []


def test_a_version_typo_fails_before_the_sources_are_read(
    s3_server: S3Server, package_index: PackageIndex, tmp_path: Path, runner_context: Path
) -> None:
    store = _store(s3_server)
    # No snapshot and no PostgreSQL settings: were the sources read, this would be a ConfigError too,
    # hence the match on the message.
    env = cli_env(s3_server.settings(store.bucket), FLEET_EVAL_INDEX_URL=f"{package_index.url}/simple/")
    _refused(env, tmp_path, "0.9.9", runner_context, match="battery-lib 0.9.9 is not on")
    assert store.list(keys.fleet_run_prefix(RUN)) == []


def test_a_version_without_a_pass_decision_fails_before_the_snapshot(
    s3_server: S3Server, package_index: PackageIndex, tmp_path: Path, runner_context: Path, registry: list[str]
) -> None:
    store = _store(s3_server)
    store_decision(store, gate_decision("release-0-10-0", "0.10.0", verdict="refuse", image=SERVED))
    env = cli_env(s3_server.settings(store.bucket), FLEET_EVAL_INDEX_URL=f"{package_index.url}/simple/")
    no_pass = "0.10.0 has no pass decision"
    _refused(env, tmp_path, "0.10.0", runner_context, *registry, match=no_pass)
    _refused(env, tmp_path, "0.10.0", runner_context, *registry, "--gate-override-reason", " ", match=no_pass)
    _refused(env, tmp_path, "0.10.0", runner_context, *registry, "--release-id", "release-0-10-0",
             match="'release-0-10-0' is a 'refuse', not a pass")  # fmt: skip
    assert store.list(keys.fleet_run_prefix(RUN)) == []


def test_an_image_rebuilt_since_the_gate_fails_before_the_snapshot(
    s3_server: S3Server, package_index: PackageIndex, tmp_path: Path, runner_context: Path, registry: list[str]
) -> None:
    store = _store(s3_server)
    store_decision(store, gate_decision("release-0-9-0", "0.9.0", image=digest("the build the gate judged")))
    env = cli_env(s3_server.settings(store.bucket), FLEET_EVAL_INDEX_URL=f"{package_index.url}/simple/")
    _refused(env, tmp_path, "0.9.0", runner_context, *registry, "--release-id", "release-0-9-0",
             match=f"the image to roll out is {REPOSITORY}@{SERVED}, but the pass decision judged another")  # fmt: skip
    assert store.list(keys.fleet_run_prefix(RUN)) == []


def test_a_pass_decision_binds_the_plan_to_its_release_id_and_image(
    s3_server: S3Server,
    package_index: PackageIndex,
    fieldsim_fleet: Any,
    tmp_path: Path,
    runner_context: Path,
    registry: list[str],
) -> None:
    store = _store(s3_server)
    snapshot.run(
        snapshot.SnapshotParams(RUN, AS_OF, batch_size=4), store=store, source=FleetFrameSource(fieldsim_fleet)
    )
    # The gate records the bare registry digest (evaluate's pin step passes it to the evaluations).
    store_decision(store, gate_decision("release-battery-lib-0-9-0", "0.9.0", image=SERVED))
    env = cli_env(s3_server.settings(store.bucket), FLEET_EVAL_INDEX_URL=f"{package_index.url}/simple/")

    _prepare(env, tmp_path, "v0.9.0", runner_context, *registry, "--release-id", "release-battery-lib-0-9-0")

    gate = _plan(store).gate
    assert gate is not None and _plan(store).gate_override_reason is None
    assert (gate.release_id, gate.verdict, gate.library_version) == ("release-battery-lib-0-9-0", "pass", "0.9.0")
    assert gate.candidate_image == SERVED and gate.image == f"{REPOSITORY}@{SERVED}"
    # What the shard pods pull: the judged digest, through the pods' registry address.
    assert (tmp_path / "image.txt").read_text() == f"{REPOSITORY}@{SERVED}"
    assert json.loads((tmp_path / "summary.json").read_text())["gate_release_id"] == "release-battery-lib-0-9-0"

    # Without --release-id, the version's pass decision is found; the plan is the same (a retried pod).
    _prepare(env, tmp_path / "again", "0.9.0", runner_context, *registry)
    assert _plan(store).gate == gate
