"""The fleet-rollout scale model behind bench/scale_plan.py: measured costs and assumptions in, estimates out.

Pure arithmetic, no I/O beyond parsing a dict, so the unit tests can pin its behaviour. Every cost comes
from the 100k-device cluster measurement (bench/fleet_cluster.py); every limit is an explicit
assumption, so a new measurement or a different cluster recomputes the plan instead of invalidating it.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024
# One page of ListObjectsV2 (S3's fixed maximum).
LIST_PAGE_KEYS = 1000
# Nodes of a fleet-rollout workflow besides the shards: the DAG, prepare (Retry + Pod), the skipped
# build-image, pin and canary tasks, the TaskGroup a withParam fan-out hangs under, merge (Retry + Pod).
FIXED_STATUS_NODES = 9
# Each shard is a Retry node (the template has a retryStrategy) with one Pod child per attempt.
NODES_PER_SHARD = 2
# Where the step wrapper leaves a step's outputs inside the pod (workflows/common.py's OUTPUTS).
POD_OUTPUTS = "/tmp/outputs"  # noqa: S108  (a path inside the pod, named in the node's valueFrom)


class MissingMeasurementError(KeyError):
    """The measurement file lacks a key the model needs; the message names the file and the key."""

    def __str__(self) -> str:
        return str(self.args[0])


def _lookup(data: Mapping[str, Any], path: str, source: str) -> float:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise MissingMeasurementError(
                f"{source}: key {path!r} is missing (rerun bench/fleet_cluster.py, which writes it)"
            )
        node = node[part]
    if not isinstance(node, int | float) or isinstance(node, bool):
        raise MissingMeasurementError(f"{source}: key {path!r} should be a number, found {node!r}")
    return float(node)


@dataclass(frozen=True)
class MeasuredCosts:
    """Per-pod and per-device costs of one cluster run of fleet-rollout (bench/results/fleet_cluster.json)."""

    devices: int
    shards: int
    batch_size: int
    cores: float  # of the machine the cluster ran on: shards beyond it shared CPU
    shard_work_s: float  # slowest shard's reported work
    shard_span_s: float  # first shard start to last shard end (Argo's timestamps)
    shard_starts_s: float
    prepare_span_s: float
    prepare_work_s: float
    prepare_starts_s: float
    merge_span_s: float
    merge_work_s: float
    merge_starts_s: float
    wall_s: float  # submit to published result
    snapshot_s: float  # one snapshot of ``devices`` (the cluster run reused a snapshot made beforehand)

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], source: str, *, batch_size: int | None = None, cores: float | None = None
    ) -> MeasuredCosts:
        """Read the costs; ``batch_size``/``cores`` fill in for older files that did not record them."""

        def get(path: str) -> float:
            return _lookup(data, path, source)

        def recorded_or(path: str, fallback: float | None) -> float:
            if path in data or fallback is None:
                return get(path)
            return fallback

        steps = "cluster_steps"
        return cls(
            devices=int(get("devices")),
            shards=int(get("shards")),
            batch_size=int(recorded_or("batch_size", batch_size)),
            cores=recorded_or("cores", cores),
            shard_work_s=get(f"{steps}.fleet-shard.work_s_max"),
            shard_span_s=get(f"{steps}.fleet-shard.span_s"),
            shard_starts_s=get(f"{steps}.fleet-shard.starts_after_s"),
            prepare_span_s=get(f"{steps}.fleet-prepare.span_s"),
            prepare_work_s=get(f"{steps}.fleet-prepare.work_s_max"),
            prepare_starts_s=get(f"{steps}.fleet-prepare.starts_after_s"),
            merge_span_s=get(f"{steps}.fleet-merge.span_s"),
            merge_work_s=get(f"{steps}.fleet-merge.work_s_max"),
            merge_starts_s=get(f"{steps}.fleet-merge.starts_after_s"),
            wall_s=get("cluster_wall_s"),
            # The benchmark times two identical snapshots (cluster's and local run's) together.
            snapshot_s=get("snapshot_s_both") / 2,
        )

    @property
    def batches_per_shard(self) -> int:
        """Batches the slowest shard of the measured run processed."""
        return math.ceil(math.ceil(self.devices / self.batch_size) / self.shards)

    @property
    def device_core_s(self) -> float:
        """CPU seconds one device costs in a shard pod, on one core of its own.

        The measured shards shared ``cores`` cores, so their wall time per batch is scaled by the share
        of a core each had; S3 transfers overlap the library (shard.py reads ahead and writes behind).
        """
        share = min(1.0, self.cores / self.shards)
        return self.shard_work_s / self.batches_per_shard * share / self.batch_size

    @property
    def pod_overhead_s(self) -> float:
        """Pod life cycle beyond the work: scheduling, container start, imports, reading plan and manifest."""
        return max(0.0, self.shard_span_s - self.shard_work_s)

    @property
    def controller_s(self) -> float:
        """Wall time no pod accounts for: submission, the gaps between steps, completion."""
        prepare_end = self.prepare_starts_s + self.prepare_span_s
        shard_end = self.shard_starts_s + self.shard_span_s
        merge_end = self.merge_starts_s + self.merge_span_s
        gaps = self.prepare_starts_s + (self.shard_starts_s - prepare_end) + (self.merge_starts_s - shard_end)
        return max(0.0, gaps) + max(0.0, self.wall_s - merge_end)

    @property
    def snapshot_device_s(self) -> float:
        """Seconds per device of the snapshot, done today by the single prepare pod."""
        return self.snapshot_s / self.devices

    @property
    def merge_device_s(self) -> float:
        """Seconds per device of the merge (it reads, checks and rewrites every row in one pod)."""
        return self.merge_work_s / self.devices


@dataclass(frozen=True)
class Assumptions:
    """What the measurement cannot tell: the target cluster, Argo's and S3's limits, the layout chosen."""

    batch_size: int = 250
    pods_per_node: int = 8  # shard pods per node, one core each
    parallelism: int = 16  # the DAG's parallelism in workflows/fleet_rollout.py
    shards: int | None = None  # None: best_shards' choice
    pods_per_s: float = 10.0  # pod creations the controller sustains
    snapshot_pods: int = 1  # pods reading the sources into the snapshot (today: the prepare pod alone)
    merge_pods: int = 1  # pods sharing the merge's per-device work (today: the merge pod alone)
    snapshot_devices_per_s: float | None = None  # one snapshot pod's rate; None: the measured one
    max_workflow_bytes: int = MIB  # MAX_WORKFLOW_SIZE, under etcd's request limit
    template_bytes: int = 35_000  # the WorkflowTemplate spec the workflow's status carries
    node_bytes: float = 1_500.0  # one status node as JSON
    node_gz_bytes: float = 150.0  # one status node once gzipped and base64-encoded by the controller
    s3_put_per_s: float = 3_500.0  # per partitioned prefix (PUT/COPY/POST/DELETE)
    s3_get_per_s: float = 5_500.0  # per partitioned prefix (GET/HEAD)
    mlflow_calls_per_s: float = 100.0


@dataclass(frozen=True)
class RunCounts:
    """What one fleet-mode run of ``devices`` writes and asks of S3 and MLflow, independent of the cluster."""

    devices: int
    batches: int
    objects: int  # left under fleet/runs/<run-id>/ and fleet/results/ by a fleet-mode run
    objects_apply: int  # the same for configuration --apply: an intent and a journal entry per device
    puts: int
    gets: int  # GET and HEAD (S3 prices and throttles them together)
    lists_per_pod: int  # ListObjectsV2 pages a shard pod reads for the .done markers
    mlflow_per_device: int  # calls if every device were logged
    mlflow_per_run: int  # calls for one aggregated run


def run_counts(devices: int, a: Assumptions, shards: int) -> RunCounts:
    """Objects and requests of one run, from the key layout (eval_runner/keys.py) and storage.py's calls.

    An immutable put is a HEAD then a conditional PUT; an overwritable one a PUT alone. Reading the
    plan and the manifest is a HEAD and two GETs, in every shard pod and in the merge.
    """
    b = math.ceil(devices / a.batch_size)
    # snapshot: samples + series per batch, devices.parquet, manifest (HEAD + PUT, and a HEAD to reuse one)
    snapshot_puts, snapshot_gets = 2 * b + 2, 2
    # plan: HEAD + GET of the manifest, HEAD of plan.json, then its immutable put
    plan_puts, plan_gets = 1, 4
    # per batch: GET samples and series, PUT the result and HEAD it back, HEAD + PUT the .done marker
    shard_puts, shard_gets = 2 * b, 4 * b + 3 * shards
    # merge: plan and manifest, the halt check, devices.parquet, marker + result per batch, publish
    merge_puts, merge_gets = 2, 3 + 1 + 1 + 2 * b + 3
    return RunCounts(
        devices=devices,
        batches=b,
        # inputs (2 per batch, devices, manifest), plan, batches/ (result + .done), results + summary
        objects=(2 * b + 2) + 1 + 2 * b + 2,
        objects_apply=(2 * b + 2) + 1 + 2 * b + 2 + 2 * devices,
        puts=snapshot_puts + plan_puts + shard_puts + merge_puts,
        gets=snapshot_gets + plan_gets + shard_gets + merge_gets,
        # batches/ holds a result and a marker per batch; a resumed pod lists them all
        lists_per_pod=math.ceil(2 * b / LIST_PAGE_KEYS),
        mlflow_per_device=devices,  # one log_batch per device carrying its metrics
        mlflow_per_run=4,  # create the run, one log_batch of fleet-level metrics, the summary artifact, end
    )


@dataclass(frozen=True)
class Estimate:
    """One fleet size on one cluster size."""

    devices: int
    nodes: int
    batches: int
    shards: int
    concurrent: int
    waves: int
    pod_s: float  # one shard pod's life
    pods_per_s_needed: float  # to keep every slot busy
    snapshot_s: float
    compute_s: float  # the shards' CPU time, as if no pod ever waited
    shard_phase_s: float
    merge_s: float
    controller_s: float
    wall_s: float
    status_nodes: int
    status_bytes: int
    status_gz_bytes: int
    put_per_s: float  # peak, while every shard pod runs
    get_per_s: float


def status_size(nodes: int, a: Assumptions) -> tuple[int, int]:
    """The workflow object's size with its node status as JSON, and with it compressed (Argo's fallback)."""
    return (
        round(a.template_bytes + nodes * a.node_bytes),
        round(a.template_bytes + nodes * a.node_gz_bytes),
    )


def max_shards(a: Assumptions, *, compressed: bool) -> int:
    """Shard pods one workflow holds before its status no longer fits (offload aside)."""
    per_node = a.node_gz_bytes if compressed else a.node_bytes
    room = a.max_workflow_bytes - a.template_bytes - FIXED_STATUS_NODES * per_node
    return max(0, math.floor(room / (NODES_PER_SHARD * per_node)))


def best_shards(compute_s: float, slots: int, batches: int, pods_per_s: float) -> int:
    """Shard pods that minimise the shard phase: one wave, and no more pods than are worth creating.

    With C pods the phase is about compute/C + C/pods_per_s (the work shared out, plus the time the
    controller takes to create the last pod), smallest at C = sqrt(compute * pods_per_s).
    """
    return max(1, min(slots, batches, round(math.sqrt(compute_s * pods_per_s))))


def estimate(devices: int, nodes: int, costs: MeasuredCosts, a: Assumptions) -> Estimate:
    """Wall time, pod rate, status size and S3 rates of ``devices`` on ``nodes`` nodes."""
    batches = math.ceil(devices / a.batch_size)
    slots = min(nodes * a.pods_per_node, a.parallelism)
    batch_s = costs.device_core_s * a.batch_size
    compute = batches * batch_s
    shards = min(a.shards, batches) if a.shards else best_shards(compute, slots, batches, a.pods_per_s)
    concurrent = min(slots, shards)
    waves = math.ceil(shards / concurrent)
    pod_s = costs.pod_overhead_s + math.ceil(batches / shards) * batch_s
    # A wave's last pod starts concurrent / pods_per_s after its first; a layout with more pods than
    # the controller can create in a pod's life is bound by creation instead.
    by_slots = waves * pod_s + concurrent / a.pods_per_s
    by_creation = shards / a.pods_per_s + pod_s
    shard_phase = max(by_slots, by_creation)
    # Snapshot and merge pods run alone in their phase, so they get the cluster's cores, no more.
    cores = nodes * a.pods_per_node
    per_device = 1 / a.snapshot_devices_per_s if a.snapshot_devices_per_s else costs.snapshot_device_s
    snapshot = (costs.prepare_span_s - costs.prepare_work_s) + devices * per_device / min(a.snapshot_pods, cores)
    merge = (costs.merge_span_s - costs.merge_work_s) + devices * costs.merge_device_s / min(a.merge_pods, cores)
    status_nodes = FIXED_STATUS_NODES + NODES_PER_SHARD * shards
    raw, gz = status_size(status_nodes, a)
    return Estimate(
        devices=devices,
        nodes=nodes,
        batches=batches,
        shards=shards,
        concurrent=concurrent,
        waves=waves,
        pod_s=pod_s,
        pods_per_s_needed=concurrent / pod_s,
        snapshot_s=snapshot,
        compute_s=compute,
        shard_phase_s=shard_phase,
        merge_s=merge,
        controller_s=costs.controller_s,
        wall_s=costs.controller_s + snapshot + shard_phase + merge,
        status_nodes=status_nodes,
        status_bytes=raw,
        status_gz_bytes=gz,
        # Per batch a shard PUTs result and .done, and GETs/HEADs 2 inputs, the result and the marker.
        put_per_s=concurrent * 2 / batch_s,
        get_per_s=concurrent * 4 / batch_s,
    )


def _output(name: str, value: str, path: str, default: str) -> dict[str, Any]:
    return {"name": name, "value": value, "valueFrom": {"path": f"{POD_OUTPUTS}/{path}", "default": default}}


def representative_nodes(shards: int, *, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Status nodes as Argo writes them for fleet-rollout's shards: a Retry node and its Pod per shard.

    Field names follow Argo's NodeStatus; values have the lengths the fleet-shard template produces
    (a digest-pinned image, the summary output, the archived log artifact). Ids are random, as Argo's
    hashes are, so compressing them is not flattered by repetition.
    """
    rng = random.Random(seed)  # noqa: S311  (plausible ids for sizing, not secrets)
    wf = "fleet-rollout-9rt6z"
    image = "registry.fleet-infra.svc.cluster.local:5000/fleet-eval/runner@sha256:" + rng.randbytes(32).hex()
    nodes: dict[str, dict[str, Any]] = {}
    for index in range(shards):
        shard = f"s{index:03d}"
        retry_id, pod_id = (f"{wf}-{rng.getrandbits(32)}" for _ in range(2))
        started = f"2026-11-26T14:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"
        finished = f"2026-11-26T15:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"
        summary = json.dumps(
            {
                "shard": shard,
                "batches": rng.randrange(50, 200),
                "skipped": 0,
                "processed": rng.randrange(50, 200),
                "devices": rng.randrange(10_000, 50_000),
                "failures": 0,
                "library_seconds": round(rng.uniform(10, 100), 3),
                "total_seconds": round(rng.uniform(10, 100), 3),
                "library_versions": ["0.9.0"],
            }
        )
        outputs = {
            "parameters": [
                _output("summary", summary, "summary.json", "{}"),
                _output("duration_seconds", f"{rng.uniform(10, 100):.3f}", "duration_seconds", ""),
                *(
                    _output(key, str(rng.randrange(1000)), key, "")
                    for key in ("devices", "batches", "skipped", "processed", "failures")
                ),
            ],
            "artifacts": [{"name": "main-logs", "s3": {"key": f"{wf}/{wf}-fleet-shard-{pod_id[-10:]}/main.log"}}],
            "exitCode": "0",
        }
        common = {
            "templateName": "fleet-shard",
            "templateScope": "namespaced/fleet-rollout",
            "phase": "Succeeded",
            "boundaryID": wf,
            "startedAt": started,
            "finishedAt": finished,
            "progress": f"{rng.randrange(10_000, 50_000)}/{rng.randrange(10_000, 50_000)}",
            "resourcesDuration": {"cpu": rng.randrange(10, 200), "memory": rng.randrange(100, 4000)},
            "inputs": {
                "parameters": [
                    {"name": "run-id", "value": wf},
                    {"name": "image", "value": image},
                    {"name": "mode", "value": "fleet"},
                    {"name": "shard", "value": shard},
                ]
            },
            "outputs": outputs,  # Argo copies the last attempt's outputs onto the Retry node
        }
        nodes[retry_id] = {
            "id": retry_id,
            "name": f"{wf}.shard({index}:{shard})",
            "displayName": f"shard({index}:{shard})",
            "type": "Retry",
            **common,
            "children": [pod_id],
        }
        nodes[pod_id] = {
            "id": pod_id,
            "name": f"{wf}.shard({index}:{shard})(0)",
            "displayName": f"shard({index}:{shard})(0)",
            "type": "Pod",
            **common,
            "hostNodeName": f"worker-{rng.randrange(64)}",
            "nodeFlag": {"retried": True},
            "taskResultSynced": True,
        }
    return nodes


def node_sizes(sample_shards: int = 200) -> tuple[float, float]:
    """Bytes per status node as JSON and as the controller compresses it (gzip, then base64)."""
    nodes = representative_nodes(sample_shards)
    raw = json.dumps(nodes, separators=(",", ":")).encode()
    packed = base64.b64encode(gzip.compress(raw))
    return len(raw) / len(nodes), len(packed) / len(nodes)
