"""The MLflow adapter against a real MLflow server, read back through MLflow's own client."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from eval_runner.errors import ConfigError
from eval_runner.settings import MlflowSettings
from eval_runner.tracking import MlflowTracker


def test_run_with_params_metrics_and_artifacts_reads_back(mlflow_settings: MlflowSettings, tmp_path: Path) -> None:
    tracker = MlflowTracker.from_settings(mlflow_settings)
    with tracker.run("evaluations", "2026-04/0.9.0", tags={"month": "2026-04", "version": "0.9.0"}) as run:
        run.log_batch(
            params={"version_label": "0.9.0", "samples": 1000},
            metrics={"runtime_abs_err_median": 12.5, "coverage_q10_q90": 0.81},
        )
        run.log_artifacts({"metrics.json": b"{}\n", "plots/errors.csv": b"sample_id,err\na,1.0\n"})
        run_id = run.run_id

    client = MlflowClient(tracking_uri=mlflow_settings.tracking_uri)
    stored = client.get_run(run_id)
    assert stored.info.status == "FINISHED"
    assert stored.data.params == {"version_label": "0.9.0", "samples": "1000"}
    assert stored.data.metrics == {"runtime_abs_err_median": 12.5, "coverage_q10_q90": 0.81}
    assert stored.data.tags["month"] == "2026-04"
    assert [a.path for a in client.list_artifacts(run_id)] == ["metrics.json", "plots"]
    downloaded = Path(client.download_artifacts(run_id, "plots/errors.csv", str(tmp_path)))
    assert downloaded.read_bytes() == b"sample_id,err\na,1.0\n"

    found = tracker.find_runs("evaluations", tags={"month": "2026-04", "version": "0.9.0"})
    assert [record.run_id for record in found] == [run_id]


def test_a_batch_past_mlflows_request_limits_is_split_and_logged_whole(mlflow_settings: MlflowSettings) -> None:
    # 150 params and 1,200 metrics: more than one log_batch request may carry (100 params, 1,000 entries).
    params = {f"param_{i}": i for i in range(150)}
    metrics = {f"segment.{i}.runtime_abs_error_median": float(i) for i in range(1200)}
    tracker = MlflowTracker.from_settings(mlflow_settings)
    with tracker.run("evaluations", "many segments") as run:
        run.log_batch(params=params, metrics=metrics)
    stored = MlflowClient(tracking_uri=mlflow_settings.tracking_uri).get_run(run.run_id)
    assert stored.data.params == {key: str(value) for key, value in params.items()}
    assert stored.data.metrics == metrics


def test_an_artifact_name_outside_the_run_is_refused(mlflow_settings: MlflowSettings) -> None:
    tracker = MlflowTracker.from_settings(mlflow_settings)
    refused = r"'\.\./escape\.txt' must be a relative path inside the run"
    with pytest.raises(ConfigError, match=refused), tracker.run("evaluations", "escape") as run:
        run.log_artifacts({"../escape.txt": b"x"})
    assert MlflowClient(tracking_uri=mlflow_settings.tracking_uri).get_run(run.run_id).info.status == "FAILED"


def test_a_failing_block_marks_the_run_failed(mlflow_settings: MlflowSettings) -> None:
    tracker = MlflowTracker.from_settings(mlflow_settings)
    with pytest.raises(RuntimeError), tracker.run("evaluations", "broken") as run:
        run_id = run.run_id
        raise RuntimeError("boom")
    assert MlflowClient(tracking_uri=mlflow_settings.tracking_uri).get_run(run_id).info.status == "FAILED"
    assert tracker.find_runs("evaluations", tags={}) == []
