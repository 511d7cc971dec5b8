"""Compare versions on the same reviewed months: input checks, leaderboard, per-segment table (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from eval_runner.errors import DataError
from eval_runner.evaluation.metrics import SEGMENT_COLUMNS
from eval_runner.evaluation.records import EvaluationRecord

LEADERBOARD_METRIC = "runtime_abs_error_median"


def check_same_inputs(records: Sequence[EvaluationRecord]) -> None:
    """Refuse evaluations of one month made on different dataset, manifest or review hashes.

    Versions are only comparable on exactly the same samples and truths; an evaluation made before a
    rebuild or a revised review would silently compare different things.
    """
    by_month: dict[str, dict[tuple[str, str, str], list[str]]] = {}
    for record in records:
        identity = (record.dataset_hash, record.manifest_sha256, record.review_csv_sha256)
        by_month.setdefault(record.month, {}).setdefault(identity, []).append(record.library_version)
    for month, identities in sorted(by_month.items()):
        if len(identities) > 1:
            detail = "; ".join(
                f"{', '.join(versions)} on dataset {d[:12]} / manifest {m[:12]} / review {r[:12]}"
                for (d, m, r), versions in identities.items()
            )
            raise DataError(
                f"evaluations of {month} were made on different inputs ({detail}); "
                "re-evaluate the versions on the current dataset and review before comparing"
            )


def _headline(errors: pl.DataFrame) -> list[pl.Expr]:
    exprs: list[pl.Expr] = [pl.len().alias("n_samples")]
    for name in ("runtime_abs_error", "runtime_rel_error", "capacity_abs_error", "capacity_rel_error"):
        exprs.append(pl.col(name).median().alias(f"{name}_median"))
        exprs.append(pl.col(name).quantile(0.90, interpolation="linear").alias(f"{name}_p90"))
    exprs.append(pl.col("runtime_covered").mean().alias("runtime_q10_q90_coverage"))
    exprs.append(pl.col("capacity_covered").mean().alias("capacity_q10_q90_coverage"))
    return exprs


def leaderboard(errors_by_version: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per version, ranked by median absolute runtime error (best first)."""
    rows = [
        errors.select(_headline(errors)).with_columns(pl.lit(version).alias("version"))
        for version, errors in errors_by_version.items()
    ]
    board = pl.concat(rows, how="vertical_relaxed").sort(LEADERBOARD_METRIC, nulls_last=True)
    return board.select(pl.int_range(1, pl.len() + 1).alias("rank"), "version", pl.exclude("version"))


def segment_table(errors_by_version: Mapping[str, pl.DataFrame], *, reference: str) -> pl.DataFrame:
    """Per segment and version: sample count, median errors and the relative change against ``reference``."""
    parts = []
    for version, errors in errors_by_version.items():
        for column in SEGMENT_COLUMNS:
            parts.append(
                errors.group_by(column)
                .agg(
                    pl.len().alias("n_samples"),
                    pl.col("runtime_abs_error").median().alias("runtime_abs_error_median"),
                    pl.col("capacity_abs_error").median().alias("capacity_abs_error_median"),
                )
                .select(
                    (pl.lit(f"{column}=") + pl.col(column).cast(pl.String())).alias("segment"),
                    pl.lit(version).alias("version"),
                    "n_samples",
                    "runtime_abs_error_median",
                    "capacity_abs_error_median",
                )
            )
    table = pl.concat(parts, how="vertical_relaxed")
    base = table.filter(pl.col("version") == reference).select(
        "segment", pl.col("runtime_abs_error_median").alias("_reference")
    )
    return (
        table.join(base, on="segment", how="left")
        .with_columns((pl.col("runtime_abs_error_median") / pl.col("_reference") - 1.0).alias("runtime_change"))
        .drop("_reference")
        .sort("segment", "version")
    )
