"""evaluate -> compare -> gate -> evaluations list through the CLI on the real S3 and MLflow servers.

The library here is a generation-2 battery_lib stand-in injected per version (bias shaped like the rev C
trap), so the test runs without the per-version venvs; MLflow contents are read back through
MLflow's own client.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from types import ModuleType

import polars as pl
import pyarrow as pa
import pytest
from mlflow.tracking import MlflowClient

from eval_runner.cli import main
from eval_runner.contracts import SCHEMA_VERSION
from eval_runner.dataset.manifest import SourceFingerprint
from eval_runner.dataset.publish import encode_dataset, publish_dataset
from eval_runner.dataset.shape import EVENTS_SCHEMA
from eval_runner.evaluation.lineage import month_lineage
from eval_runner.evaluation.records import load_record
from eval_runner.keys import Month
from eval_runner.settings import MlflowSettings, S3Settings
from eval_runner.storage import S3ObjectStore
from tests.fakes import FakePredictor
from tests.fixtures.evaluation import publish_reviewed_month, synthetic_month, truth_of

pytestmark = pytest.mark.slow  # real servers, many CLI processes: minutes on a shared machine

MONTHS = (Month(2026, 4), Month(2026, 5))
N = 300
POLICY = Path(__file__).parents[3] / "policies" / "default.yaml"
VERSIONS = {"0.8.0": ({}, 0.30), "0.9.0": ({}, 0.15), "0.10.0": ({"C": 1.35}, 0.12)}


def fake_library(version: str, truth: dict[str, tuple[float, float]]) -> ModuleType:
    bias, noise = VERSIONS[version]
    inner = FakePredictor(version, truth, bias, noise=noise, seed=len(version))

    class Predictor:
        def predict(self, samples: pa.Table, series: pa.Table) -> pa.Table:
            frame = pl.DataFrame(pl.from_arrow(samples))
            return inner.predict(frame, pl.DataFrame(pl.from_arrow(series))).to_arrow()

    module = ModuleType("battery_lib")
    module.API_GENERATION = 2  # type: ignore[attr-defined]
    module.Predictor = Predictor  # type: ignore[attr-defined]
    module.__version__ = version  # type: ignore[attr-defined]
    return module


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch,
    s3_settings: S3Settings,
    mlflow_settings: MlflowSettings,
    object_store: S3ObjectStore,
) -> MlflowSettings:
    model = f"battery-lib-{uuid.uuid4().hex[:8]}"
    for name, value in {
        "S3_ENDPOINT": s3_settings.endpoint,
        "S3_ACCESS_KEY": s3_settings.access_key.get_secret_value(),
        "S3_SECRET_KEY": s3_settings.secret_key.get_secret_value(),
        "S3_BUCKET": s3_settings.bucket,
        "MLFLOW_TRACKING_URI": mlflow_settings.tracking_uri,
        "MLFLOW_EXPERIMENT_PREFIX": mlflow_settings.experiment_prefix,
        "MLFLOW_REGISTERED_MODEL": model,
    }.items():
        monkeypatch.setenv(f"FLEET_EVAL_{name}", value)
    return mlflow_settings.model_copy(update={"registered_model": model})


def experiment_id(client: MlflowClient, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None, name
    return str(experiment.experiment_id)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert isinstance(result, dict)
    return result


def test_evaluate_compare_gate_list_on_real_services(
    env: MlflowSettings,
    object_store: S3ObjectStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for index, month in enumerate(MONTHS):
        publish_reviewed_month(object_store, month, N, seed=index)
        truth = truth_of(synthetic_month(month, N, seed=index)[0])
        for version in VERSIONS:
            monkeypatch.setitem(sys.modules, "battery_lib", fake_library(version, truth))
            out = cli(capsys, "evaluate", "--month", str(month), "--version-label", f"v{version}",
                      "--image-digest", f"sha256:{version}")  # fmt: skip
            assert out["samples"] == N - N // 50 and out["reused"] is False
    # a retry reuses the published evaluation and its run
    again = cli(capsys, "evaluate", "--month", "2026-05", "--version-label", "0.10.0")
    assert again["reused"] is True

    compared = cli(capsys, "compare", "--months", '["2026-04", "2026-05"]', "--versions", "0.8.0,0.9.0,0.10.0")
    assert compared["versions"][-1] == "0.8.0"  # type: ignore[index]

    first = cli(capsys, "gate", "--policy", str(POLICY), "--candidate", "0.9.0", "--baseline", "0.8.0",
                "--month", "2026-04", "--month", "2026-05", "--promote",
                "--release-id", "battery-lib-0.9.0")  # fmt: skip
    assert first["passed"] is True and first["promoted"] == "0.9.0"
    second = cli(capsys, "gate", "--policy", str(POLICY), "--candidate", "0.10.0", "--months", "2026-04,2026-05",
                 "--promote", "--release-id", "battery-lib-0.10.0")  # fmt: skip
    assert second["passed"] is False and second["promoted"] is None
    assert any("hardware_revision=C" in reason for reason in second["reasons"])  # type: ignore[attr-defined]
    decision = json.loads(object_store.get_bytes("capacity/decisions/battery-lib-0.10.0/decision.json"))
    assert decision["inputs"]["baseline"]["library_version"] == "0.9.0"
    assert decision["evaluations"]["0.10.0"]["2026-04"]["image_digest"] == "sha256:0.10.0"

    assert main(["evaluations", "list"]) == 0
    table = capsys.readouterr().out
    assert "2026-04" in table and "0.10.0" in table and " - " not in table

    # A next extractor's build of May goes beside the old one: this extractor's evaluations stay current,
    # each row names the build it is of, and `dataset show` verifies this extractor's build and names the other.
    dataset, series = synthetic_month(Month(2026, 5), N, seed=9)
    objects, manifest = encode_dataset(Month(2026, 5), dataset, series, pl.DataFrame(schema=EVENTS_SCHEMA),
                                       sources={"analytics": SourceFingerprint(rows=N, sha256="0" * 64)},
                                       suggestion_policy={}, schema_version=SCHEMA_VERSION + 1)  # fmt: skip
    publish_dataset(object_store, objects, manifest)
    assert main(["evaluations", "list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 6 and {(row["status"], row["schema_version"]) for row in rows} == {("current", SCHEMA_VERSION)}
    assert main(["dataset", "show", "--month", "2026-05"]) == 0
    shown = capsys.readouterr()
    assert json.loads(shown.out)["content_hash"] == month_lineage(object_store, Month(2026, 5)).dataset_hash
    assert f"a build by extractor schema version {SCHEMA_VERSION + 1} is kept too (incomparable)" in shown.err

    # ---- read back through MLflow's own client --------------------------------------------------------
    client = MlflowClient(tracking_uri=env.tracking_uri)
    runs = client.search_runs([experiment_id(client, f"{env.experiment_prefix}/evaluations")])
    assert len(runs) == 6  # one per (month, version), the retry added none
    run = next(r for r in runs if r.data.tags["library_version"] == "0.10.0" and r.data.tags["month"] == "2026-04")
    lineage = month_lineage(object_store, Month(2026, 4))
    record = load_record(object_store, Month(2026, 4), "0.10.0", dataset_hash=lineage.dataset_hash,
                         review_hash=lineage.review_hash)  # fmt: skip
    assert run.data.params["version_label"] == "v0.10.0"
    assert run.data.params["library_version"] == "0.10.0"
    assert run.data.params["image_digest"] == "sha256:0.10.0"
    assert run.data.params["dataset_hash"] == record.dataset_hash
    assert run.data.params["manifest_sha256"] == record.manifest_sha256
    assert run.data.metrics["runtime_abs_error_median"] == pytest.approx(
        record.metrics["overall"]["runtime_abs_error_median"]
    )
    assert (
        run.data.metrics["hardware_revision.C.runtime_abs_error_median"]
        > run.data.metrics["hardware_revision.B.runtime_abs_error_median"]
    )
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)} | {
        a.path for a in client.list_artifacts(run.info.run_id, "plots")
    }
    assert {"predictions.parquet", "metrics.json", "plots/errors.png"} <= artifacts
    local = client.download_artifacts(run.info.run_id, "predictions.parquet")
    assert pl.read_parquet(local).height == N - N // 50

    comparisons = client.search_runs([experiment_id(client, f"{env.experiment_prefix}/comparisons")])
    assert len(comparisons) == 1
    plots = {a.path for a in client.list_artifacts(comparisons[0].info.run_id, "plots")}
    assert "plots/cdf_runtime_abs_error.png" in plots

    champion = client.get_model_version_by_alias(env.registered_model, "champion")
    assert champion.tags["library_version"] == "0.9.0"
