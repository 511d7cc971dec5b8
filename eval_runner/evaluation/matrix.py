"""The month x version matrix of published evaluations: which are current, stale or incomparable (pure).

An evaluation is *current* when it was made on its month's current dataset and current review, and
*stale* otherwise (made on an older review revision or dataset build): it stays published, but the
gate and the comparison never read it. It is *incomparable* when its dataset is a build by another
extractor schema version than the running one: its metrics measure other inputs, so no number of it
may be set beside a current one, and re-evaluating needs the month built and reviewed again first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from eval_runner.contracts import SCHEMA_VERSION
from eval_runner.evaluation.records import EvaluationRecord

_MISSING = "-"
CURRENT = "current"
STALE = "stale"
INCOMPARABLE = "incomparable"


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    # Numeric parts compare as numbers so 0.10.0 sorts after 0.9.0.
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in version.split("."))


def _status(
    record: EvaluationRecord, current: tuple[str, str] | None, dataset_schema: int | None, schema_version: int
) -> str:
    if dataset_schema is not None and dataset_schema != schema_version:
        return INCOMPARABLE
    return CURRENT if current == (record.dataset_hash, record.review_csv_sha256) else STALE


def evaluations_frame(
    records: Sequence[EvaluationRecord],
    current: Mapping[str, tuple[str, str] | None],
    dataset_schemas: Mapping[str, int] | None = None,
    *,
    schema_version: int = SCHEMA_VERSION,
) -> pl.DataFrame:
    """One row per published evaluation with its inputs, whether they are current, and headline metrics.

    ``current`` maps a month to its current (dataset hash, review hash), or None when it has none (no
    valid review now): every evaluation of such a month is stale. ``dataset_schemas`` maps the content
    hash of each published dataset build to its extractor schema version: an evaluation of a build by
    another version than ``schema_version`` is incomparable. A dataset hash it lacks has no version known
    (the schema_version column is null), and its evaluations are at most stale.
    """
    schemas = dataset_schemas or {}
    rows = [
        {
            "month": r.month,
            "version": r.library_version,
            "status": _status(r, current.get(r.month), schemas.get(r.dataset_hash), schema_version),
            "schema_version": schemas.get(r.dataset_hash),
            "dataset_hash": r.dataset_hash[:12],
            "review_sha256": r.review_csv_sha256[:12],
            "n_evaluated": r.n_evaluated,
            "runtime_abs_error_median": r.metrics["overall"].get("runtime_abs_error_median"),
            "capacity_abs_error_median": r.metrics["overall"].get("capacity_abs_error_median"),
            "runtime_q10_q90_coverage": r.metrics["overall"].get("runtime_q10_q90_coverage"),
        }
        for r in records
    ]
    schema = {"month": pl.String(), "version": pl.String(), "status": pl.String(), "schema_version": pl.Int64(),
              "dataset_hash": pl.String(),
              "review_sha256": pl.String(), "n_evaluated": pl.Int64(), "runtime_abs_error_median": pl.Float64(),
              "capacity_abs_error_median": pl.Float64(), "runtime_q10_q90_coverage": pl.Float64()}  # fmt: skip
    return pl.DataFrame(rows, schema=schema).sort("month", "version", "status", "review_sha256")


def _cell(rows: pl.DataFrame) -> str:
    """One (month, version): the current evaluation, else a stale one, else an incomparable one; then the rest."""
    by_status = {status: rows.filter(pl.col("status") == status) for status in (CURRENT, STALE, INCOMPARABLE)}
    status, shown_rows = next((status, found) for status, found in by_status.items() if found.height)
    shown = shown_rows.row(0, named=True)
    error = shown["runtime_abs_error_median"]
    text = f"{'n/a' if error is None else round(error, 2)} d @{shown['dataset_hash'][:8]}/{shown['review_sha256'][:8]}"
    if status == STALE:
        text = f"stale: {text}"
    elif status == INCOMPARABLE:
        text = f"incomparable (schema v{shown['schema_version']}): {text}"
    for other, found in by_status.items():
        count = found.height - (1 if other == status else 0)
        if count:
            text += f" +{count} {other}"
    return text


def matrix(
    records: Sequence[EvaluationRecord],
    current: Mapping[str, tuple[str, str] | None],
    dataset_schemas: Mapping[str, int] | None = None,
    *,
    schema_version: int = SCHEMA_VERSION,
) -> pl.DataFrame:
    """Months as rows, versions as columns; a cell reads ``<median abs runtime error> d @<dataset>/<review>``.

    The cell shows the current evaluation, with ``+N stale`` and ``+N incomparable`` when others exist;
    ``stale: ...`` marks a combination evaluated only on an older review or dataset (re-evaluate it before
    comparing); ``incomparable (schema vN): ...`` one evaluated only on a dataset built by another extractor
    schema version (build and review the month again, then re-evaluate); ``-`` marks one not evaluated yet.
    """
    frame = evaluations_frame(records, current, dataset_schemas, schema_version=schema_version)
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
