import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eval_runner.errors import DataError
from eval_runner.parquet import frame_to_parquet, parquet_to_frame


def test_equal_frames_give_equal_bytes_and_round_trip() -> None:
    frame = pl.DataFrame({"id": ["a", "b"], "v": [1.5, None]})
    first, second = frame_to_parquet(frame), frame_to_parquet(frame.clone())
    assert first == second
    assert_frame_equal(parquet_to_frame(first, name="x"), frame)


def test_garbage_is_a_data_error_naming_the_object() -> None:
    with pytest.raises(DataError, match=r"capacity/x\.parquet: not a readable Parquet file"):
        parquet_to_frame(b"not parquet", name="capacity/x.parquet")
