"""Which months `release` may evaluate: valid reviews of the current dataset build that approve something."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eval_runner.errors import ConfigError
from eval_runner.keys import Month
from eval_runner.review.reader import approved_months_from, review_states, save_review
from tests.fakes import MemoryObjectStore
from tests.fixtures.dataset import SAMPLE_IDS, publish_tiny

WHEN = datetime(2026, 6, 1, tzinfo=UTC)
MARCH, APRIL, MAY = Month(2026, 3), Month(2026, 4), Month(2026, 5)


def _review(store: MemoryObjectStore, month: Month, digest: str, *, approve: bool) -> None:
    save_review(
        store,
        month,
        dict.fromkeys(SAMPLE_IDS, approve),
        reviewer="ana",
        reviewed_at=WHEN,
        dataset_hash=digest,
        sample_ids=SAMPLE_IDS,
    )


def test_only_months_with_a_valid_approving_review_count_newest_first() -> None:
    store = MemoryObjectStore()
    _review(store, MARCH, publish_tiny(store, MARCH), approve=True)
    _review(store, APRIL, publish_tiny(store, APRIL), approve=False)  # reviewed, nothing approved
    publish_tiny(store, MAY)  # not reviewed yet

    states = {state.month: state for state in review_states(store)}
    assert [state.month for state in review_states(store)] == [MAY, APRIL, MARCH]
    assert states[MARCH].reason is None and states[MARCH].approved == len(SAMPLE_IDS)
    assert states[APRIL].reason == "review of 2026-04 approves no sample"
    assert "has not been reviewed" in str(states[MAY].reason)
    assert approved_months_from(review_states(store), latest=3) == [MARCH]


def test_latest_limits_to_the_newest() -> None:
    store = MemoryObjectStore()
    for month in (MARCH, APRIL, MAY):
        _review(store, month, publish_tiny(store, month), approve=True)
    assert approved_months_from(review_states(store), latest=2) == [MAY, APRIL]


def test_latest_below_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--latest must be at least 1, got 0"):
        approved_months_from([], latest=0)
