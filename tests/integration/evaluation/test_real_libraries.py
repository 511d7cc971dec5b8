"""The whole evaluation through the real battery-lib versions, each in its own venv (library_env).

Simulated months (fieldsim) on the real S3 and MLflow servers; every version is evaluated by
``eval-runner evaluate`` run by that version's venv python, exactly as a runner image would. Then the
gate promotes 0.9.0 over 0.8.0 and refuses 0.10.0 for its rev C regression (notes/battery-domain.md
section 6). Skipped while tests/fixtures/library_envs.py (the per-version venvs) is not there.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from mlflow.tracking import MlflowClient

from eval_runner.dataset.manifest import SourceFingerprint
from eval_runner.dataset.publish import encode_dataset, publish_dataset
from eval_runner.dataset.shape import EVENTS_SCHEMA
from eval_runner.keys import Month
from eval_runner.review.reader import save_review
from eval_runner.settings import MlflowSettings, S3Settings
from eval_runner.storage import S3ObjectStore

pytestmark = pytest.mark.slow  # real servers, many CLI processes: minutes on a shared machine

MONTHS = ("2026-03", "2026-04")
DEVICES = 500
POLICY = Path(__file__).parents[3] / "policies" / "default.yaml"


def _python_of(env: object) -> str:
    # The fixture may hand back the interpreter path or an object carrying it.
    return str(getattr(env, "python", env))


@pytest.fixture
def venv_python(request: pytest.FixtureRequest) -> dict[str, str]:
    try:
        factory = request.getfixturevalue("library_env")
    except pytest.FixtureLookupError:
        pytest.skip("tests/fixtures/library_envs.py (library_env) is not available yet")
    return {version: _python_of(factory(version)) for version in ("0.6.0", "0.8.0", "0.9.0", "0.10.0")}


def _publish_months(store: S3ObjectStore) -> None:
    from fieldsim import SimConfig, simulate
    from fieldsim.library_input import month_dataset

    fleet = simulate(SimConfig.for_months(seed=20260310, devices=DEVICES, start=MONTHS[0], months=len(MONTHS)))
    for month in MONTHS:
        dataset, series = month_dataset(fleet, month)
        source = SourceFingerprint(rows=dataset.height, sha256="0" * 64)
        objects, manifest = encode_dataset(
            Month.parse(month), dataset, series, pl.DataFrame(schema=EVENTS_SCHEMA),
            sources={"fieldsim": source}, suggestion_policy={"max_days_offline": 3.0},
        )  # fmt: skip
        publish_dataset(store, objects, manifest)
        decisions = dict(
            zip(dataset["sample_id"].to_list(), dataset["true_runtime_days"].is_not_null().to_list(), strict=True)
        )
        save_review(store, Month.parse(month), decisions, reviewer="test", reviewed_at=datetime(2026, 5, 2, tzinfo=UTC),
                    dataset_hash=manifest.content_hash, sample_ids=list(decisions))  # fmt: skip


def _env(s3: S3Settings, mlflow: MlflowSettings, model: str) -> dict[str, str]:
    return {
        **os.environ,
        "FLEET_EVAL_S3_ENDPOINT": s3.endpoint,
        "FLEET_EVAL_S3_ACCESS_KEY": s3.access_key.get_secret_value(),
        "FLEET_EVAL_S3_SECRET_KEY": s3.secret_key.get_secret_value(),
        "FLEET_EVAL_S3_BUCKET": s3.bucket,
        "FLEET_EVAL_MLFLOW_TRACKING_URI": mlflow.tracking_uri,
        "FLEET_EVAL_MLFLOW_EXPERIMENT_PREFIX": mlflow.experiment_prefix,
        "FLEET_EVAL_MLFLOW_REGISTERED_MODEL": model,
    }


def _run(python: str, env: dict[str, str], *args: str) -> dict[str, object]:
    # `python -m eval_runner.cli` hits an import cycle in commands/versions.py; call main() instead.
    program = "import sys; from eval_runner.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([python, "-c", program, *args], env=env, capture_output=True, text=True, check=False,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stderr[-3000:]}"
    result = json.loads(done.stdout)
    assert isinstance(result, dict)
    return result


def test_real_versions_are_evaluated_in_their_venvs_and_gated(
    venv_python: dict[str, str], object_store: S3ObjectStore, s3_settings: S3Settings, mlflow_settings: MlflowSettings
) -> None:
    _publish_months(object_store)
    model = f"battery-lib-{uuid.uuid4().hex[:8]}"
    env = _env(s3_settings, mlflow_settings, model)
    for version, python in venv_python.items():
        for month in MONTHS:
            out = _run(python, env, "evaluate", "--month", month, "--version-label", f"v{version}")
            assert out["library_version"] == version and out["reused"] is False

    core = venv_python["0.9.0"]
    first = _run(core, env, "gate", "--policy", str(POLICY), "--candidate", "0.9.0", "--baseline", "0.8.0",
                 "--months", ",".join(MONTHS), "--promote", "--release-id", "real-0.9.0")  # fmt: skip
    assert first["passed"] is True, first["reasons"]
    second = _run(core, env, "gate", "--policy", str(POLICY), "--candidate", "0.10.0", "--months", ",".join(MONTHS),
                  "--promote", "--release-id", "real-0.10.0")  # fmt: skip
    assert second["passed"] is False
    assert any(r.startswith("refuse: segment: hardware_revision=C") for r in second["reasons"]), second["reasons"]  # type: ignore[attr-defined]

    client = MlflowClient(tracking_uri=mlflow_settings.tracking_uri)
    assert client.get_model_version_by_alias(model, "champion").tags["library_version"] == "0.9.0"
    experiment = client.get_experiment_by_name(f"{mlflow_settings.experiment_prefix}/evaluations")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sorted((r.data.tags["month"], r.data.params["library_version"]) for r in runs) == sorted(
        (m, v) for m in MONTHS for v in venv_python
    )
    generations = {r.data.params["library_version"]: r.data.params["api_generation"] for r in runs}
    assert (generations["0.6.0"], generations["0.9.0"]) == ("1", "2")
