"""load_review / save_review on an in-memory store: validation before any write, counts, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eval_runner.errors import DataError
from eval_runner.keys import LEGACY_REVISION, review_csv_key, review_json_key
from eval_runner.review.manifest import Review, ReviewError
from eval_runner.review.reader import load_review, review_revisions, save_review
from tests.fakes import MemoryObjectStore
from tests.fixtures.dataset import MONTH, SAMPLE_IDS, publish_tiny

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
    assert store.writes[-1] == review_json_key(MONTH, 1)
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
    store.objects[review_csv_key(MONTH, 1)] = b"\xef\xbb\xbfsample_id,use_for_training\r\n"
    with pytest.raises(ReviewError, match="changed after it was saved"):
        load_review(store, MONTH, digest)


def test_missing_review_is_a_data_error(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, digest = tiny_month
    with pytest.raises(DataError, match="has not been reviewed"):
        load_review(store, MONTH, digest)


def _save(store: MemoryObjectStore, digest: str, decisions: dict[str, bool], reviewer: str) -> Review:
    return save_review(store, MONTH, decisions, reviewer=reviewer, reviewed_at=WHEN, dataset_hash=digest,
                       sample_ids=SAMPLE_IDS)  # fmt: skip


def test_two_saves_are_two_revisions_and_both_stay_readable(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, digest = tiny_month
    first = _save(store, digest, {SAMPLE_IDS[0]: True}, "ana")
    first_bytes = store.objects[review_csv_key(MONTH, 1)], store.objects[review_json_key(MONTH, 1)]
    second = _save(store, digest, {SAMPLE_IDS[0]: False}, "bo")
    assert (first.revision, second.revision) == (1, 2) and first.review_hash != second.review_hash
    assert review_revisions(store, MONTH) == [1, 2]
    assert (store.objects[review_csv_key(MONTH, 1)], store.objects[review_json_key(MONTH, 1)]) == first_bytes
    current = load_review(store, MONTH, digest)
    assert (current.revision, current.reviewer, current.rejected) == (2, "bo", frozenset({SAMPLE_IDS[0]}))
    old = load_review(store, MONTH, digest, revision=1)
    assert (old.reviewer, old.approved, old.review_hash) == ("ana", frozenset({SAMPLE_IDS[0]}), first.review_hash)


class StaleListingStore(MemoryObjectStore):
    """A store whose first listing misses the revision another save has just written (a lost race)."""

    def __init__(self) -> None:
        super().__init__()
        self.stale_lists = 0

    def list(self, prefix: str) -> list[str]:
        """The keys under ``prefix``; once, without the newest revision (as if listed before it was saved)."""
        keys = super().list(prefix)
        if self.stale_lists:
            self.stale_lists -= 1
            return [k for k in keys if "revision=000001/" not in k]
        return keys


@pytest.mark.parametrize("same_decisions", [False, True])
def test_a_save_that_races_for_a_taken_revision_becomes_the_next_one(same_decisions: bool) -> None:
    store = StaleListingStore()
    digest = publish_tiny(store)
    winner = _save(store, digest, {SAMPLE_IDS[0]: True}, "ana")
    store.stale_lists = 1  # the second save picks revision 1 again; the conditional write refuses it
    loser = _save(store, digest, {SAMPLE_IDS[0]: same_decisions}, "bo")
    assert (winner.revision, loser.revision) == (1, 2)
    assert load_review(store, MONTH, digest, revision=1).reviewer == "ana"
    assert load_review(store, MONTH, digest).reviewer == "bo"


def test_a_legacy_review_is_revision_0_and_the_next_save_is_revision_1(
    tiny_month: tuple[MemoryObjectStore, str],
) -> None:
    store, digest = tiny_month
    saved = _save(store, digest, {SAMPLE_IDS[0]: True}, "ana")
    # Move revision 1 to where reviews lived before revisions.
    for name in (review_csv_key, review_json_key):
        store.objects[name(MONTH, LEGACY_REVISION)] = store.objects.pop(name(MONTH, 1))
    legacy = load_review(store, MONTH, digest)
    assert (legacy.revision, legacy.review_hash) == (LEGACY_REVISION, saved.review_hash)
    assert _save(store, digest, {SAMPLE_IDS[0]: False}, "bo").revision == 1
    assert review_revisions(store, MONTH) == [LEGACY_REVISION, 1]
