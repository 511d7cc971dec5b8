from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eval_runner.errors import ConfigError, DataError
from eval_runner.fleet.planning import assign_batches, assign_shards, check_exactly_once


def test_batches_are_sorted_and_cut_by_size() -> None:
    ids = pl.Series(["d", "a", "c", "b", "e"])
    got = assign_batches(ids, 2)
    expected = pl.DataFrame(
        {"device_id": ["a", "b", "c", "d", "e"], "batch": [0, 0, 1, 1, 2]},
        schema={"device_id": pl.String(), "batch": pl.Int32()},
    )
    assert_frame_equal(got, expected)


@pytest.mark.parametrize(
    ("ids", "message"),
    [([], "no devices"), (["a", "a", "b"], "more than once"), (["a", ""], "empty id")],
)
def test_bad_device_lists_are_data_errors(ids: list[str], message: str) -> None:
    with pytest.raises(DataError, match=message):
        assign_batches(pl.Series(ids, dtype=pl.String()), 2)


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="batch size"):
        assign_batches(pl.Series(["a"]), 0)


def test_shards_are_contiguous_near_equal_and_never_empty() -> None:
    assert assign_shards(7, 3) == {"s000": (0, 1, 2), "s001": (3, 4), "s002": (5, 6)}
    assert assign_shards(2, 5) == {"s000": (0,), "s001": (1,)}
    covered = [b for batches in assign_shards(401, 8).values() for b in batches]
    assert covered == list(range(401))


def _devices(*pairs: tuple[str, int]) -> pl.DataFrame:
    return pl.DataFrame(pairs, schema={"device_id": pl.String(), "batch": pl.Int32()}, orient="row")


def test_exactly_once_accepts_a_complete_result() -> None:
    expected = _devices(("a", 0), ("b", 0), ("c", 1))
    check_exactly_once(expected, _devices(("c", 1), ("a", 0), ("b", 0)))


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ([("a", 0), ("b", 0), ("b", 0), ("c", 1)], "more than once"),
        ([("a", 0), ("c", 1)], "have no result.*'b'"),
        ([("a", 0), ("b", 0), ("c", 1), ("x", 1)], "outside the snapshot.*'x'"),
        ([("a", 0), ("b", 1), ("c", 1)], "wrong batch.*'b'"),
    ],
)
def test_exactly_once_names_the_problem(results: list[tuple[str, int]], message: str) -> None:
    with pytest.raises(DataError, match=message):
        check_exactly_once(_devices(("a", 0), ("b", 0), ("c", 1)), _devices(*results))
