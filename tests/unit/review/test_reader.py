"""load_review / save_review on an in-memory store: validation before any write, counts, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eval_runner.errors import DataError
from eval_runner.keys import review_csv_key, review_json_key
from eval_runner.review.manifest import ReviewError
from eval_runner.review.reader import load_review, save_review
from tests.fakes import MemoryObjectStore
from tests.fixtures.dataset import MONTH, SAMPLE_IDS

WHEN = datetime(2026, 5, 3, 9, 30, tzinfo=UTC)


def test_saved_review_loads_with_unmentioned_counted(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, digest = tiny_month
    save_review(
        store,
        MONTH,
        {SAMPLE_IDS[0]: True, SAMPLE_IDS[1]: False},
        reviewer="ana",
        reviewed_at=WHEN,
        dataset_hash=digest,
        sample_ids=SAMPLE_IDS,
    )
    assert store.writes[-1] == review_json_key(MONTH)
    review = load_review(store, MONTH, digest)
    assert review.approved == {SAMPLE_IDS[0]}
    assert review.rejected == {SAMPLE_IDS[1]}
    assert review.unmentioned == 1
    assert (review.reviewer, review.reviewed_at) == ("ana", WHEN)


def test_invalid_review_publishes_nothing(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, digest = tiny_month
    before = list(store.writes)
    with pytest.raises(ReviewError, match="'nope/2026-04' is not in the dataset"):
        save_review(
            store,
            MONTH,
            {"nope/2026-04": True},
            reviewer="ana",
            reviewed_at=WHEN,
            dataset_hash=digest,
            sample_ids=SAMPLE_IDS,
        )
    assert store.writes == before


def test_review_for_another_dataset_hash_is_refused(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, digest = tiny_month
    save_review(
        store,
        MONTH,
        {SAMPLE_IDS[0]: True},
        reviewer="ana",
        reviewed_at=WHEN,
        dataset_hash=digest,
        sample_ids=SAMPLE_IDS,
    )
    with pytest.raises(DataError, match="but a review for dataset hash"):
        load_review(store, MONTH, "f" * 64)
    with pytest.raises(ReviewError, match="written for dataset hash"):
        load_review(store, MONTH, "f" * 64, sample_ids=SAMPLE_IDS)


def test_hand_edited_csv_with_bom_and_crlf_is_read(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, digest = tiny_month
    save_review(
        store,
        MONTH,
        {SAMPLE_IDS[0]: True},
        reviewer="ana",
        reviewed_at=WHEN,
        dataset_hash=digest,
        sample_ids=SAMPLE_IDS,
    )
    store.objects[review_csv_key(MONTH)] = b"\xef\xbb\xbfsample_id,use_for_training\r\n"
    with pytest.raises(ReviewError, match="changed after it was saved"):
        load_review(store, MONTH, digest)


def test_missing_review_is_a_data_error(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, digest = tiny_month
    with pytest.raises(DataError, match="has not been reviewed"):
        load_review(store, MONTH, digest)
