import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eval_runner.contracts import DATASET_SCHEMA, SERIES_SCHEMA
from eval_runner.dataset.shape import EVENTS_SCHEMA
from eval_runner.errors import DataError
from eval_runner.evaluation.metrics import EVALUATED_SCHEMA
from eval_runner.fleet.modes import FLEET_ROW_SCHEMA
from eval_runner.parquet import frame_to_parquet, parquet_to_frame


def test_equal_frames_give_equal_bytes_and_round_trip() -> None:
    frame = pl.DataFrame({"id": ["a", "b"], "v": [1.5, None]})
    first, second = frame_to_parquet(frame), frame_to_parquet(frame.clone())
    assert first == second
    assert_frame_equal(parquet_to_frame(first, name="x"), frame)


def test_garbage_is_a_data_error_naming_the_object() -> None:
    with pytest.raises(DataError, match=r"capacity/x\.parquet: not a readable Parquet file"):
        parquet_to_frame(b"not parquet", name="capacity/x.parquet")


@pytest.mark.parametrize(
    "schema",
    [DATASET_SCHEMA, SERIES_SCHEMA, EVENTS_SCHEMA, EVALUATED_SCHEMA, FLEET_ROW_SCHEMA],
    ids=["dataset", "series", "events", "evaluated", "fleet"],
)
def test_every_stored_schema_decodes_to_itself(schema: dict[str, pl.DataType]) -> None:
    # One null row per column: every dtype (time zones, Int32, Float32, booleans) must come back as written.
    frame = pl.DataFrame([pl.Series(name, [None], dtype=dtype) for name, dtype in schema.items()])
    decoded = parquet_to_frame(frame_to_parquet(frame), name="x")
    assert decoded.schema == pl.Schema(schema)
    assert_frame_equal(decoded, frame)
