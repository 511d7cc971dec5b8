"""The evaluate step on an in-memory store with a fake predictor and a fake tracker."""

from __future__ import annotations

import json

import polars as pl
import pyarrow
import pytest

from eval_runner.errors import ConfigError, DataError
from eval_runner.evaluation import evaluate
from eval_runner.evaluation.metrics import flatten_for_tracking
from eval_runner.evaluation.records import load_predictions, load_record, metrics_key, predictions_key
from eval_runner.keys import Month
from tests.fakes import MemoryObjectStore
from tests.fixtures.evaluation import FakePredictor, FakeTracker, publish_reviewed_month, synthetic_month, truth_of

MONTH = Month(2026, 4)


def predictor(version: str = "0.9.0") -> FakePredictor:
    dataset, _ = synthetic_month(MONTH, 100)
    return FakePredictor(version, truth_of(dataset), bias={"C": 1.3})


def test_evaluate_publishes_predictions_then_metrics_and_logs_one_run(
    eval_store: MemoryObjectStore, fake_tracker: FakeTracker
) -> None:
    dataset_hash = publish_reviewed_month(eval_store, MONTH, 100)
    params = evaluate.EvaluateParams(MONTH, "v0.9.0", image_digest="sha256:abc")
    out = evaluate.run(params, store=eval_store, tracker=fake_tracker, predictor=predictor())
    assert not out.reused
    record = load_record(eval_store, MONTH, "0.9.0")
    assert record == out.record
    # every 50th sample has no capacity test and is not approved: 98 of 100 evaluated
    assert (record.n_dataset_samples, record.n_approved, record.n_evaluated) == (100, 98, 98)
    assert record.dataset_hash == dataset_hash and record.version_label == "v0.9.0"
    # the engines it ran with, as the installed distributions say
    assert (record.engines.polars, record.engines.pyarrow) == (pl.__version__, pyarrow.__version__)
    # predictions are written before the marker
    writes = eval_store.writes
    assert writes.index(predictions_key(MONTH, "0.9.0")) < writes.index(metrics_key(MONTH, "0.9.0"))
    frame = load_predictions(eval_store, record)
    assert frame.height == 98 and frame.filter(pl.col("hardware_revision") == "C").height == 20
    experiment, _, tags, run = fake_tracker.runs[0]
    assert experiment == "evaluations" and tags["library_version"] == "0.9.0"
    assert run.params["image_digest"] == "sha256:abc" and run.params["dataset_hash"] == dataset_hash
    assert run.params["manifest_sha256"] == record.manifest_sha256
    assert run.metrics["runtime_abs_error_median"] == record.metrics["overall"]["runtime_abs_error_median"]
    assert "hardware_revision.C.runtime_abs_error_median" in run.metrics
    assert run.metrics == flatten_for_tracking(record.metrics)
    assert set(run.artifacts) == {"predictions.parquet", "metrics.json", "plots/errors.png"}
    assert run.artifacts["plots/errors.png"].startswith(b"\x89PNG")
    assert json.loads(run.artifacts["metrics.json"])["library_version"] == "0.9.0"
    assert run.artifacts["predictions.parquet"] == eval_store.get_bytes(predictions_key(MONTH, "0.9.0"))
    # Batched: params and metrics in one request, the artifacts in one upload.
    assert run.calls == ["log_batch", "log_artifacts"]
    assert list(out.phases.wall) == list(out.phases.cpu) == ["read", "predict", "metrics", "publish", "plot", "track"]


def test_a_retry_reuses_the_published_evaluation_and_the_run(
    eval_store: MemoryObjectStore, fake_tracker: FakeTracker
) -> None:
    publish_reviewed_month(eval_store, MONTH, 100)
    params = evaluate.EvaluateParams(MONTH, "0.9.0")
    first = evaluate.run(params, store=eval_store, tracker=fake_tracker, predictor=predictor())
    fake = predictor()
    again = evaluate.run(params, store=eval_store, tracker=fake_tracker, predictor=fake)
    assert again.reused and again.record == first.record and again.run_id == first.run_id
    assert fake.calls == 0 and len(fake_tracker.runs) == 1
    # Only the retry searched: a first evaluation publishes its record before logging, so no run of it can exist.
    assert fake_tracker.searches == 1


def test_a_run_lost_after_publishing_is_logged_on_retry(
    eval_store: MemoryObjectStore, fake_tracker: FakeTracker
) -> None:
    publish_reviewed_month(eval_store, MONTH, 100)
    params = evaluate.EvaluateParams(MONTH, "0.9.0")
    evaluate.run(params, store=eval_store, tracker=fake_tracker, predictor=predictor())
    fake_tracker.runs.clear()  # as if the pod died between publishing and logging
    again = evaluate.run(params, store=eval_store, tracker=fake_tracker, predictor=predictor())
    assert again.reused and len(fake_tracker.runs) == 1
    relogged = fake_tracker.runs[0][3]
    assert relogged.artifacts["predictions.parquet"] == eval_store.get_bytes(predictions_key(MONTH, "0.9.0"))
    assert relogged.metrics == flatten_for_tracking(again.record.metrics) and relogged.calls == [
        "log_batch",
        "log_artifacts",
    ]


def test_a_label_for_another_version_is_a_config_error(
    eval_store: MemoryObjectStore, fake_tracker: FakeTracker
) -> None:
    publish_reviewed_month(eval_store, MONTH, 100)
    with pytest.raises(ConfigError, match=r"asks for battery-lib 0\.8\.0, but this environment has 0\.9\.0"):
        evaluate.run(evaluate.EvaluateParams(MONTH, "v0.8.0"), store=eval_store, tracker=fake_tracker,
                     predictor=predictor())  # fmt: skip
    assert not eval_store.exists(metrics_key(MONTH, "0.9.0"))


def test_unpublished_month_is_a_data_error(eval_store: MemoryObjectStore, fake_tracker: FakeTracker) -> None:
    with pytest.raises(DataError, match="2026-04"):
        evaluate.run(evaluate.EvaluateParams(MONTH, "latest"), store=eval_store, tracker=fake_tracker,
                     predictor=predictor())  # fmt: skip


def test_a_crashing_library_publishes_nothing(eval_store: MemoryObjectStore, fake_tracker: FakeTracker) -> None:
    publish_reviewed_month(eval_store, MONTH, 100)

    class Broken(FakePredictor):
        def predict(self, samples: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
            raise DataError("battery_lib 0.9.0 (generation 2): predict failed: boom")

    broken = Broken("0.9.0", {}, {})
    with pytest.raises(DataError, match="boom"):
        evaluate.run(evaluate.EvaluateParams(MONTH, "0.9.0"), store=eval_store, tracker=fake_tracker,
                     predictor=broken)  # fmt: skip
    assert eval_store.list("capacity/evaluations/") == [] and fake_tracker.runs == []
