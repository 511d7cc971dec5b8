from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from fieldsim import Fleet
from fieldsim.library_input import month_dataset, series_for, snapshot_input
from polars.testing import assert_frame_equal

from tests import contract_specs as spec


def test_month_dataset_has_contract_schemas(fieldsim_fleet: Fleet) -> None:
    dataset, series = month_dataset(fieldsim_fleet, "2026-04")
    assert dict(dataset.schema) == spec.polars_schema("samples")
    assert dict(series.schema) == spec.polars_schema("series")
    assert dataset.height == fieldsim_fleet.devices.height
    assert dataset["sample_id"].is_unique().all()


def test_truth_comes_from_the_months_capacity_tests(fieldsim_fleet: Fleet) -> None:
    dataset, _ = month_dataset(fieldsim_fleet, "2026-04")
    april = fieldsim_fleet.capacity_tests.filter(pl.col("tested_at").dt.month() == 4)
    with_truth = dataset.filter(~pl.col("missing_capacity_test"))
    assert with_truth.height == april.height
    assert dataset.filter(pl.col("missing_capacity_test"))["true_runtime_days"].null_count() == (
        dataset.height - april.height
    )
    joined = with_truth.join(april, left_on="as_of", right_on="tested_at")
    assert (joined["true_capacity_mah"] == joined["remaining_mah"]).all()


def test_series_covers_the_thirty_days_before_as_of(fieldsim_fleet: Fleet) -> None:
    dataset, series = month_dataset(fieldsim_fleet, "2026-03")
    bounds = series.join(dataset.select("sample_id", "as_of"), on="sample_id")
    assert bounds.select((pl.col("ts") < pl.col("as_of")).all()).item()
    assert bounds.select((pl.col("ts") >= pl.col("as_of") - timedelta(days=30)).all()).item()
    assert series.select(pl.struct("sample_id", "ts").is_unique().all()).item()
    per_sample = series.group_by("sample_id").len()["len"]
    longest: int = per_sample.max()  # type: ignore[assignment]  # an integer column's max is an int
    assert 650 < longest <= 720
    assert series.filter(pl.col("motor_ms") > 0).height > 0


def test_snapshot_input_is_library_shaped(fieldsim_fleet: Fleet) -> None:
    samples, series = snapshot_input(fieldsim_fleet, datetime(2026, 5, 20, tzinfo=UTC), window_days=7)
    assert dict(samples.schema) == spec.polars_schema("library_samples")
    assert samples.height == fieldsim_fleet.devices.height
    longest: int = series.group_by("sample_id").len()["len"].max()  # type: ignore[assignment]  # int column
    assert 150 < longest <= 7 * 24


def test_series_does_not_depend_on_the_chunking(fieldsim_fleet: Fleet) -> None:
    dataset, series = month_dataset(fieldsim_fleet, "2026-05")
    assert_frame_equal(series_for(fieldsim_fleet, dataset, chunk_devices=7), series)
