"""One published evaluation of (month, version, dataset, review): predictions.parquet, then metrics.json (marker)."""

from __future__ import annotations

from typing import ClassVar, Literal

import polars as pl
from pydantic import Field

from eval_runner.engines import EngineVersions
from eval_runner.errors import DataError
from eval_runner.evaluation.metrics import EVALUATED_SCHEMA, Summary
from eval_runner.keys import Month, evaluation_prefix, legacy_evaluation_prefix
from eval_runner.parquet import frame_to_parquet, parquet_to_frame
from eval_runner.storage import ObjectStore
from eval_runner.stored import RecordPart, StoredRecord

PREDICTIONS_NAME = "predictions.parquet"
METRICS_NAME = "metrics.json"
EVALUATIONS_ROOT = "capacity/evaluations/"


class PredictionsFile(RecordPart):
    """The predictions object the record vouches for."""

    key: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    rows: int = Field(ge=0)


class EvaluationRecord(StoredRecord):
    """metrics.json: what was evaluated on what, and the metrics.

    Nothing in it changes between reruns on the same inputs (no wall-clock time), so a retried
    evaluation writes identical bytes and the immutable store makes the write a no-op.
    """

    record_type: ClassVar[str] = "evaluation record"

    kind: Literal["capacity-evaluation"] = "capacity-evaluation"
    month: str
    library_version: str
    version_label: str
    api_generation: int
    image_digest: str
    eval_runner_version: str
    engines: EngineVersions
    dataset_hash: str
    manifest_sha256: str
    review_csv_sha256: str
    n_dataset_samples: int
    n_approved: int
    n_approved_without_truth: int
    n_evaluated: int
    predictions: PredictionsFile
    metrics: Summary


def predictions_key(month: Month, version: str, *, dataset_hash: str, review_hash: str) -> str:
    """Key of one evaluation's predictions."""
    return f"{evaluation_prefix(month, version, dataset_hash=dataset_hash, review_hash=review_hash)}{PREDICTIONS_NAME}"


def metrics_key(month: Month, version: str, *, dataset_hash: str, review_hash: str) -> str:
    """Key of one evaluation's record (the marker, written last)."""
    return f"{evaluation_prefix(month, version, dataset_hash=dataset_hash, review_hash=review_hash)}{METRICS_NAME}"


def legacy_metrics_key(month: Month, version: str) -> str:
    """Where the record of a (month, version) evaluation was kept before keys named its inputs."""
    return f"{legacy_evaluation_prefix(month, version)}{METRICS_NAME}"


def encode_predictions(frame: pl.DataFrame) -> bytes:
    """Parquet bytes of an evaluated frame (EVALUATED_SCHEMA)."""
    return frame_to_parquet(frame.select(list(EVALUATED_SCHEMA)))


def find_record(
    store: ObjectStore, month: Month, version: str, *, dataset_hash: str, review_hash: str
) -> EvaluationRecord | None:
    """The published evaluation of (month, version) on exactly this dataset and review, or None.

    An evaluation published in the layout before keys named their inputs counts when its record
    names the same hashes, so it is reused rather than computed and logged a second time.
    """
    for key in (metrics_key(month, version, dataset_hash=dataset_hash, review_hash=review_hash),
                legacy_metrics_key(month, version)):  # fmt: skip
        if store.exists(key):
            record = EvaluationRecord.from_json_bytes(store.get_bytes(key), name=key)
            if (record.dataset_hash, record.review_csv_sha256) == (dataset_hash, review_hash):
                return record
    return None


def records_of(store: ObjectStore, month: Month, version: str) -> list[EvaluationRecord]:
    """Every published evaluation of (month, version), on any dataset or review, in key order."""
    prefix = legacy_evaluation_prefix(month, version)
    keys = [key for key in store.list(prefix) if key.endswith(f"/{METRICS_NAME}")]
    return [EvaluationRecord.from_json_bytes(store.get_bytes(key), name=key) for key in keys]


def load_record(
    store: ObjectStore, month: Month, version: str, *, dataset_hash: str, review_hash: str
) -> EvaluationRecord:
    """The published evaluation of (month, version) on this dataset and review; else a DataError saying why.

    When only evaluations of other inputs exist (an older review, an older dataset build), the message
    names them: they are stale, and the version must be evaluated again on the current review.
    """
    record = find_record(store, month, version, dataset_hash=dataset_hash, review_hash=review_hash)
    if record is not None:
        return record
    key = metrics_key(month, version, dataset_hash=dataset_hash, review_hash=review_hash)
    stale = records_of(store, month, version)
    detail = ""
    if stale:
        made_on = ", ".join(sorted({f"review {r.review_csv_sha256} / dataset {r.dataset_hash}" for r in stale}))
        detail = f"; only stale evaluations exist, made on {made_on}"
    raise DataError(
        f"no evaluation of version {version} on {month} with review {review_hash} and dataset {dataset_hash} "
        f"({key!r} does not exist){detail}; run `eval-runner evaluate --month {month} --version-label {version}` "
        "on the month's current review first"
    )


def load_predictions(store: ObjectStore, record: EvaluationRecord) -> pl.DataFrame:
    """The predictions a record vouches for, verified against its hash, row count and schema."""
    entry = record.predictions
    return decode_predictions(record, store.get_bytes(entry.key, expected_sha256=entry.sha256))


def decode_predictions(record: EvaluationRecord, data: bytes) -> pl.DataFrame:
    """Decode the predictions object of ``record`` (bytes already verified), checking row count and schema."""
    entry = record.predictions
    frame = parquet_to_frame(data, name=entry.key)
    if frame.height != entry.rows or frame.schema != pl.Schema(EVALUATED_SCHEMA):
        raise DataError(f"{entry.key}: {frame.height} rows / schema do not match its metrics.json")
    return frame


def list_records(store: ObjectStore) -> list[EvaluationRecord]:
    """Every published evaluation record, in key order."""
    keys = [key for key in store.list(EVALUATIONS_ROOT) if key.endswith(f"/{METRICS_NAME}")]
    return [EvaluationRecord.from_json_bytes(store.get_bytes(key), name=key) for key in keys]
