"""The published evaluation of one (month, version): predictions.parquet, then metrics.json as its marker."""

from __future__ import annotations

from typing import ClassVar, Literal

import polars as pl
from pydantic import Field

from eval_runner.engines import EngineVersions
from eval_runner.errors import DataError
from eval_runner.evaluation.metrics import EVALUATED_SCHEMA, Summary
from eval_runner.keys import Month, evaluation_prefix
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


def predictions_key(month: Month, version: str) -> str:
    """Key of one evaluation's predictions."""
    return f"{evaluation_prefix(month, version)}{PREDICTIONS_NAME}"


def metrics_key(month: Month, version: str) -> str:
    """Key of one evaluation's record (the marker, written last)."""
    return f"{evaluation_prefix(month, version)}{METRICS_NAME}"


def encode_predictions(frame: pl.DataFrame) -> bytes:
    """Parquet bytes of an evaluated frame (EVALUATED_SCHEMA)."""
    return frame_to_parquet(frame.select(list(EVALUATED_SCHEMA)))


def find_record(store: ObjectStore, month: Month, version: str) -> EvaluationRecord | None:
    """The published record of (month, version), or None when that evaluation is not published."""
    key = metrics_key(month, version)
    if not store.exists(key):
        return None
    return EvaluationRecord.from_json_bytes(store.get_bytes(key), name=key)


def load_record(store: ObjectStore, month: Month, version: str) -> EvaluationRecord:
    """The published record of (month, version); a missing one is a DataError saying what to run."""
    record = find_record(store, month, version)
    if record is None:
        raise DataError(
            f"no evaluation of version {version} on {month} ({metrics_key(month, version)!r} does not exist); "
            f"run `eval-runner evaluate --month {month} --version-label {version}` first"
        )
    return record


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
