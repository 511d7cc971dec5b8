"""Load published evaluations of several versions over several months, checked to be comparable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from eval_runner.evaluation.comparison import check_same_inputs
from eval_runner.evaluation.lineage import MonthLineage
from eval_runner.evaluation.metrics import with_errors
from eval_runner.evaluation.records import EvaluationRecord, load_predictions, load_record
from eval_runner.keys import Month
from eval_runner.storage import ObjectStore


@dataclass(frozen=True)
class VersionEvaluations:
    """One version's records (one per month) and its per-sample errors over all those months."""

    version: str
    records: tuple[EvaluationRecord, ...]
    errors: pl.DataFrame


def load_evaluations(
    store: ObjectStore, lineage: Mapping[Month, MonthLineage], versions: Sequence[str]
) -> dict[str, VersionEvaluations]:
    """Records and errors per version of evaluations of exactly each month's ``lineage``, in month order.

    The caller reads the lineage once (:func:`~eval_runner.evaluation.lineage.months_lineage`) and uses
    the same one for everything it derives, so a review saved meanwhile cannot split a decision between
    two reviews. Evaluations of an older review are stale and never read. A missing evaluation or
    mismatched inputs is a DataError.
    """
    months = list(lineage)
    records = {
        version: [
            load_record(
                store,
                month,
                version,
                dataset_hash=lineage[month].dataset_hash,
                review_hash=lineage[month].review_hash,
            )
            for month in months
        ]
        for version in versions
    }
    check_same_inputs([record for per_version in records.values() for record in per_version])
    return {
        version: VersionEvaluations(
            version=version,
            records=tuple(per_version),
            errors=with_errors(pl.concat([load_predictions(store, record) for record in per_version])),
        )
        for version, per_version in records.items()
    }


def normalise_version(text: str) -> str:
    """``v0.9.0`` -> ``0.9.0``: evaluations are stored under resolved versions, people type either."""
    stripped = text.strip()
    return stripped[1:] if stripped[:1] in {"v", "V"} and stripped[1:2].isdigit() else stripped
