"""The evaluate step on an in-memory store with a fake predictor and a fake tracker."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pyarrow
import pytest

from eval_runner.errors import ConfigError, DataError
from eval_runner.evaluation import evaluate
from eval_runner.evaluation.lineage import month_lineage
from eval_runner.evaluation.metrics import flatten_for_tracking
from eval_runner.evaluation.records import load_predictions, load_record, metrics_key, predictions_key
from eval_runner.keys import Month
from eval_runner.review.reader import load_review, save_review
from tests.fakes import FakePredictor, FakeTracker, MemoryObjectStore
from tests.fixtures.evaluation import publish_reviewed_month, synthetic_month, truth_of

MONTH = Month(2026, 4)


def _inputs(store: MemoryObjectStore) -> dict[str, str]:
    """The dataset and review hashes the month's evaluations are keyed by now."""
    lineage = month_lineage(store, MONTH)
    return {"dataset_hash": lineage.dataset_hash, "review_hash": lineage.review_hash}


def _revise_review(store: MemoryObjectStore, dataset_hash: str) -> str:
    """Save a second revision that rejects one more sample; return its review hash."""
    current = load_review(store, MONTH, dataset_hash)
    dropped = sorted(current.approved)[0]
    decisions = dict.fromkeys(current.approved, True) | dict.fromkeys(current.rejected | {dropped}, False)
    ids = synthetic_month(MONTH, 100)[0]["sample_id"].to_list()
    when = datetime(2026, 5, 9, tzinfo=UTC)
    revised = save_review(store, MONTH, decisions, reviewer="bo", reviewed_at=when, dataset_hash=dataset_hash,
                          sample_ids=ids)  # fmt: skip
    assert revised.revision == 2
    return revised.review_hash


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
    inputs = _inputs(eval_store)
    record = load_record(eval_store, MONTH, "0.9.0", **inputs)
    assert record == out.record
    # every 50th sample has no capacity test and is not approved: 98 of 100 evaluated
    assert (record.n_dataset_samples, record.n_approved, record.n_evaluated) == (100, 98, 98)
    assert record.dataset_hash == dataset_hash and record.version_label == "v0.9.0"
    # the engines it ran with, as the installed distributions say
    assert (record.engines.polars, record.engines.pyarrow) == (pl.__version__, pyarrow.__version__)
    # predictions are written before the marker
    writes = eval_store.writes
    assert writes.index(predictions_key(MONTH, "0.9.0", **inputs)) < writes.index(metrics_key(MONTH, "0.9.0", **inputs))
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
    assert run.artifacts["predictions.parquet"] == eval_store.get_bytes(predictions_key(MONTH, "0.9.0", **inputs))
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
    assert relogged.artifacts["predictions.parquet"] == eval_store.get_bytes(
        predictions_key(MONTH, "0.9.0", **_inputs(eval_store))
    )
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
    assert not eval_store.exists(metrics_key(MONTH, "0.9.0", **_inputs(eval_store)))


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


def test_a_revised_review_is_a_new_evaluation_and_the_old_one_stays(
    eval_store: MemoryObjectStore, fake_tracker: FakeTracker
) -> None:
    dataset_hash = publish_reviewed_month(eval_store, MONTH, 100)
    first = evaluate.run(evaluate.EvaluateParams(MONTH, "0.9.0"), store=eval_store, tracker=fake_tracker,
                         predictor=predictor())  # fmt: skip
    old_key = metrics_key(MONTH, "0.9.0", dataset_hash=dataset_hash, review_hash=first.record.review_csv_sha256)
    old_bytes = eval_store.get_bytes(old_key)
    new_hash = _revise_review(eval_store, dataset_hash)

    second = evaluate.run(evaluate.EvaluateParams(MONTH, "0.9.0", review_hash=new_hash), store=eval_store,
                          tracker=fake_tracker, predictor=predictor())  # fmt: skip

    assert not second.reused and second.record.review_csv_sha256 == new_hash != first.record.review_csv_sha256
    assert second.record.n_approved == first.record.n_approved - 1
    assert eval_store.get_bytes(old_key) == old_bytes  # the old evaluation is untouched
    assert eval_store.exists(metrics_key(MONTH, "0.9.0", dataset_hash=dataset_hash, review_hash=new_hash))
    assert [tags["review_sha256"] for _, _, tags, _ in fake_tracker.runs] == [first.record.review_csv_sha256, new_hash]


def test_a_retry_of_the_same_evaluation_is_reused_not_recomputed(
    eval_store: MemoryObjectStore, fake_tracker: FakeTracker
) -> None:
    publish_reviewed_month(eval_store, MONTH, 100)
    first = evaluate.run(evaluate.EvaluateParams(MONTH, "0.9.0"), store=eval_store, tracker=fake_tracker,
                         predictor=predictor())  # fmt: skip
    writes = len(eval_store.writes)

    class NeverCalled(FakePredictor):
        def predict(self, samples: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
            raise AssertionError("a retry must not predict again")

    again = evaluate.run(evaluate.EvaluateParams(MONTH, "0.9.0", review_hash=first.record.review_csv_sha256),
                         store=eval_store, tracker=fake_tracker, predictor=NeverCalled("0.9.0", {}, {}))  # fmt: skip
    assert again.reused and again.record == first.record and again.run_id == first.run_id
    assert len(eval_store.writes) == writes and len(fake_tracker.runs) == 1


def test_a_review_hash_that_is_not_the_current_review_is_refused_naming_both(
    eval_store: MemoryObjectStore, fake_tracker: FakeTracker
) -> None:
    dataset_hash = publish_reviewed_month(eval_store, MONTH, 100)
    validated = month_lineage(eval_store, MONTH).review_hash
    edited = _revise_review(eval_store, dataset_hash)  # the review changed after it was validated
    with pytest.raises(DataError, match=rf"review of 2026-04: this step must use review {validated}, but the "
                                        rf"month's current review is {edited} \(revision 2\)"):  # fmt: skip
        evaluate.run(evaluate.EvaluateParams(MONTH, "0.9.0", review_hash=validated), store=eval_store,
                     tracker=fake_tracker, predictor=predictor())  # fmt: skip
    assert eval_store.list("capacity/evaluations/") == [] and fake_tracker.runs == []
