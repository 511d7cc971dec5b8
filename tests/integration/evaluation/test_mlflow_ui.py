"""MLflow's own web UI, in headless chromium, shows what the steps track: runs and the champion alias."""

from __future__ import annotations

import uuid

import pytest
from mlflow.tracking import MlflowClient
from playwright.sync_api import expect

from eval_runner.settings import MlflowSettings
from eval_runner.tracking import MlflowTracker
from tests.ui.browser import Screenshots
from tests.ui.mlflow import MlflowUi


@pytest.mark.timeout(600)
def test_runs_and_the_champion_alias_show_in_the_mlflow_ui(
    mlflow_settings: MlflowSettings, screenshots: Screenshots
) -> None:
    tracker = MlflowTracker.from_settings(mlflow_settings)
    model = f"battery-lib-{uuid.uuid4().hex[:8]}"
    runs = {}
    for version in ("0.8.0", "0.9.0"):
        with tracker.run("evaluations", f"2026-04 {version}", tags={"library_version": version}) as run:
            run.log_batch(metrics={"runtime_abs_error_median": 12.0 if version == "0.8.0" else 9.0})
            runs[version] = run.run_id
    tracker.promote(model, library_version="0.8.0", run_id=runs["0.8.0"], alias="champion")
    tracker.promote(model, library_version="0.9.0", run_id=runs["0.9.0"], alias="champion")
    experiment = MlflowClient(mlflow_settings.tracking_uri).get_experiment_by_name(
        f"{mlflow_settings.experiment_prefix}/evaluations"
    )
    assert experiment is not None

    ui = MlflowUi(screenshots.page, mlflow_settings.tracking_uri)
    ui.open_runs(experiment.experiment_id)
    for version in runs:
        expect(ui.run_link(f"2026-04 {version}")).to_be_visible()
    screenshots.take("runs")
    ui.open_model(model)
    expect(ui.version_with_alias("champion")).to_contain_text("battery-lib 0.9.0")
    expect(ui.page.get_by_role("row").filter(has_text="battery-lib 0.8.0")).to_have_count(1)
    screenshots.take("champion")
