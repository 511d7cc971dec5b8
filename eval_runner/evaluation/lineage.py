"""Which dataset and review a month's evaluations must be of: the current ones, or the review hash a step was told."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eval_runner.dataset.reader import load_manifest
from eval_runner.errors import DataError
from eval_runner.keys import Month, review_json_key
from eval_runner.review.reader import current_revision, load_review_meta
from eval_runner.storage import ObjectStore


@dataclass(frozen=True)
class MonthLineage:
    """The inputs a month is judged on: its dataset and the revision and hash of its current review."""

    month: Month
    dataset_hash: str
    review_hash: str
    revision: int


def check_review_hash(month: Month, *, expected: str | None, current: str, revision: int) -> None:
    """Refuse a month whose current review is not the one the caller was told to use (DataError, exit 3)."""
    if expected is not None and expected != current:
        raise DataError(
            f"review of {month}: this step must use review {expected}, but the month's current review is "
            f"{current} (revision {revision}); the review changed after it was validated: validate it again "
            "and pass its review hash, or pass none to use the current review"
        )


def month_lineage(store: ObjectStore, month: Month, *, expected_review_hash: str | None = None) -> MonthLineage:
    """The month's current dataset and review, checked to belong together and to be the expected review."""
    manifest = load_manifest(store, month)
    revision = current_revision(store, month)
    meta = load_review_meta(store, month, revision)
    if meta.dataset_hash != manifest.content_hash:
        raise DataError(
            f"review of {month}: the current review ({review_json_key(month, revision)!r}) was written for dataset "
            f"{meta.dataset_hash}, but the month's dataset is {manifest.content_hash}; review the dataset again"
        )
    check_review_hash(month, expected=expected_review_hash, current=meta.review_csv_sha256, revision=revision)
    return MonthLineage(month, manifest.content_hash, meta.review_csv_sha256, revision)


def months_lineage(
    store: ObjectStore, months: Sequence[Month], review_hashes: Mapping[Month, str]
) -> dict[Month, MonthLineage]:
    """:func:`month_lineage` of every month, each checked against its entry of ``review_hashes`` if it has one."""
    return {month: month_lineage(store, month, expected_review_hash=review_hashes.get(month)) for month in months}
