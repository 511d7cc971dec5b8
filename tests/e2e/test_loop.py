"""The loop on kind at a small scale, asserting what a user checks: phases, S3 objects, MLflow, decisions, results."""

from __future__ import annotations

import io
import json
from datetime import date

import httpx
import polars as pl
import pytest

from eval_runner import keys
from eval_runner.evaluation import champion
from eval_runner.evaluation.records import find_record
from eval_runner.keys import Month, dataset_manifest_key, review_prefix
from eval_runner.storage import S3ObjectStore
from scripts.demo import cluster
from scripts.demo.cluster import DATA_BUCKET
from scripts.demo.loop import DEMO_REVIEWER, Loop, merge_summary
from tests.fixtures.e2e_loop import Fleet

pytestmark = pytest.mark.timeout(3600)


def _json(loop: Loop, key: str) -> dict[str, object]:
    response = loop.s3.get_object(DATA_BUCKET, key)
    try:
        return dict(json.loads(response.read()))
    finally:
        response.close()
        response.release_conn()


def _champion(mlflow_api: httpx.Client) -> str:
    response = mlflow_api.get(
        "/api/2.0/mlflow/registered-models/alias", params={"name": "battery-lib", "alias": "champion"}
    )
    response.raise_for_status()
    version = response.json()["model_version"]
    tags = {t["key"]: t["value"] for t in version.get("tags", [])}
    return str(tags.get("library_version") or version.get("description") or version)


def test_datasets_are_built_reviewed_and_validated(e2e_loop: Loop, e2e_reviewed_months: list[str]) -> None:
    phases = {r.step: r.phase for r in e2e_loop.records}
    for month in e2e_reviewed_months:
        assert phases[f"review {month}"] == "Succeeded"
        manifest = _json(e2e_loop, dataset_manifest_key(Month.parse(month)))
        assert manifest, f"manifest of {month} is empty"
        # Reviews are revisions: the newest revision=NNNNNN/review.json is the month's current review.
        prefix = review_prefix(Month.parse(month))
        metas = sorted(
            str(item.object_name)
            for item in e2e_loop.s3.list_objects(DATA_BUCKET, prefix=prefix, recursive=True)
            if str(item.object_name).endswith("/review.json") and "/revision=" in str(item.object_name)
        )
        assert metas, f"no review revision under {prefix}"
        review = _json(e2e_loop, metas[-1])
        assert review["reviewer"] == DEMO_REVIEWER


def test_evaluate_gate_and_promote(e2e_loop: Loop, e2e_reviewed_months: list[str], mlflow_api: httpx.Client) -> None:
    # Against 0.6.0 (`make demo` gates against 0.8.0): both pass at this size (bench/results/gate_calibration.md).
    wf = e2e_loop.evaluate(e2e_reviewed_months, ["0.9.0", "0.6.0", "0.8.0"], baseline="0.6.0", promote=True)
    assert wf.phase == "Succeeded"
    evaluations = [n for n in wf.pods("evaluate-version")]
    assert len(evaluations) == 3 * len(e2e_reviewed_months), [n["displayName"] for n in evaluations]
    gate = e2e_loop.gate_outputs(wf)
    assert gate["passed"] == "true", gate
    decision = e2e_loop.decision(gate["release_id"])
    assert decision["verdict"] == "pass"
    assert decision["inputs"]["candidate"]["library_version"] == "0.9.0"
    assert decision["inputs"]["baseline"]["library_version"] == "0.6.0"
    assert sorted(decision["hashes"]) == sorted(e2e_reviewed_months)
    store = S3ObjectStore.from_settings(cluster.s3_settings(e2e_loop.creds, DATA_BUCKET))
    for month in e2e_reviewed_months:
        # The gate names the review it judged per month, and every version has an evaluation of exactly
        # that dataset and review: keyed by both, or (made by `make demo` before keys named their inputs,
        # and reused) a legacy-layout record that names the same hashes.
        judged = decision["hashes"][month]
        for version in ("0.6.0", "0.8.0", "0.9.0"):
            record = find_record(
                store,
                Month.parse(month),
                version,
                dataset_hash=judged["dataset_hash"],
                review_hash=judged["review_csv_sha256"],
            )
            assert record is not None, f"{version} on {month}: no evaluation of the review the gate judged"
            assert store.exists(record.predictions.key)
    # A generation of the champion of record names this decision (on a kept cluster, `make demo`'s
    # promotion of 0.9.0 may have come after it), the newest is 0.9.0, and MLflow's alias mirrors it.
    history = champion.history(store, "battery-lib")
    ours = [r for r in history if r.release_id == gate["release_id"]]
    assert len(ours) == 1 and ours[0].image_digest == decision["images"]["0.9.0"], history
    assert history[-1].library_version == "0.9.0"
    assert "0.9.0" in _champion(mlflow_api)


def test_release_of_a_worse_version_is_refused(
    e2e_loop: Loop, e2e_reviewed_months: list[str], mlflow_api: httpx.Client
) -> None:
    wf = e2e_loop.release("0.10.0", e2e_reviewed_months, policy="default")
    assert wf.phase == "Succeeded"
    gate = e2e_loop.gate_outputs(wf)
    assert gate["passed"] == "false", gate
    decision = e2e_loop.decision(gate["release_id"])
    assert decision["verdict"] == "refuse"
    # Refused for the reason the release is built around, not for thin evidence: rev C regresses.
    assert decision["reasons"][0].startswith("refuse:"), decision["reasons"]
    assert any(r.startswith("refuse:") and "hardware_revision=C" in r for r in decision["reasons"]), decision["reasons"]
    assert not wf.pods("fleet-shard"), "a refused release must not roll out"
    store = S3ObjectStore.from_settings(cluster.s3_settings(e2e_loop.creds, DATA_BUCKET))
    now = champion.current(store, "battery-lib")
    assert now is not None and now.library_version == "0.9.0"
    assert decision["promotion"]["replaces_generation"] == now.generation  # judged against the record
    assert "0.9.0" in _champion(mlflow_api)


@pytest.mark.parametrize("mode", ["fleet", "fleet-q10-distributions", "configuration"])
def test_rollout_covers_every_device_exactly_once(e2e_loop: Loop, e2e_fleet: Fleet, mode: str) -> None:
    # 0.8.0: the demo publishes 0.9.0 results today, and published results are immutable per (mode, day, version).
    reason = "e2e: every device exactly once in each mode, with 0.8.0 (the gate's baseline, never passed)"
    wf = e2e_loop.rollout("0.8.0", mode, shards=3, batch_size=100, gate_override_reason=reason)
    summary = merge_summary(wf)
    assert summary["devices"] == e2e_fleet.devices, summary
    # Configuration targets come from the chemistry, not from the library: its batches record no version.
    version = "none" if mode == "configuration" else "0.8.0"
    assert summary["library_version"] == version
    day = date.fromisoformat(str(summary["as_of"])[:10])
    # The summary names the result mode: a configuration dry run publishes as configuration-dry-run.
    key = keys.fleet_results_key(str(summary["mode"]), day, version, str(summary["run_id"]))
    response = e2e_loop.s3.get_object(DATA_BUCKET, key)
    try:
        results = pl.read_parquet(io.BytesIO(response.read()))
    finally:
        response.close()
        response.release_conn()
    if "device_id" in results.columns:
        assert results["device_id"].n_unique() == results.height == e2e_fleet.devices
    else:
        assert results.height > 0
