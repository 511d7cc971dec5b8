"""Per-sample errors and their summary metrics, overall and per segment (pure polars, no I/O)."""

from __future__ import annotations

from typing import Final

import polars as pl
from typing_extensions import TypedDict  # pydantic validates TypedDicts only from typing_extensions on 3.11

from eval_runner.contracts import DATASET_SCHEMA, PREDICTION_SCHEMA, RUNTIME_SOURCES
from eval_runner.errors import DataError

TARGETS: Final = ("capacity", "runtime")
KINDS: Final = ("abs", "rel")
STATISTICS: Final = ("mean", "median", "p90", "p95")
SEGMENT_COLUMNS: Final = ("hardware_revision", "firmware_version")
# How a sample's runtime truth was obtained, as the summaries break it down: observed, estimated, or
# censored (an estimate at the model's horizon, a lower bound: its error says little).
RUNTIME_TRUTH: Final = "runtime_truth"
RUNTIME_TRUTHS: Final = (*RUNTIME_SOURCES, "censored")
ERROR_COLUMNS: Final = tuple(f"{target}_{kind}_error" for target in TARGETS for kind in KINDS)

# What an evaluation publishes per sample (predictions.parquet): the truth and segments beside the
# prediction, so compare and gate need nothing but this file.
EVALUATED_SCHEMA: Final[dict[str, pl.DataType]] = {
    "sample_id": pl.String(),
    "month": pl.String(),
    "device_id": pl.String(),
    "hardware_revision": pl.String(),
    "firmware_version": pl.String(),
    "true_capacity_mah": pl.Float64(),
    "true_runtime_days": pl.Float64(),
    "true_runtime_source": pl.String(),
    "true_runtime_censored": pl.Boolean(),
    **{name: dtype for name, dtype in PREDICTION_SCHEMA.items() if name != "sample_id"},
}

_TRUTH = {"capacity": "true_capacity_mah", "runtime": "true_runtime_days"}
_TRUTH_BASIS = ("true_runtime_source", "true_runtime_censored")
_POINT = {"capacity": "capacity_mah_p50", "runtime": "runtime_days_p50"}
_LOW = {"capacity": "capacity_mah_p10", "runtime": "runtime_days_p10"}
_HIGH = {"capacity": "capacity_mah_p90", "runtime": "runtime_days_p90"}

Metrics = dict[str, float | int | None]


class Summary(TypedDict):
    """Metrics of one evaluation: overall, and per segment column and value."""

    overall: Metrics
    segments: dict[str, dict[str, Metrics]]


def evaluated_frame(dataset: pl.DataFrame, predictions: pl.DataFrame) -> pl.DataFrame:
    """Join predictions to the dataset rows they were made for, in EVALUATED_SCHEMA.

    Every prediction must belong to a dataset sample with a truth; anything else means the wrong
    inputs were paired and is a DataError.
    """
    truth = dataset.select(
        pl.col(name).cast(DATASET_SCHEMA[name])
        for name in ("sample_id", "month", "device_id", *SEGMENT_COLUMNS, *_TRUTH.values(), *_TRUTH_BASIS)
    )
    joined = predictions.join(truth, on="sample_id", how="left", maintain_order="left")
    orphans = joined.filter(pl.col("month").is_null()).get_column("sample_id")
    if orphans.len():
        raise DataError(f"{orphans.len()} predictions have no dataset sample, e.g. {orphans.head(3).to_list()}")
    no_truth = joined.filter(pl.any_horizontal(pl.col(*_TRUTH.values(), *_TRUTH_BASIS).is_null()))
    if no_truth.height:
        raise DataError(
            f"{no_truth.height} evaluated samples have no capacity-test truth, "
            f"e.g. {no_truth.get_column('sample_id').head(3).to_list()}"
        )
    return joined.select(pl.col(name).cast(dtype) for name, dtype in EVALUATED_SCHEMA.items())


def with_errors(evaluated: pl.DataFrame) -> pl.DataFrame:
    """Add absolute and relative errors of the point predictions and whether Q10-Q90 covers the truth.

    A relative error is null when the truth is 0 (a dead pack), where it is undefined; a missing
    prediction gives null errors, which the metrics skip and count.
    """
    columns: list[pl.Expr] = []
    for target in TARGETS:
        truth, point = pl.col(_TRUTH[target]), pl.col(_POINT[target])
        absolute = (point - truth).abs()
        columns.append(absolute.alias(f"{target}_abs_error"))
        columns.append(pl.when(truth > 0).then(absolute / truth).otherwise(None).alias(f"{target}_rel_error"))
        low, high = pl.col(_LOW[target]), pl.col(_HIGH[target])
        columns.append(
            pl.when(low.is_not_null() & high.is_not_null())
            .then((low <= truth) & (truth <= high))
            .otherwise(None)
            .alias(f"{target}_covered")
        )
    return evaluated.with_columns(columns)


def _statistic_exprs() -> list[pl.Expr]:
    exprs: list[pl.Expr] = [
        pl.len().alias("n_samples"),
        pl.col("runtime_days_p50").is_not_null().sum().alias("n_predicted"),
    ]
    for name in ERROR_COLUMNS:
        column = pl.col(name)
        exprs += [
            column.mean().alias(f"{name}_mean"),
            column.median().alias(f"{name}_median"),
            column.quantile(0.90, interpolation="linear").alias(f"{name}_p90"),
            column.quantile(0.95, interpolation="linear").alias(f"{name}_p95"),
        ]
    for target in TARGETS:
        exprs.append(pl.col(f"{target}_covered").mean().alias(f"{target}_q10_q90_coverage"))
    return exprs


def _clean(row: dict[str, object]) -> Metrics:
    out: Metrics = {}
    for key, value in row.items():
        if value is None or isinstance(value, int | float):
            out[key] = value
        else:
            raise TypeError(f"metric {key} is {type(value).__name__}")  # unreachable with the exprs above
    return out


def runtime_truth() -> pl.Expr:
    """How each sample's runtime truth was obtained: its source, or "censored" for an estimate at the horizon."""
    return (
        pl.when(pl.col("true_runtime_censored"))
        .then(pl.lit("censored"))
        .otherwise(pl.col("true_runtime_source"))
        .alias(RUNTIME_TRUTH)
    )


def summarise(errors: pl.DataFrame) -> Summary:
    """Metrics of a frame from ``with_errors``: ``{"overall": {...}, "segments": {column: {value: {...}}}}``.

    Each block has n_samples, n_predicted, mean/median/p90/p95 of every error column and the Q10-Q90
    coverage of capacity and runtime (null when the version gives no intervals). Quantiles use linear
    interpolation, as numpy's default. Besides the segment columns, ``runtime_truth`` reports the samples
    whose runtime truth was observed, estimated and censored apart: an estimated truth carries the
    forward model's error, and a censored one is only a lower bound.
    """
    overall = _clean(errors.select(_statistic_exprs()).row(0, named=True)) if errors.height else {}
    segments: dict[str, dict[str, Metrics]] = {}
    with_truth = errors.with_columns(runtime_truth())
    for column in (*SEGMENT_COLUMNS, RUNTIME_TRUTH):
        grouped = with_truth.group_by(column).agg(_statistic_exprs()).sort(column, nulls_last=True)
        segments[column] = {str(row.pop(column)): _clean(row) for row in grouped.iter_rows(named=True)}
    return {"overall": overall, "segments": segments}


def flatten_for_tracking(summary: Summary) -> dict[str, float]:
    """Flat metric names for MLflow: ``runtime_abs_error_median``, ``hardware_revision.C.runtime_...``.

    Segment values are sanitised to the characters MLflow allows in a key; null metrics are left out.
    """
    flat: dict[str, float] = {}
    for key, value in summary["overall"].items():
        if value is not None:
            flat[key] = float(value)
    for column, values in summary["segments"].items():
        for segment, metrics in values.items():
            safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in segment)
            for key, value in metrics.items():
                if value is not None:
                    flat[f"{column}.{safe}.{key}"] = float(value)
    return flat
