"""The month x version matrix of published evaluations, so a backfill's state shows at a glance (pure)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from eval_runner.evaluation.records import EvaluationRecord

_MISSING = "-"


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    # Numeric parts compare as numbers so 0.10.0 sorts after 0.9.0.
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in version.split("."))


def evaluations_frame(records: Sequence[EvaluationRecord]) -> pl.DataFrame:
    """One row per published evaluation with its inputs and headline metrics."""
    rows = [
        {
            "month": r.month,
            "version": r.library_version,
            "dataset_hash": r.dataset_hash[:12],
            "review_sha256": r.review_csv_sha256[:12],
            "n_evaluated": r.n_evaluated,
            "runtime_abs_error_median": r.metrics["overall"].get("runtime_abs_error_median"),
            "capacity_abs_error_median": r.metrics["overall"].get("capacity_abs_error_median"),
            "runtime_q10_q90_coverage": r.metrics["overall"].get("runtime_q10_q90_coverage"),
        }
        for r in records
    ]
    schema = {"month": pl.String(), "version": pl.String(), "dataset_hash": pl.String(),
              "review_sha256": pl.String(), "n_evaluated": pl.Int64(), "runtime_abs_error_median": pl.Float64(),
              "capacity_abs_error_median": pl.Float64(), "runtime_q10_q90_coverage": pl.Float64()}  # fmt: skip
    return pl.DataFrame(rows, schema=schema).sort("month", "version")


def matrix(records: Sequence[EvaluationRecord]) -> pl.DataFrame:
    """Months as rows, versions as columns; a cell reads ``<median abs runtime error> d @<dataset hash>``.

    A ``!`` after the hash marks a month whose evaluations were made on different dataset or review
    hashes (re-evaluate before comparing); ``-`` marks a combination not evaluated yet.
    """
    frame = evaluations_frame(records)
    if frame.height == 0:
        return pl.DataFrame({"month": []}, schema={"month": pl.String()})
    versions = sorted(frame.get_column("version").unique().to_list(), key=_version_key)
    mixed = frame.group_by("month").agg((pl.struct("dataset_hash", "review_sha256").n_unique() > 1).alias("mixed"))
    cells = frame.join(mixed, on="month").with_columns(
        (
            pl.col("runtime_abs_error_median").round(2).cast(pl.String()).fill_null("n/a")
            + pl.lit(" d @")
            + pl.col("dataset_hash").str.slice(0, 8)
            + pl.when(pl.col("mixed")).then(pl.lit("!")).otherwise(pl.lit(""))
        ).alias("cell")
    )
    wide = cells.pivot(on="version", index="month", values="cell").sort("month")
    for version in versions:
        if version not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.String()).alias(version))
    return wide.select("month", *versions).fill_null(_MISSING)
