"""The steps of the loop as a platform engineer runs them on the cluster; `run.py` and the e2e tests share them.

Each step submits a WorkflowTemplate through argo-server and fails loudly (WorkflowFailed names the
workflow and its failed nodes). Only the demo reviewer's review runs on the host: it is what a domain
expert does in the review UI, done by `eval-runner review submit` with the extractor's suggestions.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from minio import Minio

from eval_runner.keys import Month, dataset_file_key
from scripts.demo.argo import ArgoServer, Workflow, WorkflowFailed, parse_json
from scripts.demo.cluster import DATA_BUCKET, REPO, S3_HOST, Credentials

DEMO_REVIEWER = "demo-reviewer (accepts the extractor's suggestions)"


@dataclass
class StepRecord:
    """One row of the demo's summary table."""

    step: str
    workflow: str
    phase: str
    seconds: float
    result: str


@dataclass(frozen=True)
class ImageBuild:
    """One build-image node of a workflow: the runner image it built, or found built by another workflow."""

    workflow: str
    image: str
    digest: str
    profile: str
    seconds: float
    built: bool  # False when the node found the image built (by a workflow that held the build mutex first)
    installed: str  # the package set the build installed, one "name==version" per line ("" if it built nothing)


def image_builds(wf: Workflow) -> list[ImageBuild]:
    """The build-image nodes of ``wf`` that succeeded with an image, from their summaries."""
    builds = []
    for outputs in wf.node_outputs("build-image"):
        summary = parse_json(outputs.get("summary"), {})
        if isinstance(summary, dict) and summary.get("image"):
            builds.append(
                ImageBuild(
                    workflow=wf.name,
                    image=str(summary["image"]),
                    digest=str(summary.get("digest", "")),
                    profile=str(summary.get("profile", "?")),
                    seconds=float(summary.get("build_seconds", 0)),
                    built=summary.get("built") is True,
                    installed=outputs.get("installed", ""),
                )
            )
    return builds


def start_errors(wf: Workflow) -> list[str]:
    """Pods of ``wf`` whose containers failed to start (StartError), each as "node: message"."""
    return [
        f"{n.get('displayName')}: {n.get('message')}"
        for n in wf.nodes.values()
        if n.get("type") == "Pod" and "StartError" in str(n.get("message", ""))
    ]


@dataclass
class Loop:
    """The loop on one cluster: argo-server, S3 and the credentials to reach them from the host."""

    argo: ArgoServer
    s3: Minio
    creds: Credentials
    timeout: float = 1800
    records: list[StepRecord] = field(default_factory=list)
    builds: list[ImageBuild] = field(default_factory=list)
    start_errors: list[str] = field(default_factory=list)  # pods that failed to start (retried or not)

    def _record(self, step: str, wf: Workflow, started: float, result: str) -> None:
        self.records.append(StepRecord(step, wf.name, wf.phase, time.monotonic() - started, result))
        self.builds.extend(image_builds(wf))
        self.start_errors.extend(start_errors(wf))

    # ---- dataset-build + review --------------------------------------------------------------------

    def build_dataset(self, month: str) -> str:
        """Submit dataset-build for ``month`` and wait until it waits for the review; returns its name."""
        started = time.monotonic()
        name = self.waiting_dataset_build(month) or self.argo.submit("dataset-build", {"month": month})
        wf = self.argo.wait(name, timeout=self.timeout, until_suspended=True)
        if wf.phase != "Running":
            self.argo.require_success(wf)  # raises with the failed nodes
            raise WorkflowFailed(f"workflow {name} finished without waiting for a review")
        outputs = wf.node_outputs("build")
        rows = parse_json(outputs[0].get("rows"), {}) if outputs else {}
        rows = rows.get("dataset", "?") if isinstance(rows, dict) else rows
        self._record(f"dataset {month}", wf, started, f"{rows} samples, awaiting review")
        return name

    def waiting_dataset_build(self, month: str) -> str | None:
        """A dataset-build of ``month`` still waiting for its review (a rerun of the demo adopts it)."""
        for name in self.argo.list_names("workflows.argoproj.io/workflow-template=dataset-build"):
            wf = self.argo.get(name)
            params = {p["name"]: p.get("value") for p in wf.raw["spec"].get("arguments", {}).get("parameters", [])}
            if wf.phase == "Running" and params.get("month") == month and wf.suspended_node():
                return name
        return None

    def review(self, month: str) -> dict[str, int]:
        """The demo reviewer approves exactly the samples the extractor suggests, via `review submit`."""
        key = dataset_file_key(Month.parse(month), "dataset")
        response = self.s3.get_object(DATA_BUCKET, key)
        try:
            dataset = pl.read_parquet(io.BytesIO(response.read()), columns=["sample_id", "suggest_use"])
        finally:
            response.close()
            response.release_conn()
        review = dataset.select("sample_id", pl.col("suggest_use").alias("use_for_training"))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "review.csv"
            review.write_csv(path)
            env = {
                **os.environ,
                "FLEET_EVAL_S3_ENDPOINT": S3_HOST,
                "FLEET_EVAL_S3_ACCESS_KEY": self.creds.s3_access_key,
                "FLEET_EVAL_S3_SECRET_KEY": self.creds.s3_secret_key,
                "FLEET_EVAL_S3_BUCKET": DATA_BUCKET,
            }
            done = subprocess.run(
                [str(REPO / ".venv/bin/eval-runner"), "review", "submit", "--month", month,
                 "--file", str(path), "--reviewer", DEMO_REVIEWER],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"review submit for {month} failed ({done.returncode}): {done.stderr.strip()}")
        approved = int(review["use_for_training"].sum())
        return {"approved": approved, "rejected": review.height - approved}

    def resume_and_validate(self, name: str, month: str, review: dict[str, int]) -> Workflow:
        """Resume the suspended dataset-build; its validate step proves the review covers the dataset."""
        started = time.monotonic()
        self.argo.resume(name)
        wf = self.argo.require_success(self.argo.wait(name, timeout=self.timeout))
        self._record(f"review {month}", wf, started, f"{review['approved']} approved, {review['rejected']} rejected")
        return wf

    def dataset_month(self, month: str) -> Workflow:
        """Build, review and validate one month."""
        name = self.build_dataset(month)
        return self.resume_and_validate(name, month, self.review(month))

    # ---- evaluate / release ------------------------------------------------------------------------

    def evaluate(
        self, months: list[str], labels: list[str], *, baseline: str, promote: bool, policy: str = "default"
    ) -> Workflow:
        """Evaluate ``labels`` on ``months``, compare, gate the first label against ``baseline``."""
        started = time.monotonic()
        params = {
            "months": json.dumps(months),
            "labels": json.dumps(labels),
            "gate": "true",
            "baseline": baseline,
            "promote": "true" if promote else "false",
            "policy": policy,
        }
        wf = self.argo.run("evaluate", params, timeout=self.timeout)
        gate = self.gate_outputs(wf)
        self._record(
            f"evaluate {', '.join(labels)}", wf, started,
            f"gate {labels[0]} vs {baseline}: {gate.get('verdict', '?')} (promoted: {gate.get('promoted', '?')})",
        )  # fmt: skip
        return wf

    def release(self, version: str, months: list[str], *, rollout: bool = True, policy: str = "default") -> Workflow:
        """Run the release template (the GitOps entry) for ``version``."""
        started = time.monotonic()
        params = {
            "version": version,
            "months": json.dumps(months),
            "rollout": "true" if rollout else "false",
            "mode": "fleet",
            "policy": policy,
        }
        wf = self.argo.run("release", params, timeout=self.timeout)
        gate = self.gate_outputs(wf)
        rolled = any(n.get("templateName", "").startswith("fleet-shard") for n in wf.nodes.values())
        self._record(f"release {version}", wf, started, f"gate: {gate.get('verdict', '?')}; rolled out: {rolled}")
        return wf

    @staticmethod
    def gate_outputs(wf: Workflow) -> dict[str, Any]:
        """The gate node's output parameters (passed, verdict, release_id, decision, promoted)."""
        found = [o for o in wf.node_outputs("gate") if "verdict" in o]
        return found[0] if found else {}

    def decision(self, release_id: str) -> dict[str, Any]:
        """decision.json of a release id."""
        response = self.s3.get_object(DATA_BUCKET, f"capacity/decisions/{release_id}/decision.json")
        try:
            return dict(json.loads(response.read()))
        finally:
            response.close()
            response.release_conn()

    # ---- fleet-rollout ----------------------------------------------------------------------------

    def rollout(
        self,
        version: str,
        mode: str,
        *,
        shards: int = 4,
        batch_size: int = 250,
        run_id: str = "",
        release_id: str = "",
        gate_override_reason: str = "",
        apply: bool = False,
    ) -> Workflow:
        """Run fleet-rollout (configuration is a dry run unless ``apply``: then it writes to the devices).

        The version needs a pass decision that judged its image (``release_id`` names it; empty: any of
        the version's), or ``gate_override_reason`` saying why it rolls out without one.
        """
        started = time.monotonic()
        params = {
            "version": version,
            "mode": mode,
            "shards": str(shards),
            "batch-size": str(batch_size),
            "apply": "true" if apply else "false",
            "run-id": run_id,
            "release-id": release_id,
            "gate-override-reason": gate_override_reason,
        }
        name = self.argo.submit("fleet-rollout", params)
        wf = self.argo.wait(name, timeout=self.timeout)
        if wf.phase != "Succeeded":
            self._record(f"rollout {version} {mode}", wf, started, "FAILED: " + "; ".join(wf.failed_nodes()))
        self.argo.require_success(wf)
        merge = next(iter(wf.node_outputs("merge")), {})
        self._record(
            f"rollout {version} {mode}", wf, started,
            f"{merge.get('devices', '?')} devices in {merge.get('batches', '?')} batches",
        )  # fmt: skip
        return wf

    def rollback(self, run_id: str, *, apply: bool) -> Workflow:
        """Run fleet-rollback for a configuration run: restore (or, without ``apply``, count) its writes."""
        started = time.monotonic()
        wf = self.argo.run(
            "fleet-rollback", {"run-id": run_id, "apply": "true" if apply else "false"}, timeout=self.timeout
        )
        self._record(f"rollback {run_id}", wf, started, json.dumps(rollback_summary(wf), sort_keys=True))
        return wf

    def submit_rollout(
        self, version: str, mode: str, *, shards: int, batch_size: int, gate_override_reason: str, run_id: str = ""
    ) -> str:
        """Submit fleet-rollout without waiting (chaos tests watch it themselves); they roll out ungated."""
        return self.argo.submit(
            "fleet-rollout",
            {"version": version, "mode": mode, "shards": str(shards), "batch-size": str(batch_size),
             "apply": "false", "run-id": run_id, "gate-override-reason": gate_override_reason},
        )  # fmt: skip


def _step_summary(wf: Workflow, step: str) -> dict[str, Any]:
    """The JSON ``summary`` output of the workflow's first node of ``step``; empty when it has none."""
    summary = parse_json(next(iter(wf.node_outputs(step)), {}).get("summary"), {})
    return summary if isinstance(summary, dict) else {}


def merge_summary(wf: Workflow) -> dict[str, Any]:
    """The merge node's summary (devices, batches, library_version, counts)."""
    return _step_summary(wf, "merge")


def rollback_summary(wf: Workflow) -> dict[str, Any]:
    """The rollback node's summary (a dry run's would_restore, or an apply's devices, tried and counts)."""
    return _step_summary(wf, "rollback")
