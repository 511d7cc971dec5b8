"""The champion alias and model versions on the real MLflow server, read back through MLflow's client."""

from __future__ import annotations

import uuid

from mlflow.tracking import MlflowClient

from eval_runner.settings import MlflowSettings
from eval_runner.tracking import MlflowTracker


def test_promote_registers_once_and_moves_the_alias(mlflow_settings: MlflowSettings) -> None:
    tracker = MlflowTracker.from_settings(mlflow_settings)
    model = f"battery-lib-{uuid.uuid4().hex[:8]}"
    assert tracker.alias_version(model, "champion") is None
    with tracker.run("evaluations", "2026-04 0.8.0", tags={"library_version": "0.8.0"}) as run_a:
        run_a.log_batch(metrics={"runtime_abs_error_median": 12.0})
    with tracker.run("evaluations", "2026-04 0.9.0", tags={"library_version": "0.9.0"}) as run_b:
        run_b.log_batch(metrics={"runtime_abs_error_median": 9.0})

    first = tracker.promote(model, library_version="0.8.0", run_id=run_a.run_id, alias="champion")
    again = tracker.promote(model, library_version="0.8.0", run_id=run_a.run_id, alias="champion")
    assert first == again  # a retried promotion registers nothing new
    second = tracker.promote(model, library_version="0.9.0", run_id=run_b.run_id, alias="champion")

    client = MlflowClient(tracking_uri=mlflow_settings.tracking_uri)
    champion = client.get_model_version_by_alias(model, "champion")
    assert champion.version == second.version
    assert champion.tags["library_version"] == "0.9.0"
    assert champion.run_id == run_b.run_id
    versions = client.search_model_versions(f"name = '{model}'")
    assert sorted(v.tags["library_version"] for v in versions) == ["0.8.0", "0.9.0"]
    record = tracker.alias_version(model, "champion")
    assert record is not None and record.library_version == "0.9.0"
