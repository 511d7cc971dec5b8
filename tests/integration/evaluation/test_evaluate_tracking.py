"""What one evaluation logs to a real MLflow server (artifacts on real S3), and that a retry logs nothing twice."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from eval_runner.evaluation import evaluate
from eval_runner.evaluation.metrics import flatten_for_tracking
from eval_runner.evaluation.records import metrics_key
from eval_runner.keys import Month
from eval_runner.settings import MlflowSettings
from eval_runner.storage import S3ObjectStore
from eval_runner.tracking import MlflowTracker
from tests.fakes import FakePredictor
from tests.fixtures.evaluation import publish_reviewed_month, synthetic_month, truth_of

MONTH = Month(2026, 4)
N = 200
ARTIFACTS = {"metrics.json", "predictions.parquet", "plots/errors.png"}


def _predictor() -> FakePredictor:
    dataset, _ = synthetic_month(MONTH, N)
    return FakePredictor("0.9.0", truth_of(dataset), bias={"C": 1.3})


def _artifacts(client: MlflowClient, run_id: str, folder: Path) -> dict[str, bytes]:
    listed = [a.path for a in client.list_artifacts(run_id)]
    paths = [p for top in listed for p in ([a.path for a in client.list_artifacts(run_id, top)] or [top])]
    return {path: Path(client.download_artifacts(run_id, path, str(folder))).read_bytes() for path in paths}


def test_an_evaluation_is_one_run_with_every_metric_and_artifact_and_a_retry_logs_nothing_more(
    object_store: S3ObjectStore, mlflow_settings: MlflowSettings, tmp_path: Path
) -> None:
    publish_reviewed_month(object_store, MONTH, N)
    tracker = MlflowTracker.from_settings(mlflow_settings)
    params = evaluate.EvaluateParams(MONTH, "v0.9.0", image_digest="sha256:abc")
    out = evaluate.run(params, store=object_store, tracker=tracker, predictor=_predictor())
    assert not out.reused and out.run_id is not None
    assert list(out.phases.wall) == ["read", "predict", "metrics", "publish", "plot", "track"]

    client = MlflowClient(tracking_uri=mlflow_settings.tracking_uri)
    experiment = client.get_experiment_by_name(f"{mlflow_settings.experiment_prefix}/evaluations")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == out.run_id and run.info.status == "FINISHED"
    record = out.record
    # Every metric of the record, under its flat name and with its value, each logged once at step 0.
    assert run.data.metrics == flatten_for_tracking(record.metrics)
    segments = {name.split(".")[0] for name in run.data.metrics if "." in name}
    assert {"hardware_revision", "firmware_version"} <= segments and len(run.data.metrics) >= 100
    for name in ("runtime_abs_error_median", "hardware_revision.C.capacity_rel_error_p95"):
        assert [(m.value, m.step) for m in client.get_metric_history(run.info.run_id, name)] == [
            (run.data.metrics[name], 0)
        ]
    assert run.data.params == {key: str(value) for key, value in evaluate.run_params(record).items()}
    assert {k: run.data.tags[k] for k in evaluate.run_tags(record)} == evaluate.run_tags(record)
    # The artifacts are the published objects themselves (the same bytes) and the plot.
    logged = _artifacts(client, run.info.run_id, tmp_path / "first")
    assert set(logged) == ARTIFACTS
    assert logged["metrics.json"] == object_store.get_bytes(
        metrics_key(MONTH, "0.9.0", dataset_hash=record.dataset_hash, review_hash=record.review_csv_sha256)
    )
    assert logged["predictions.parquet"] == object_store.get_bytes(record.predictions.key)
    assert logged["plots/errors.png"].startswith(b"\x89PNG")

    # A retry (the pod restarted after logging) reuses the record and the run, and logs nothing.
    again = evaluate.run(params, store=object_store, tracker=tracker, predictor=(fake := _predictor()))
    assert again.reused and again.run_id == out.run_id and fake.calls == 0
    (same,) = client.search_runs([experiment.experiment_id])
    assert same.data.metrics == run.data.metrics
    assert len(client.get_metric_history(run.info.run_id, "runtime_abs_error_median")) == 1

    # A run lost after publishing (deleted here) is logged again on retry, from the store, with the same content.
    client.delete_run(run.info.run_id)
    relogged = evaluate.run(params, store=object_store, tracker=tracker, predictor=_predictor())
    assert relogged.reused and relogged.run_id not in {None, out.run_id}
    assert relogged.run_id is not None
    (replacement,) = client.search_runs([experiment.experiment_id])
    assert replacement.info.run_id == relogged.run_id
    assert replacement.data.metrics == run.data.metrics and replacement.data.params == run.data.params
    assert _artifacts(client, relogged.run_id, tmp_path / "again") == logged
