"""Read and save a month's review revisions (review.csv + review.json), validated against the dataset they name.

Reviews are append-only: every save is a new revision under ``capacity/reviews/<month>/revision=NNNNNN/``
and the newest complete one is the month's current review. Revision 0 is the layout from before
revisions (review.csv and review.json directly in the month's folder), read as the oldest revision.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from eval_runner.dataset.reader import load_dataset
from eval_runner.errors import ConfigError, DataError, TransientError
from eval_runner.keys import (
    DATASETS_PREFIX,
    LEGACY_REVISION,
    Month,
    month_of_manifest_key,
    review_csv_key,
    review_file_of_key,
    review_json_key,
    review_prefix,
)
from eval_runner.review.manifest import (
    Review,
    ReviewMeta,
    build_meta,
    parse_review_meta,
    render_review_csv,
    validate_review,
    validate_review_csv,
)
from eval_runner.storage import ContentConflictError, ObjectStore

# How many revision numbers one save tries before it gives up: each lost try means another save of
# the same month won a revision number in the meantime.
_CLAIM_ATTEMPTS = 20


def _revision_files(store: ObjectStore, month: Month) -> dict[int, set[str]]:
    files: dict[int, set[str]] = {}
    for key in store.list(review_prefix(month)):
        found = review_file_of_key(month, key)
        if found is not None:
            files.setdefault(found[0], set()).add(found[1])
    return files


def review_revisions(store: ObjectStore, month: Month) -> list[int]:
    """The month's complete review revisions (review.json written), oldest first; 0 is the legacy layout."""
    return sorted(number for number, names in _revision_files(store, month).items() if "review.json" in names)


def current_revision(store: ObjectStore, month: Month) -> int:
    """The month's current review: its newest complete revision; a month without one is a DataError."""
    revisions = review_revisions(store, month)
    if not revisions:
        raise DataError(f"review of {month}: nothing under {review_prefix(month)!r}; the month has not been reviewed")
    return revisions[-1]


def _sample_ids(store: ObjectStore, month: Month, dataset_hash: str) -> frozenset[str]:
    loaded = load_dataset(store, month, with_series=False)
    if loaded.content_hash != dataset_hash:
        raise DataError(
            f"dataset {month} has content hash {loaded.content_hash}, "
            f"but a review for dataset hash {dataset_hash} was asked for"
        )
    return frozenset(loaded.dataset["sample_id"].to_list())


def load_review(
    store: ObjectStore,
    month: Month,
    dataset_hash: str,
    *,
    sample_ids: Collection[str] | None = None,
    revision: int | None = None,
) -> Review:
    """Load a revision of the month's review (default: the current one) and validate it against the dataset.

    ``sample_ids`` (the dataset's) saves re-reading dataset.parquet when the caller has it loaded.
    A missing review, a review for another dataset hash, or any bad line raises DataError.
    """
    number = current_revision(store, month) if revision is None else revision
    json_key, csv_key = review_json_key(month, number), review_csv_key(month, number)
    if not store.exists(json_key):
        raise DataError(f"review of {month}: revision {number} ({json_key!r}) does not exist")
    ids = frozenset(sample_ids) if sample_ids is not None else _sample_ids(store, month, dataset_hash)
    return validate_review(
        store.get_bytes(csv_key),
        store.get_bytes(json_key),
        revision=number,
        month=str(month),
        dataset_hash=dataset_hash,
        sample_ids=ids,
        csv_name=csv_key,
        meta_name=json_key,
    )


def load_review_meta(store: ObjectStore, month: Month, revision: int) -> ReviewMeta:
    """review.json of one revision, with its review.csv checked against the hash it names.

    Cheaper than :func:`load_review` (no dataset read) for readers that need the review's identity
    only, such as the gate: the evaluations it reads validated the review's lines when they were made.
    """
    json_key, csv_key = review_json_key(month, revision), review_csv_key(month, revision)
    meta = parse_review_meta(store.get_bytes(json_key), name=json_key)
    store.get_bytes(csv_key, expected_sha256=meta.review_csv_sha256)
    if meta.month != str(month):
        raise DataError(f"{json_key}: month is {meta.month}, expected {month}")
    return meta


def save_review(
    store: ObjectStore,
    month: Month,
    decisions: Mapping[str, bool],
    *,
    reviewer: str,
    reviewed_at: datetime,
    dataset_hash: str,
    sample_ids: Collection[str],
) -> Review:
    """Validate ``decisions`` fully, then publish them as the month's next review revision.

    Nothing is written unless the whole review is valid, and nothing is ever replaced: a revision is
    claimed by conditional writes (review.csv, then review.json as the marker), so of two concurrent
    saves that pick the same number exactly one gets it and the other takes the next one. A save that
    dies between the two writes leaves a revision without review.json, which readers skip.
    """
    if not reviewer.strip():
        raise DataError(f"review of {month}: the reviewer's name is empty")
    csv_data = render_review_csv(decisions)
    validated = validate_review_csv(csv_data, sample_ids=sample_ids)
    meta = build_meta(
        month=str(month),
        reviewer=reviewer,
        reviewed_at=reviewed_at,
        dataset_hash=dataset_hash,
        csv_data=csv_data,
        review=validated,
    )
    for _ in range(_CLAIM_ATTEMPTS):
        number = max(_revision_files(store, month), default=LEGACY_REVISION) + 1
        csv_key = review_csv_key(month, number)
        try:
            digest = store.put_bytes(csv_key, csv_data)
            info = store.head(csv_key)
            if info is None or info.sha256 != digest:
                raise TransientError(
                    f"review of {month}: {csv_key!r} did not verify after writing; review.json not written"
                )
            store.put_bytes(review_json_key(month, number), meta.to_json_bytes())
        except ContentConflictError:
            continue  # another save claimed this revision first; ours becomes the next one
        return Review(meta=meta, decisions=validated, revision=number)
    raise TransientError(
        f"review of {month}: {_CLAIM_ATTEMPTS} revision numbers in a row were taken by concurrent saves; "
        "nothing of this save is the current review, save again"
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
