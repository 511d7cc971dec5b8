"""The month x version matrix of published evaluations: which are current, which are stale (pure).

An evaluation is *current* when it was made on its month's current dataset and current review, and
*stale* otherwise (made on an older review revision or dataset build): it stays published, but the
gate and the comparison never read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from eval_runner.evaluation.records import EvaluationRecord

_MISSING = "-"
CURRENT = "current"
STALE = "stale"


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    # Numeric parts compare as numbers so 0.10.0 sorts after 0.9.0.
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in version.split("."))


def evaluations_frame(
    records: Sequence[EvaluationRecord], current: Mapping[str, tuple[str, str] | None]
) -> pl.DataFrame:
    """One row per published evaluation with its inputs, whether they are current, and headline metrics.

    ``current`` maps a month to its current (dataset hash, review hash), or None when it has none (no
    valid review now): every evaluation of such a month is stale.
    """
    rows = [
        {
            "month": r.month,
            "version": r.library_version,
            "status": CURRENT if current.get(r.month) == (r.dataset_hash, r.review_csv_sha256) else STALE,
            "dataset_hash": r.dataset_hash[:12],
            "review_sha256": r.review_csv_sha256[:12],
            "n_evaluated": r.n_evaluated,
            "runtime_abs_error_median": r.metrics["overall"].get("runtime_abs_error_median"),
            "capacity_abs_error_median": r.metrics["overall"].get("capacity_abs_error_median"),
            "runtime_q10_q90_coverage": r.metrics["overall"].get("runtime_q10_q90_coverage"),
        }
        for r in records
    ]
    schema = {"month": pl.String(), "version": pl.String(), "status": pl.String(), "dataset_hash": pl.String(),
              "review_sha256": pl.String(), "n_evaluated": pl.Int64(), "runtime_abs_error_median": pl.Float64(),
              "capacity_abs_error_median": pl.Float64(), "runtime_q10_q90_coverage": pl.Float64()}  # fmt: skip
    return pl.DataFrame(rows, schema=schema).sort("month", "version", "status", "review_sha256")


def _cell(rows: pl.DataFrame) -> str:
    """One (month, version): the current evaluation and how many stale ones, or the stale ones alone."""
    current = rows.filter(pl.col("status") == CURRENT)
    stale = rows.height - current.height
    shown = (current if current.height else rows).row(0, named=True)
    error = shown["runtime_abs_error_median"]
    text = f"{'n/a' if error is None else round(error, 2)} d @{shown['dataset_hash'][:8]}/{shown['review_sha256'][:8]}"
    if not current.height:
        return f"stale: {text}" + (f" +{stale - 1} stale" if stale > 1 else "")
    return text + (f" +{stale} stale" if stale else "")


def matrix(records: Sequence[EvaluationRecord], current: Mapping[str, tuple[str, str] | None]) -> pl.DataFrame:
    """Months as rows, versions as columns; a cell reads ``<median abs runtime error> d @<dataset>/<review>``.

    The cell shows the current evaluation, with ``+N stale`` when older ones exist; ``stale: ...`` marks a
    combination evaluated only on an older review or dataset (re-evaluate it before comparing); ``-``
    marks one not evaluated yet.
    """
    frame = evaluations_frame(records, current)
    if frame.height == 0:
        return pl.DataFrame({"month": []}, schema={"month": pl.String()})
    versions = sorted(frame.get_column("version").unique().to_list(), key=_version_key)
    months = sorted(frame.get_column("month").unique().to_list())
    cells: dict[str, list[str]] = {version: [] for version in versions}
    for month in months:
        for version in versions:
            rows = frame.filter((pl.col("month") == month) & (pl.col("version") == version))
            cells[version].append(_cell(rows) if rows.height else _MISSING)
    return pl.DataFrame(
        {"month": months, **cells}, schema={"month": pl.String(), **dict.fromkeys(versions, pl.String())}
    )
