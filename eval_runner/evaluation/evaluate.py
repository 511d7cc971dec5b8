"""Step: evaluate the installed library version on one reviewed month; publish, then log to MLflow."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from eval_runner import __version__
from eval_runner.dataset.reader import load_dataset
from eval_runner.engines import installed_engines
from eval_runner.errors import ConfigError, DataError
from eval_runner.evaluation.lineage import check_review_hash
from eval_runner.evaluation.metrics import evaluated_frame, flatten_for_tracking, summarise, with_errors
from eval_runner.evaluation.plots import error_distribution_png
from eval_runner.evaluation.records import (
    METRICS_NAME,
    PREDICTIONS_NAME,
    EvaluationRecord,
    PredictionsFile,
    decode_predictions,
    encode_predictions,
    find_record,
    metrics_key,
    predictions_key,
)
from eval_runner.hashing import sha256_bytes
from eval_runner.keys import Month
from eval_runner.library import Predictor
from eval_runner.review.reader import load_review
from eval_runner.storage import ObjectStore
from eval_runner.timing import Phases
from eval_runner.tracking import Tracker

EXPERIMENT = "evaluations"
_RELEASE_LABEL = re.compile(r"^[vV]?(\d+(?:\.\d+)*)$")


@dataclass(frozen=True)
class EvaluateParams:
    """What to evaluate: a month, the label the user asked for, and the image it runs in."""

    month: Month
    version_label: str
    image_digest: str = "unknown"
    review_hash: str | None = None  # the review it must use (from validate-review); None: the current one


@dataclass
class EvaluateOutput:
    """The published record, whether it already existed, the MLflow run and where the time went (per phase)."""

    record: EvaluationRecord
    reused: bool
    run_id: str | None
    phases: Phases = field(default_factory=Phases)


def check_label(label: str, installed: str) -> None:
    """A release label must name the installed version: evaluating 0.8.0 in the 0.9.0 image is a mix-up."""
    found = _RELEASE_LABEL.match(label.strip())
    if found is not None and found.group(1) != installed:
        raise ConfigError(
            f"version label {label!r} asks for battery-lib {found.group(1)}, but this environment has "
            f"{installed} installed; run the evaluation in the image of that version"
        )


def run(params: EvaluateParams, *, store: ObjectStore, tracker: Tracker, predictor: Predictor) -> EvaluateOutput:
    """Evaluate ``predictor`` on the approved samples of ``params.month``'s current review and publish the result.

    The evaluation is keyed by the dataset and review hashes it uses: one published for the same inputs
    is reused (so a retry never recomputes or double-logs), and a revised review is a new evaluation
    beside the old one. A ``params.review_hash`` that is not the month's current review is a DataError.
    """
    month, version = params.month, predictor.library_version
    check_label(params.version_label, version)
    phases = Phases()
    with phases("read"):
        loaded = load_dataset(store, month)
        dataset = loaded.dataset
        review = load_review(store, month, loaded.content_hash, sample_ids=dataset.get_column("sample_id").to_list())
        check_review_hash(month, expected=params.review_hash, current=review.review_hash, revision=review.revision)
        inputs = {"dataset_hash": loaded.content_hash, "review_hash": review.review_hash}
        existing = find_record(store, month, version, **inputs)

    if existing is not None:
        with phases("track"):
            found = tracker.find_runs(EXPERIMENT, tags=run_tags(existing))
        if found:
            return EvaluateOutput(existing, reused=True, run_id=found[0].run_id, phases=phases)
        # Published before, but the pod died before its run was logged: log it from the store.
        with phases("read"):
            predictions_bytes = store.get_bytes(existing.predictions.key, expected_sha256=existing.predictions.sha256)
            errors = with_errors(decode_predictions(existing, predictions_bytes))
        run_id = _log_run(tracker, existing, predictions_bytes, errors, phases)
        return EvaluateOutput(existing, reused=True, run_id=run_id, phases=phases)

    approved = dataset.filter(pl.col("sample_id").is_in(sorted(review.approved)))
    with_truth = approved.filter(pl.col("true_capacity_mah").is_not_null() & pl.col("true_runtime_days").is_not_null())
    if with_truth.height == 0:
        raise DataError(
            f"dataset {month}: none of the {approved.height} approved samples has a capacity-test truth; "
            "nothing to evaluate"
        )

    with phases("predict"):
        predictions = predictor.predict(with_truth, loaded.series)

    with phases("metrics"):
        evaluated = evaluated_frame(with_truth, predictions)
        errors = with_errors(evaluated)
        summary = summarise(errors)
        predictions_bytes = encode_predictions(evaluated)
        key = predictions_key(month, version, **inputs)
        record = EvaluationRecord(
            month=str(month),
            library_version=version,
            version_label=params.version_label,
            api_generation=predictor.generation,
            image_digest=params.image_digest,
            eval_runner_version=__version__,
            engines=installed_engines(),
            dataset_hash=loaded.content_hash,
            manifest_sha256=sha256_bytes(loaded.manifest.to_json_bytes()),
            review_csv_sha256=review.review_hash,
            n_dataset_samples=dataset.height,
            n_approved=approved.height,
            n_approved_without_truth=approved.height - with_truth.height,
            n_evaluated=evaluated.height,
            predictions=PredictionsFile(key=key, sha256=sha256_bytes(predictions_bytes), rows=evaluated.height),
            metrics=summary,
        )
    with phases("publish"):
        store.publish(
            {key: predictions_bytes}, marker_key=metrics_key(month, version, **inputs), marker=record.to_json_bytes()
        )
    # No search for an earlier run here: a run is only ever logged after its record is published, and this
    # call found none published. (Two concurrent evaluations of one version and month can each log a run, as
    # they could when this searched too: a search before creating never closed that window.)
    run_id = _log_run(tracker, record, predictions_bytes, errors, phases)
    return EvaluateOutput(record, reused=False, run_id=run_id, phases=phases)


def run_tags(record: EvaluationRecord) -> dict[str, str]:
    """Tags that identify the MLflow run of one evaluation (and find it again on a retry)."""
    return {
        "kind": "evaluation",
        "month": record.month,
        "library_version": record.library_version,
        "dataset_hash": record.dataset_hash,
        "review_sha256": record.review_csv_sha256,
    }


def run_params(record: EvaluationRecord) -> dict[str, object]:
    """The MLflow params of one evaluation's run."""
    return {
        "month": record.month,
        "version_label": record.version_label,
        "library_version": record.library_version,
        "api_generation": record.api_generation,
        "image_digest": record.image_digest,
        "dataset_hash": record.dataset_hash,
        "manifest_sha256": record.manifest_sha256,
        "review_csv_sha256": record.review_csv_sha256,
        "eval_runner_version": record.eval_runner_version,
        "n_evaluated": record.n_evaluated,
    }


def _log_run(
    tracker: Tracker, record: EvaluationRecord, predictions_bytes: bytes, errors: pl.DataFrame, phases: Phases
) -> str:
    """One MLflow run from a published record: its tags on creation, one batch, one artifact upload."""
    with phases("plot"):
        # Rendered before the run opens: a plot that fails leaves no half-logged run behind.
        title = f"battery-lib {record.library_version} on {record.month} ({record.n_evaluated} samples)"
        plot = error_distribution_png(errors, title=title)
    artifacts = {PREDICTIONS_NAME: predictions_bytes, METRICS_NAME: record.to_json_bytes(), "plots/errors.png": plot}
    with (
        phases("track"),
        tracker.run(EXPERIMENT, f"{record.month} {record.library_version}", tags=run_tags(record)) as tracked,
    ):
        tracked.log_batch(params=run_params(record), metrics=flatten_for_tracking(record.metrics))
        tracked.log_artifacts(artifacts)
        return tracked.run_id
