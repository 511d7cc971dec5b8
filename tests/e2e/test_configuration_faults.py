"""Configuration writes on kind under faults, counted at the simulator's shards: no device is written twice.

The cluster twin of tests/integration/fleet/test_configuration_faults.py. The chart's shards answer 5 %
503s, 2 % stalls past the runner's 10 s timeout, 2 % truncated bodies and 1 % resets, for the snapshot,
the writes and the rollback alike; a shard pod is deleted mid-run, after its first checkpointed batch. A
run that ends with devices unresolved is not Succeeded and is submitted again with the same run id, as an
operator would. Judged at the shards (``/_sim/stats?per_device=true``): every device off its target is
written exactly once, rollback.parquet lists exactly the devices written, and fleet-rollback, under the
same faults, writes each of them back exactly once.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections import Counter
from typing import Any

import polars as pl
import pytest

from eval_runner import keys
from eval_runner.contracts import N_SHARDS
from scripts.demo import cluster
from scripts.demo.argo import Workflow
from scripts.demo.loop import Loop, merge_summary, rollback_summary
from tests.fixtures.cluster_runs import checkpointed_shard, data_store, running_shard_pod
from tests.fixtures.e2e_loop import Fleet

pytestmark = pytest.mark.timeout(2400)

REASON = "e2e: configuration writes under faults; the library version is not what is tested"
# stall_s beyond the runner's shard timeout (ShardSettings.timeout_seconds, 10 s): the request is carried out
# while the client has given up, the lost answer the runner must resolve by reading the device back.
FAULTS = {"error_rate": 0.05, "stall_rate": 0.02, "stall_s": 11.0, "truncate_rate": 0.02, "reset_rate": 0.01}
ATTEMPTS = 3  # submissions of one run id before the test gives up on it


def _sim(path: str, body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """GET (or, with ``body``, PUT) a simulator endpoint on every shard, from inside the shards' pod."""
    port_base = int((cluster.installed_demo_values() or {}).get("portBase", 8100))
    script = (
        "import json, sys, urllib.request\n"
        "body = sys.stdin.read().encode() or None\n"
        "answers = []\n"
        f"for port in range({port_base}, {port_base + N_SHARDS}):\n"
        "    request = urllib.request.Request(f'http://127.0.0.1:{port}{sys.argv[1]}', data=body,\n"
        "                                     method='PUT' if body else 'GET',\n"
        "                                     headers={'Content-Type': 'application/json'})\n"
        "    with urllib.request.urlopen(request, timeout=30) as answer:\n"
        "        answers.append(json.load(answer))\n"
        "print(json.dumps(answers))\n"
    )
    pod = cluster.pod_name("demo-shards")
    stdin = json.dumps(body) if body is not None else ""
    out = cluster.kubectl("-n", cluster.NAMESPACE, "exec", "-i", pod, "-c", "shards", "--",
                          "/opt/runner/bin/python", "-c", script, path, stdin=stdin)  # fmt: skip
    answers = json.loads(out)
    assert isinstance(answers, list) and len(answers) == N_SHARDS, out[-500:]
    return answers


def _set_faults(faults: dict[str, Any]) -> None:
    _sim("/_sim/faults", faults)


def _applied() -> Counter[str]:
    """PUTs each device has had applied since its shard started (every test's writes included)."""
    counts: Counter[str] = Counter()
    for stats in _sim("/_sim/stats?per_device=true"):
        counts.update(stats["applied_by_device"])
    return counts


def _faults_given() -> int:
    return sum(int(stats["faults_given"]) for stats in _sim("/_sim/stats"))


def _written_since(before: Counter[str]) -> Counter[str]:
    after = _applied()
    return Counter({device: after[device] - before[device] for device in after if after[device] > before[device]})


def _until_succeeded(loop: Loop, template: str, parameters: dict[str, str]) -> tuple[Workflow, list[str]]:
    """Submit until a run succeeds (ATTEMPTS at most); return it and the phases of the runs before it."""
    earlier: list[str] = []
    for _ in range(ATTEMPTS):
        wf = loop.argo.wait(loop.argo.submit(template, parameters), timeout=1800)
        if wf.phase == "Succeeded":
            return wf, earlier
        earlier.append(f"{wf.name}: {wf.phase}: {'; '.join(wf.failed_nodes())[:400]}")
    raise AssertionError(f"{template} {parameters} did not succeed in {ATTEMPTS} runs: {earlier}")


def _would_update(loop: Loop) -> int:
    wf = loop.rollout("0.8.0", "configuration", shards=2, batch_size=100, gate_override_reason=REASON)
    counts = merge_summary(wf)["counts"]
    return int(counts.get("would_update", 0))


def test_configuration_writes_under_faults_and_a_deleted_pod_write_each_device_once(
    e2e_loop: Loop, e2e_fleet: Fleet
) -> None:
    differing = _would_update(e2e_loop)
    assert differing > 0, "the simulated fleet has no device off its target to write"
    store = data_store(e2e_loop)
    run_id = f"faults-{uuid.uuid4().hex[:10]}"
    parameters = {"version": "0.8.0", "mode": "configuration", "shards": "2", "batch-size": "100", "apply": "true",
                  "run-id": run_id, "release-id": "", "gate-override-reason": REASON}  # fmt: skip
    before, faults_before = _applied(), _faults_given()
    _set_faults(FAULTS)
    try:
        started = time.monotonic()
        first = e2e_loop.argo.submit("fleet-rollout", parameters)
        victim = running_shard_pod(first, checkpointed_shard(store, run_id))
        cluster.kubectl("-n", cluster.NAMESPACE, "delete", "pod", victim, "--wait=false")
        wf = e2e_loop.argo.wait(first, timeout=1800)
        earlier: list[str] = []
        if wf.phase != "Succeeded":  # unresolved devices: the run is not Succeeded; resume it by its run id
            earlier.append(f"{wf.name}: {wf.phase}")
            wf, more = _until_succeeded(e2e_loop, "fleet-rollout", parameters)
            earlier += more
        apply_seconds = time.monotonic() - started
        written = _written_since(before)
        summary = merge_summary(wf)

        restore_started = time.monotonic()
        restore_before = _applied()
        restored_wf, restore_earlier = _until_succeeded(e2e_loop, "fleet-rollback", {"run-id": run_id, "apply": "true"})
        restore_seconds = time.monotonic() - restore_started
        restored = _written_since(restore_before)
        faults_given = _faults_given() - faults_before
    finally:
        _set_faults({})

    assert max(written.values()) == 1, {device: n for device, n in written.items() if n > 1}  # zero second PUTs
    assert len(written) == differing == summary["counts"].get("updated"), (len(written), differing, summary)
    assert summary["counts"]["failures"] == 0, summary
    rollback = pl.read_parquet(io.BytesIO(store.get_bytes(keys.fleet_report_key(run_id, "rollback.parquet"))))
    assert rollback.height == len(written) and set(rollback.get_column("device_id")) == set(written)
    assert restored == Counter(dict.fromkeys(written, 1)), "the rollback wrote other devices, or one twice"
    assert rollback_summary(restored_wf).get("updated") == differing
    assert _would_update(e2e_loop) == differing  # the devices are back where they were
    assert faults_given > 0
    print(json.dumps({
        "devices": e2e_fleet.devices, "devices_written": len(written), "max_puts_per_device": max(written.values()),
        "faults_given_at_shards": faults_given, "deleted_pod": victim, "runs_before_success": earlier,
        "rollback_runs_before_success": restore_earlier, "apply_seconds": round(apply_seconds, 1),
        "restore_seconds": round(restore_seconds, 1),
    }, indent=1))  # fmt: skip
