"""Read and save a month's review (review.csv + review.json), validated against the dataset it names."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from eval_runner.dataset.reader import load_dataset
from eval_runner.errors import ConfigError, DataError, TransientError
from eval_runner.keys import DATASETS_PREFIX, Month, month_of_manifest_key, review_csv_key, review_json_key
from eval_runner.review.manifest import Review, ReviewMeta, build_meta, render_review_csv, validate_review
from eval_runner.storage import ObjectStore


@dataclass(frozen=True)
class LoadedReview:
    """What evaluation needs from a review: the approved samples and how much was left unreviewed."""

    month: str
    dataset_hash: str
    approved: frozenset[str]
    rejected: frozenset[str]
    unmentioned: int  # samples of the dataset the review does not mention: treated as not approved
    reviewer: str
    reviewed_at: datetime
    review_csv_sha256: str


def _sample_ids(store: ObjectStore, month: Month, dataset_hash: str) -> frozenset[str]:
    loaded = load_dataset(store, month, with_series=False)
    if loaded.content_hash != dataset_hash:
        raise DataError(
            f"dataset {month} has content hash {loaded.content_hash}, "
            f"but a review for dataset hash {dataset_hash} was asked for"
        )
    return frozenset(loaded.dataset["sample_id"].to_list())


def load_review(
    store: ObjectStore, month: Month, dataset_hash: str, *, sample_ids: Collection[str] | None = None
) -> LoadedReview:
    """Load the month's review and validate it against the dataset with ``dataset_hash``.

    ``sample_ids`` (the dataset's) saves re-reading dataset.parquet when the caller has it loaded.
    A missing review, a review for another dataset hash, or any bad line raises DataError.
    """
    json_key, csv_key = review_json_key(month), review_csv_key(month)
    if not store.exists(json_key):
        raise DataError(f"review of {month}: {json_key!r} does not exist; the month has not been reviewed")
    ids = frozenset(sample_ids) if sample_ids is not None else _sample_ids(store, month, dataset_hash)
    review = validate_review(
        store.get_bytes(csv_key),
        store.get_bytes(json_key),
        month=str(month),
        dataset_hash=dataset_hash,
        sample_ids=ids,
        csv_name=csv_key,
        meta_name=json_key,
    )
    if review.meta is None:  # cannot happen: validate_review parses the meta it is given
        raise DataError(f"{json_key}: review metadata missing")
    return _loaded(review, review.meta)


def save_review(
    store: ObjectStore,
    month: Month,
    decisions: Mapping[str, bool],
    *,
    reviewer: str,
    reviewed_at: datetime,
    dataset_hash: str,
    sample_ids: Collection[str],
) -> LoadedReview:
    """Validate ``decisions`` fully, then write review.csv and, last, review.json that vouches for it.

    Nothing is written unless the whole review is valid. A review is human input that reviewers
    revise, so both objects may be replaced; review.json names review.csv's hash, so a save that dies
    between the two writes is detected by every reader instead of mixing two reviews.
    """
    if not reviewer.strip():
        raise DataError(f"review of {month}: the reviewer's name is empty")
    csv_data = render_review_csv(decisions)
    review: Review = validate_review(csv_data, None, month=str(month), dataset_hash=dataset_hash, sample_ids=sample_ids)
    meta = build_meta(
        month=str(month),
        reviewer=reviewer,
        reviewed_at=reviewed_at,
        dataset_hash=dataset_hash,
        csv_data=csv_data,
        review=review,
    )
    csv_key = review_csv_key(month)
    digest = store.put_bytes(csv_key, csv_data, overwrite=True)
    info = store.head(csv_key)
    if info is None or info.sha256 != digest:
        raise TransientError(f"review of {month}: {csv_key!r} did not verify after writing; review.json not written")
    store.put_bytes(review_json_key(month), meta.to_json_bytes(), overwrite=True)
    return _loaded(review, meta)


def _loaded(review: Review, meta: ReviewMeta) -> LoadedReview:
    return LoadedReview(
        month=meta.month,
        dataset_hash=meta.dataset_hash,
        approved=review.approved,
        rejected=review.rejected,
        unmentioned=review.unmentioned,
        reviewer=meta.reviewer,
        reviewed_at=meta.reviewed_at,
        review_csv_sha256=meta.review_csv_sha256,
    )


@dataclass(frozen=True)
class MonthReviewState:
    """Whether a published month can be evaluated, and why not when it cannot."""

    month: Month
    approved: int
    reason: str | None  # None when the month has a valid review approving at least one sample


def review_states(store: ObjectStore) -> list[MonthReviewState]:
    """Every published month, newest first, with whether its review is valid for its current dataset.

    A month without a review, with a review of an older dataset build, with a bad review or with
    nothing approved cannot be evaluated; the reason says which.
    """
    months = (month_of_manifest_key(key) for key in store.list(DATASETS_PREFIX))
    states: list[MonthReviewState] = []
    for month in sorted((m for m in months if m is not None), reverse=True):
        try:
            loaded = load_dataset(store, month, with_series=False)
            review = load_review(
                store, month, loaded.content_hash, sample_ids=frozenset(loaded.dataset["sample_id"].to_list())
            )
        except DataError as error:  # TransientError propagates: the answer would be wrong, not empty
            states.append(MonthReviewState(month, 0, str(error)))
            continue
        reason = None if review.approved else f"review of {month} approves no sample"
        states.append(MonthReviewState(month, len(review.approved), reason))
    return states


def approved_months_from(states: list[MonthReviewState], *, latest: int) -> list[Month]:
    """The ``latest`` newest months of ``states`` that can be evaluated, newest first."""
    if latest < 1:
        raise ConfigError(f"--latest must be at least 1, got {latest}")
    return [state.month for state in states if state.reason is None][:latest]
