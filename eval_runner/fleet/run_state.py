"""A fleet run's state in the store: its plan and snapshot, its batch markers, its halt; read and written here only."""

from __future__ import annotations

from eval_runner import keys
from eval_runner.errors import DataError
from eval_runner.fleet.models import DoneMarker, Halt, Plan, SnapshotManifest
from eval_runner.storage import ObjectStore


def load_run(store: ObjectStore, run_id: str) -> tuple[Plan, SnapshotManifest]:
    """Read the plan and the snapshot manifest it was made from (checked by hash)."""
    plan_key = keys.fleet_plan_key(run_id)
    if not store.exists(plan_key):
        raise DataError(f"fleet run {run_id!r}: no plan at {plan_key!r}; run `eval-runner fleet plan` first")
    plan = Plan.from_json_bytes(store.get_bytes(plan_key), name=plan_key)
    manifest_key = keys.fleet_snapshot_manifest_key(run_id)
    data = store.get_bytes(manifest_key, expected_sha256=plan.snapshot_sha256)
    return plan, SnapshotManifest.from_json_bytes(data, name=manifest_key)


def batch_markers(store: ObjectStore, run_id: str) -> dict[int, str]:
    """Batches with a committed result and the marker key naming it (.done wins over .pending); one LIST."""
    prefix = keys.fleet_batch_done_key(run_id, 0).rsplit("/", 1)[0] + "/"
    found: dict[int, str] = {}
    for key in store.list(prefix):
        name = key.rsplit("/", 1)[-1]
        for suffix in (".done", ".pending"):
            if name.startswith("batch=") and name.endswith(suffix):
                batch = int(name[len("batch=") : -len(suffix)])
                if suffix == ".done" or batch not in found:
                    found[batch] = key
    return found


def done_batches(store: ObjectStore, run_id: str) -> set[int]:
    """Batches of the run whose .done marker exists (one LIST, not one HEAD per batch)."""
    return {batch for batch, key in batch_markers(store, run_id).items() if key.endswith(".done")}


def commit_batch(store: ObjectStore, run_id: str, marker: DoneMarker, result: bytes, *, pending: bool = False) -> None:
    """Write the result, verify it, then the marker: a marker never names a result that is not whole.

    The result may be overwritten: until its marker exists nothing trusts it, and a library that is not
    bit-for-bit deterministic must still be able to finish a batch that crashed before its marker. A
    ``pending`` batch (unresolved devices) gets a .pending marker, rewritten by every later attempt.
    """
    result_key = keys.fleet_batch_key(run_id, marker.batch)
    if pending:
        marker_key = keys.fleet_batch_pending_key(run_id, marker.batch)
        overwrite = {result_key, marker_key}
    else:
        marker_key, overwrite = keys.fleet_batch_done_key(run_id, marker.batch), {result_key}
    store.publish({result_key: result}, marker_key=marker_key, marker=marker.to_json_bytes(), overwrite=overwrite)


def check_not_halted(store: ObjectStore, run_id: str) -> None:
    """Stop (DataError, never retried) when a configuration run has halted on its error rate."""
    key = keys.fleet_halt_key(run_id)
    if store.exists(key):
        halt = Halt.from_json_bytes(store.get_bytes(key), name=key)
        raise DataError(
            f"fleet run {run_id!r} halted: shard {halt.shard or '?'} failed {halt.failed} of {halt.attempted} "
            f"writes by batch {halt.batch} "
            f"(error rate {halt.error_rate:.1%} > {halt.max_error_rate:.1%}); see {key!r}, e.g. "
            f"{'; '.join(halt.first_errors[:3])}"
        )
