"""Benchmark the fleet mode in the kind cluster against `eval-runner fleet run --local`, same data, same machine.

One simulated fleet (fieldsim, battery-lib 0.9.0, 7-day hourly window) is snapshotted twice into the
cluster's S3 (versitygw through its host port): once under the run id the cluster's fleet-rollout
workflow uses (its snapshot step then reuses it) and once into a scratch bucket for the local run. Then
- local: `eval-runner fleet run --local --workers W --shards S` (plan, shard processes, merge);
- cluster: fleet-rollout submitted through argo-server (resolve, snapshot reuse, plan, S shard pods, merge);
both timed as wall time from start to published results. Figures go to bench/results/fleet_cluster.json,
.md and .png. Usage: python bench/fleet_cluster.py [--devices N] [--shards S] [--workers W]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LIBRARY_VERSION = "0.9.0"
BATCH_SIZE = 250
LIBRARY = REPO / "demo" / "battery-lib" / LIBRARY_VERSION
# bench/ itself must not be on the path: bench/fieldsim.py would shadow the fieldsim package.
sys.path[:] = [str(REPO), str(LIBRARY), *(p for p in sys.path if Path(p or ".").resolve() != REPO / "bench")]

import importlib  # noqa: E402  (imports follow the path set-up above)

from eval_runner.contracts import FLEET_SERIES_DAYS  # noqa: E402
from eval_runner.fleet import snapshot  # noqa: E402
from eval_runner.fleet.local import ENTRY  # noqa: E402
from eval_runner.storage import S3ObjectStore  # noqa: E402
from scripts.demo import cluster  # noqa: E402
from scripts.demo.argo import ArgoServer  # noqa: E402
from scripts.demo.run import SMALL_FLEET_DEVICES, install_keeping_fleet  # noqa: E402
from tests.fixtures.fleet import FleetFrameSource  # noqa: E402

RESULTS = REPO / "bench" / "results"
SEED = 20260115
fieldsim: Any = importlib.import_module("fieldsim")


def free_as_of(store: S3ObjectStore) -> datetime:
    """A mid-heating-season day whose fleet results for the version are not published yet.

    Fleet results are keyed by mode, day and version and are immutable, so every benchmark run needs
    its own day.
    """
    day = datetime(2026, 1, 15, tzinfo=UTC)
    while store.list(f"fleet/results/mode=fleet/date={day:%Y-%m-%d}/version={LIBRARY_VERSION}/"):
        day -= timedelta(days=1)
    return day


def _busy(workflow: dict[str, Any]) -> bool:
    status = workflow.get("status") or {}
    if status.get("phase") not in ("Running", "Pending"):
        return False
    # A workflow waiting at a Suspend node (a dataset awaiting its review) uses no CPU.
    nodes = (status.get("nodes") or {}).values()
    return not any(n.get("type") == "Suspend" and n.get("phase") == "Running" for n in nodes)


def wait_for_idle_cluster(timeout: float = 600) -> float:
    """Wait until no other workflow runs (the machine is shared with the e2e tests); returns the wait."""
    tick = time.perf_counter()
    while time.perf_counter() - tick < timeout:
        listed = cluster.json_get("-n", cluster.NAMESPACE, "get", "workflows")
        if not any(_busy(w) for w in listed["items"]):
            break
        time.sleep(10)
    return time.perf_counter() - tick


def run_local(creds: cluster.Credentials, bucket: str, run_id: str, as_of: datetime, args: argparse.Namespace) -> float:
    """`fleet run --local` on the snapshot in ``bucket``; returns its wall time."""
    env = dict(os.environ)
    env.update(
        FLEET_EVAL_S3_ENDPOINT=cluster.S3_HOST,
        FLEET_EVAL_S3_ACCESS_KEY=creds.s3_access_key,
        FLEET_EVAL_S3_SECRET_KEY=creds.s3_secret_key,
        FLEET_EVAL_S3_BUCKET=bucket,
        PYTHONPATH=os.pathsep.join([str(LIBRARY), str(REPO), env.get("PYTHONPATH", "")]),
    )
    command = [sys.executable, "-c", ENTRY, "fleet", "run", "--local", "--workers", str(args.workers)]
    command += ["--shards", str(args.shards), "--run-id", run_id, "--mode", "fleet", "--as-of", as_of.isoformat()]
    tick = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - tick
    if done.returncode != 0:
        raise SystemExit(f"fleet run --local failed ({done.returncode}): {done.stderr[-3000:]}")
    devices = json.loads(done.stdout)["summary"]["devices"]
    if devices != args.devices:
        raise SystemExit(f"fleet run --local published {devices} devices, expected {args.devices}")
    return wall


def run_cluster(argo: ArgoServer, run_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """fleet-rollout on the snapshot under ``run_id``; wall time from submit to published results."""
    tick = time.perf_counter()
    name = argo.submit(
        "fleet-rollout",
        {"version": LIBRARY_VERSION, "mode": "fleet", "run-id": run_id, "shards": str(args.shards),
         "batch-size": str(BATCH_SIZE), "apply": "false",
         "gate-override-reason": "bench: fleet-rollout wall time on a synthetic snapshot, not a release"},
    )  # fmt: skip
    wf = argo.require_success(argo.wait(name, timeout=3 * 3600, poll=0.5))
    wall = time.perf_counter() - tick
    merge = next(iter(wf.node_outputs("merge")), {})
    summary = json.loads(merge.get("summary") or "{}")
    if summary.get("devices") != args.devices:
        raise SystemExit(f"workflow {name} published {summary.get('devices')} devices, expected {args.devices}")
    # Where the time went: each step's pod span (Argo's startedAt/finishedAt, 1 s resolution) and the
    # work its command reported (duration_seconds); the difference is pod start-up and controller latency.
    steps: dict[str, dict[str, float]] = {}
    for template in ("fleet-prepare", "fleet-shard", "fleet-merge"):
        pods = wf.pods(template)
        if not pods:
            continue
        start = min(_epoch(n["startedAt"]) for n in pods)
        steps[template] = {
            "span_s": max(_epoch(n["finishedAt"]) for n in pods) - start,
            "starts_after_s": start - _epoch(wf.raw["status"]["startedAt"]),
            "work_s_max": max(float(_output(n, "duration_seconds") or 0) for n in pods),
        }
    shard = steps.get("fleet-shard", {})
    return {
        "workflow": name,
        # The object etcd stores, as the controller sizes it against MAX_WORKFLOW_SIZE (bench/scale_plan.py).
        "status_nodes": len(wf.nodes),
        "workflow_bytes": len(json.dumps(wf.raw, separators=(",", ":"))),
        "wall_s": wall,
        "argo_duration_s": wf.duration_s(),
        "shard_span_s": shard.get("span_s", 0.0),
        "steps": steps,
    }


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _output(node: dict[str, Any], name: str) -> str | None:
    return next((p.get("value") for p in (node.get("outputs") or {}).get("parameters", []) if p["name"] == name), None)


def plot(figures: dict[str, Any], path: Path) -> None:
    """Bar chart of devices/s, local vs cluster."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = ["local (fleet run --local)", "cluster (fleet-rollout)"]
    values = [figures["local_devices_per_s"], figures["cluster_devices_per_s"]]
    bars = ax.bar(labels, values, color=["#4c72b0", "#dd8452"])
    ax.bar_label(bars, fmt="%.0f")
    ax.set_ylabel("devices / s")
    ax.set_title(
        f"fleet mode, {figures['devices']:,} devices, battery-lib {LIBRARY_VERSION}: "
        f"local/cluster = {figures['ratio_local_over_cluster']:.2f}x",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str]) -> int:
    """Run both, write the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=int(os.environ.get("FLEET_CLUSTER_DEVICES", "100000")))
    parser.add_argument("--shards", type=int, default=4, help="shard pods (cluster) = shards (local)")
    parser.add_argument("--workers", type=int, default=2, help="concurrent local shard processes (cores)")
    args = parser.parse_args(argv)

    creds = cluster.credentials()
    argo = ArgoServer(cluster.ARGO_URL, creds.argo_token)
    # This checkout's fleet-rollout template and runner context (the demo fleet itself is not used).
    install_keeping_fleet(creds, cluster.s3_client(creds), devices=SMALL_FLEET_DEVICES)
    data = S3ObjectStore.from_settings(cluster.s3_settings(creds, cluster.DATA_BUCKET))
    scratch_bucket = f"bench-local-{uuid.uuid4().hex[:10]}"
    scratch = S3ObjectStore.from_settings(cluster.s3_settings(creds, scratch_bucket))
    scratch.ensure_bucket()
    as_of = free_as_of(data)
    tag = uuid.uuid4().hex[:8]
    run_cluster_id, run_local_id = f"bench-cluster-{args.devices}-{tag}", f"bench-local-{args.devices}-{tag}"
    print(f"load average at start {os.getloadavg()}; {args.devices} devices, as_of {as_of:%Y-%m-%d}", flush=True)

    tick = time.perf_counter()
    fleet = fieldsim.simulate(
        fieldsim.SimConfig.for_snapshot(seed=SEED, devices=args.devices, as_of=as_of, window_days=FLEET_SERIES_DAYS)
    )
    simulate_s = time.perf_counter() - tick
    tick = time.perf_counter()
    snapshot.run(snapshot.SnapshotParams(run_cluster_id, as_of), store=data, source=FleetFrameSource(fleet))
    snapshot.run(snapshot.SnapshotParams(run_local_id, as_of), store=scratch, source=FleetFrameSource(fleet))
    snapshot_s = time.perf_counter() - tick
    del fleet
    print(f"simulated in {simulate_s:.0f}s, two snapshots in {snapshot_s:.0f}s", flush=True)

    quiet_s = wait_for_idle_cluster()
    print(f"waited {quiet_s:.0f}s for other workflows to finish; load average {os.getloadavg()}", flush=True)
    local_s = run_local(creds, scratch_bucket, run_local_id, as_of, args)
    print(f"local: {local_s:.1f}s ({args.devices / local_s:.0f} devices/s)", flush=True)
    clustered = run_cluster(argo, run_cluster_id, args)
    print(f"cluster: {clustered['wall_s']:.1f}s ({args.devices / clustered['wall_s']:.0f} devices/s)", flush=True)

    figures = {
        "devices": args.devices,
        "shards": args.shards,
        "batch_size": BATCH_SIZE,
        "cores": os.cpu_count(),
        "local_workers": args.workers,
        "library_version": LIBRARY_VERSION,
        "as_of": as_of.isoformat(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": os.getloadavg(),
        "simulate_s": round(simulate_s, 1),
        "snapshot_s_both": round(snapshot_s, 1),
        "local_wall_s": round(local_s, 1),
        "cluster_wall_s": round(clustered["wall_s"], 1),
        "cluster_shard_span_s": clustered["shard_span_s"],
        "cluster_steps": clustered["steps"],
        "cluster_workflow": clustered["workflow"],
        "cluster_status_nodes": clustered["status_nodes"],
        "cluster_workflow_bytes": clustered["workflow_bytes"],
        "local_devices_per_s": round(args.devices / local_s, 1),
        "cluster_devices_per_s": round(args.devices / clustered["wall_s"], 1),
    }
    figures["ratio_local_over_cluster"] = round(figures["local_devices_per_s"] / figures["cluster_devices_per_s"], 3)
    figures["target_met"] = figures["ratio_local_over_cluster"] <= 1.25
    RESULTS.mkdir(parents=True, exist_ok=True)
    verdict = "met" if figures["target_met"] else "not met"
    (RESULTS / "fleet_cluster.json").write_text(json.dumps(figures, indent=2) + "\n")
    plot(figures, RESULTS / "fleet_cluster.png")
    table = (
        "| run | wall (s) | devices/s |\n|---|---:|---:|\n"
        f"| local `fleet run --local --workers {args.workers} --shards {args.shards}` | {figures['local_wall_s']} "
        f"| {figures['local_devices_per_s']:.0f} |\n"
        f"| cluster `fleet-rollout` ({args.shards} shard pods) | {figures['cluster_wall_s']} "
        f"| {figures['cluster_devices_per_s']:.0f} |\n\n"
        f"{args.devices:,} devices, battery-lib {LIBRARY_VERSION}; local/cluster = "
        f"{figures['ratio_local_over_cluster']:.2f}x (target <= 1.25x: {verdict})\n\n"
        "| cluster step | starts after (s) | pod span (s) | work reported (s, slowest pod) |\n|---|---:|---:|---:|\n"
        + "".join(
            f"| {step} | {t['starts_after_s']:.0f} | {t['span_s']:.0f} | {t['work_s_max']:.1f} |\n"
            for step, t in clustered["steps"].items()
        )
    )
    (RESULTS / "fleet_cluster.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
