"""Prepare step: fleet-rollout's first pod checks the gate, snapshots and plans for a resolved version.

One pod instead of three (resolve, snapshot, plan), since each workflow step costs seconds of pod
start-up and controller latency before the shards can start. The order is what makes a mistake cheap:
the caller validates the options and resolves the label, then the gate decision is checked
(gating.py), so a typo or an ungated build fails before the sources are read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from eval_runner.fleet import plan
from eval_runner.fleet.gating import RolloutGate, check_rollout
from eval_runner.fleet.models import ConfigurationSettings, Mode, Plan, SnapshotManifest
from eval_runner.fleet.plan import check_canary
from eval_runner.fleet.snapshot import FleetSource, SnapshotParams, snapshot_sources, snapshot_summary
from eval_runner.resolution import Resolution
from eval_runner.storage import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareParams:
    """What `fleet prepare` is asked: the run, the version it rolls out and under which decision."""

    run_id: str
    resolution: Resolution  # the version, resolved: the image the gate must have judged
    mode: Mode
    as_of: datetime
    batch_size: int
    series_days: int
    n_shards: int
    configuration: ConfigurationSettings | None
    release_id: str | None = None
    gate_override_reason: str | None = None


@dataclass(frozen=True)
class Prepared:
    """The planned run: its shard ids (the workflow fans out over them) and the step's summary."""

    plan: Plan
    gate: RolloutGate
    snapshot: SnapshotManifest

    @property
    def shard_ids(self) -> list[str]:
        """The plan's shards, sorted: the fan-out's items."""
        return sorted(self.plan.shards)


def run(
    params: PrepareParams,
    *,
    store: ObjectStore,
    open_source: Callable[[], AbstractContextManager[FleetSource]],
) -> Prepared:
    """Check the gate for the resolved version, snapshot the fleet (sources opened only if needed), plan."""
    resolution = params.resolution
    gate = check_rollout(
        store,
        library_version=resolution.library_version,
        image=resolution.image,
        pinned_image=resolution.pinned_image,
        release_id=params.release_id,
        override_reason=params.gate_override_reason,
    )
    if gate.override_reason is not None:
        unneeded = " (a pass decision judged this image: the override was not needed)" if gate.would_bind else ""
        log.warning("fleet prepare: rolling out %s by override: %s%s", resolution.label, gate.override_reason, unneeded)
    configuration = params.configuration
    manifest = snapshot_sources(
        SnapshotParams(params.run_id, params.as_of, batch_size=params.batch_size, series_days=params.series_days),
        store=store,
        open_source=open_source,
        check_batches=None if configuration is None else (lambda n: check_canary(configuration, n)),
    )
    planned = plan.run(
        plan.PlanParams(
            params.run_id,
            params.mode,
            n_shards=params.n_shards,
            configuration=configuration,
            gate=gate.binding,
            gate_override_reason=gate.override_reason,
        ),
        store=store,
    )
    return Prepared(plan=planned, gate=gate, snapshot=manifest)


def prepare_summary(
    prepared: Prepared, resolution: Resolution, *, images_missing: int, started: float
) -> dict[str, object]:
    """summary.json of the prepare step (Argo's output parameter; the UI shows it on the node)."""
    gate = prepared.gate
    return {
        "library_version": resolution.library_version,
        "images_missing": images_missing,
        "gate_release_id": gate.binding.release_id if gate.binding is not None else "",
        "gate_override_reason": gate.override_reason or "",
        **snapshot_summary(prepared.plan.run_id, prepared.snapshot),
        "shards": len(prepared.shard_ids),
        "duration_seconds": round(time.monotonic() - started, 3),
    }
