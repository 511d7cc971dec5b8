"""Model fleet-rollout at 100k, 1M and 10M devices from the measured per-pod costs; print the plan's tables.

No cluster, no services: the costs come from bench/results/fleet_cluster.json (written by
bench/fleet_cluster.py on the kind cluster), the layout from the rendered WorkflowTemplate
(charts/fleet-eval/files/workflows/fleet-rollout.yaml: parallelism, default batch size, the spec every
workflow's status carries), and everything else is an option below with its default and where the
default comes from. A new measurement or a changed template recomputes the plan; docs/scale.md pastes
the output. Usage: python bench/scale_plan.py [--nodes 1 4 16 64] [--parallelism P] [--batch-size B] ...
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from bench._scale_model import (  # noqa: E402  (imports follow the path set-up above)
    Assumptions,
    Estimate,
    MeasuredCosts,
    MissingMeasurementError,
    estimate,
    max_shards,
    node_sizes,
    run_counts,
    status_size,
)

MEASURED = REPO / "bench" / "results" / "fleet_cluster.json"
TEMPLATE = REPO / "charts" / "fleet-eval" / "files" / "workflows" / "fleet-rollout.yaml"
ENTRY = "fleet-rollout"
ARGO_VERSION = "v4.0.5"  # scripts/build/versions.sh, the chart's fleet-eval/argo-workflows-version


def template_facts(path: Path) -> tuple[int, int, int]:
    """The DAG's parallelism, the default batch size and the spec's size as compact JSON."""
    spec = yaml.safe_load(path.read_text())
    entry = next((t for t in spec["spec"]["templates"] if t["name"] == ENTRY), None)
    if entry is None or "parallelism" not in entry:
        raise SystemExit(f"{path}: no template {ENTRY!r} with a parallelism; run `make render`")
    args = {p["name"]: p.get("value") for p in spec["spec"]["arguments"]["parameters"]}
    if "batch-size" not in args:
        raise SystemExit(f"{path}: no batch-size argument")
    return int(entry["parallelism"]), int(args["batch-size"]), len(json.dumps(spec["spec"], separators=(",", ":")))


def parse_args(argv: list[str], parallelism: int, batch_size: int) -> argparse.Namespace:
    """The assumptions, each with the default the plan's first table uses."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("--measured", type=Path, default=MEASURED, help="measured costs (default: %(default)s)")
    add("--devices", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000], help="fleet sizes")
    add("--nodes", type=int, nargs="+", default=[1, 4, 16, 64], help="cluster sizes (worker nodes)")
    add("--pods-per-node", type=int, default=8, help="shard pods per node, one core each (default 8)")
    add("--parallelism", type=int, default=parallelism, help="shard pods at once per workflow (template: %(default)s)")
    add(
        "--shards",
        type=int,
        default=None,
        help="shard pods per run (default: the fewest that finish soonest, see best_shards)",
    )
    add("--batch-size", type=int, default=batch_size, help="devices per batch (template: %(default)s)")
    add(
        "--pods-per-s",
        type=float,
        default=10.0,
        help="pod creations/s the controller sustains (default 10: half its client's --qps 20)",
    )
    add("--snapshot-pods", type=int, default=1, help="pods reading the sources (today: 1, the prepare pod)")
    add(
        "--snapshot-devices-per-s",
        type=float,
        default=None,
        help="one snapshot pod's rate from the live sources (default: the measured in-process snapshot)",
    )
    add("--merge-pods", type=int, default=1, help="pods sharing the merge's per-device work (today: 1)")
    add("--max-workflow-bytes", type=int, default=1024 * 1024, help="Argo's MAX_WORKFLOW_SIZE (1 MiB)")
    add("--s3-put-per-s", type=float, default=3500.0, help="PUT/s per partitioned S3 prefix (AWS: 3,500)")
    add("--s3-get-per-s", type=float, default=5500.0, help="GET+HEAD/s per partitioned S3 prefix (AWS: 5,500)")
    add("--mlflow-calls-per-s", type=float, default=100.0, help="requests/s one MLflow server answers")
    add(
        "--measured-batch-size",
        type=int,
        default=250,
        help="batch size of the measured run when the file does not record it (fleet_cluster.py submits 250)",
    )
    add(
        "--measured-cores",
        type=float,
        default=2.0,
        help="cores of the measuring machine when the file does not record them (the kind host had 2)",
    )
    add("--node-bytes", type=float, default=None, help="bytes per status node as JSON (default: computed)")
    add("--node-gz-bytes", type=float, default=None, help="bytes per node gzipped+base64 (default: computed)")
    return p.parse_args(argv)


def shown(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def duration(seconds: float) -> str:
    """3h05m, 4m10s, 52s."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def count(n: float) -> str:
    """12,345 / 1.2M / 3.4G, short enough for a table cell."""
    for unit, size in (("G", 1e9), ("M", 1e6)):
        if n >= 10 * size:
            return f"{n / size:.0f}{unit}"
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:,.0f}"


def limits_hit(e: Estimate, a: Assumptions) -> list[str]:
    """The limits this estimate exceeds, in the order a platform engineer would meet them."""
    hit = []
    if e.status_gz_bytes > a.max_workflow_bytes:
        hit.append("status even compressed > limit: offload or split")
    elif e.status_bytes > a.max_workflow_bytes:
        hit.append("status compressed on every update")
    ramp = e.concurrent / a.pods_per_s
    if ramp > 0.5 * e.pod_s:
        hit.append(f"creating the pods takes {duration(ramp)}")
    if e.put_per_s > a.s3_put_per_s or e.get_per_s > a.s3_get_per_s:
        hit.append("S3 rate > one prefix")
    serial = e.snapshot_s + e.merge_s
    if serial > 0.5 * e.wall_s:
        hit.append(f"snapshot+merge = {serial / e.wall_s:.0%} of wall")
    return hit


def snapshot_row(costs: MeasuredCosts, a: Assumptions) -> tuple[str, str, str]:
    """The snapshot's rate: the measured in-process one, or the option's (live sources)."""
    if a.snapshot_devices_per_s:
        return ("snapshot, one pod", f"{a.snapshot_devices_per_s:,.0f} devices/s", "assumed (option)")
    rate = 1 / costs.snapshot_device_s
    return ("snapshot, one pod", f"{rate:,.0f} devices/s", "measured: snapshot_s_both / 2, in-process source")


def render(args: argparse.Namespace, costs: MeasuredCosts, a: Assumptions, sources: dict[str, str]) -> str:
    """The plan's tables as Markdown."""
    out = ["## Inputs", "", "| input | value | source |", "|---|---:|---|"]
    rows: list[tuple[str, str, str]] = [
        ("CPU per device in a shard pod", f"{costs.device_core_s * 1e3:.3f} ms", sources["device"]),
        ("pod life cycle beyond the work", f"{costs.pod_overhead_s:.1f} s", "measured: shard span - work"),
        ("controller time outside pods", f"{costs.controller_s:.1f} s", "measured: wall - pod spans"),
        snapshot_row(costs, a),
        ("merge per device (1 pod)", f"{costs.merge_device_s * 1e6:.1f} us", "measured: merge work / devices"),
        ("status node, JSON / gzip+base64", f"{a.node_bytes:.0f} / {a.node_gz_bytes:.0f} B", sources["node"]),
        ("workflow spec in the status", f"{a.template_bytes / 1024:.0f} KiB", "rendered fleet-rollout.yaml"),
        ("batch size", f"{a.batch_size}", sources["batch"]),
        ("shard pods at once per workflow", f"{a.parallelism}", sources["parallelism"]),
        ("shard pods per node (1 core each)", f"{a.pods_per_node}", "assumed"),
        ("pod creations/s", f"{a.pods_per_s:g}", f"assumed: Argo {ARGO_VERSION} --qps 20, resourceRateLimit unset"),
        ("snapshot pods / merge pods", f"{a.snapshot_pods} / {a.merge_pods}", "assumed (today: 1 / 1)"),
        ("workflow size limit", f"{a.max_workflow_bytes / 1024:.0f} KiB", "Argo MAX_WORKFLOW_SIZE default"),
        ("S3 PUT / GET+HEAD per s per prefix", f"{a.s3_put_per_s:g} / {a.s3_get_per_s:g}", "assumed: AWS S3"),
        ("MLflow requests/s", f"{a.mlflow_calls_per_s:g}", "assumed"),
    ]
    if "status_check" in sources:
        rows.append(("workflow object of the measured run", sources["status_check"], "measured vs this model"))
    out += [f"| {name} | {value} | {source} |" for name, value, source in rows]
    out += [
        "",
        f"Shard pods one workflow holds before its status passes {a.max_workflow_bytes / 1024:.0f} KiB: "
        f"{max_shards(a, compressed=False):,} as JSON, {max_shards(a, compressed=True):,} compressed.",
        "",
        "## One run, whatever the cluster (fleet mode)",
        "",
        "| devices | batches | objects | objects, configuration --apply | S3 PUT | S3 GET+HEAD "
        "| LIST pages per pod | MLflow, per device | MLflow, per run |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    largest = max(args.nodes)
    for devices in args.devices:
        shards = estimate(devices, largest, costs, a).shards
        r = run_counts(devices, a, shards)
        per_device = f"{count(r.mlflow_per_device)} ({duration(r.mlflow_per_device / a.mlflow_calls_per_s)})"
        out.append(
            f"| {count(devices)} | {r.batches:,} | {count(r.objects)} | {count(r.objects_apply)} | {count(r.puts)} "
            f"| {count(r.gets)} | {r.lists_per_pod} | {per_device} | {r.mlflow_per_run} |"
        )
    out += [
        "",
        "## On N nodes",
        "",
        "| devices | nodes | shard pods | at once | pods/s needed (limit) | status KiB, JSON / gz (limit) "
        "| PUT/s, GET/s peak | snapshot | shards | merge | wall | limits hit |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    limit_kib = a.max_workflow_bytes / 1024
    for devices in args.devices:
        for nodes in args.nodes:
            e = estimate(devices, nodes, costs, a)
            out.append(
                f"| {count(devices)} | {nodes} | {e.shards:,} | {e.concurrent} "
                f"| {e.pods_per_s_needed:.2g} ({a.pods_per_s:g}) "
                f"| {e.status_bytes / 1024:,.0f} / {e.status_gz_bytes / 1024:,.0f} ({limit_kib:.0f}) "
                f"| {count(e.put_per_s)}, {count(e.get_per_s)} | {duration(e.snapshot_s)} "
                f"| {duration(e.shard_phase_s)} | {duration(e.merge_s)} | {duration(e.wall_s)} "
                f"| {'; '.join(limits_hit(e, a)) or '-'} |"
            )
    out += [
        "",
        "## For contrast: one pod per batch (the layout fleet-rollout avoids)",
        "",
        "| devices | pods | status nodes | status MiB, JSON / gz | fits in etcd | pods/s needed | creating the pods |",
        "|---:|---:|---:|---:|---|---:|---:|",
    ]
    for devices in args.devices:
        batches = math.ceil(devices / a.batch_size)
        slots = largest * a.pods_per_node
        e = estimate(devices, largest, costs, replace(a, shards=batches, parallelism=slots))
        raw, gz = status_size(e.status_nodes, a)
        fits = "yes" if raw <= a.max_workflow_bytes else "compressed" if gz <= a.max_workflow_bytes else "no: offload"
        out.append(
            f"| {count(devices)} | {e.shards:,} | {e.status_nodes:,} | {raw / 2**20:,.1f} / {gz / 2**20:,.1f} "
            f"| {fits} | {e.pods_per_s_needed:.0f} | {duration(e.shards / a.pods_per_s)} |"
        )
    out += [
        "",
        f"Measured: {costs.devices:,} devices, {costs.shards} shard pods, batch size {costs.batch_size}, "
        f"{costs.cores:g} cores, cluster wall {costs.wall_s:.1f} s ({shown(args.measured)}).",
    ]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    """Read the costs and the template, print the tables."""
    parallelism, batch_size, template_bytes = template_facts(TEMPLATE)
    args = parse_args(argv, parallelism, batch_size)
    try:
        data = json.loads(args.measured.read_text())
    except FileNotFoundError:
        raise SystemExit(
            f"{args.measured}: no measurement; run `make bench-cluster` (bench/fleet_cluster.py)"
        ) from None
    sources = {
        "device": "measured: shard work / batches, x core share",
        "batch": "template default" if args.batch_size == batch_size else "assumed (option)",
        "parallelism": "template (workflows/fleet_rollout.py)" if args.parallelism == parallelism else "assumed",
    }
    try:
        costs = MeasuredCosts.from_json(
            data, str(args.measured), batch_size=args.measured_batch_size, cores=args.measured_cores
        )
    except MissingMeasurementError as error:
        raise SystemExit(str(error)) from None
    if "batch_size" not in data or "cores" not in data:
        sources["device"] += " (batch size/cores of the run assumed: not in the file)"
    computed_raw, computed_gz = node_sizes()
    sources["node"] = "option" if args.node_bytes or args.node_gz_bytes else "computed: representative shard nodes"
    assumptions = Assumptions(
        batch_size=args.batch_size,
        pods_per_node=args.pods_per_node,
        parallelism=args.parallelism,
        shards=args.shards,
        pods_per_s=args.pods_per_s,
        snapshot_pods=args.snapshot_pods,
        merge_pods=args.merge_pods,
        snapshot_devices_per_s=args.snapshot_devices_per_s,
        max_workflow_bytes=args.max_workflow_bytes,
        template_bytes=template_bytes,
        node_bytes=args.node_bytes or computed_raw,
        node_gz_bytes=args.node_gz_bytes or computed_gz,
        s3_put_per_s=args.s3_put_per_s,
        s3_get_per_s=args.s3_get_per_s,
        mlflow_calls_per_s=args.mlflow_calls_per_s,
    )
    if "cluster_status_nodes" in data and "cluster_workflow_bytes" in data:
        model, _ = status_size(int(data["cluster_status_nodes"]), assumptions)
        sources["status_check"] = (
            f"{data['cluster_workflow_bytes'] / 1024:.0f} KiB, {data['cluster_status_nodes']} nodes "
            f"(model: {model / 1024:.0f} KiB)"
        )
    print(render(args, costs, assumptions, sources))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
