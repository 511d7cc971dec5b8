from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eval_runner.errors import DataError
from eval_runner.fleet.models import ParameterTarget
from eval_runner.fleet.modes import (
    CONFIG_ROW_SCHEMA,
    FLEET_ROW_SCHEMA,
    configuration_diff,
    idempotency_key,
    q10_distributions,
)

TARGETS = {
    "alkaline": ParameterTarget(nominal_capacity_mah=2600, cutoff_mv=2200),
    "lithium": ParameterTarget(nominal_capacity_mah=3000, cutoff_mv=2000),
}
INSTALLED = datetime(2026, 1, 1, tzinfo=UTC)


def _rows(runtime: list[float | None], capacity: list[float | None], revisions: list[str]) -> pl.DataFrame:
    n = len(runtime)
    return pl.DataFrame(
        {
            "device_id": [f"d{i}" for i in range(n)],
            "batch": [0] * n,
            "hardware_revision": revisions,
            "battery_chemistry": ["alkaline"] * n,
            "nominal_capacity_mah": [2000.0] * n,
            "capacity_mah_p10": capacity,
            "capacity_mah_p50": capacity,
            "capacity_mah_p90": capacity,
            "runtime_days_p10": runtime,
            "runtime_days_p50": runtime,
            "runtime_days_p90": runtime,
        },
        schema=FLEET_ROW_SCHEMA,
    )


def test_q10_buckets_overall_and_per_revision() -> None:
    rows = _rows([10.0, 29.9, 30.0, None], [100.0, 250.0, 1990.0, None], ["B", "B", "C", "C"])
    table = q10_distributions(rows)
    runtime = table.filter((pl.col("scope") == "overall") & (pl.col("quantity") == "runtime_days_p10"))
    assert runtime.select("bucket_lower", "bucket_upper", "devices").rows() == [
        (0.0, 30.0, 2),
        (30.0, 60.0, 1),
        (None, None, 1),
    ]
    capacity_b = table.filter(
        (pl.col("scope") == "hardware_revision")
        & (pl.col("hardware_revision") == "B")
        & (pl.col("quantity") == "capacity_pct_p10")
    )
    # 100/2000 = 5 % -> [0, 10); 250/2000 = 12.5 % -> [10, 20)
    assert capacity_b.select("bucket_lower", "devices", "share").rows() == [(0.0, 1, 0.5), (10.0, 1, 0.5)]
    totals = table.group_by("scope", "hardware_revision", "quantity").agg(pl.col("devices").sum())
    assert totals.filter(pl.col("scope") == "overall").get_column("devices").to_list() == [4, 4]


def _samples(rows: list[tuple[str, str, float, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(d, c, n, m, INSTALLED) for d, c, n, m in rows],
        schema={
            "device_id": pl.String(),
            "battery_chemistry": pl.String(),
            "nominal_capacity_mah": pl.Float64(),
            "cutoff_mv": pl.Int32(),
            "battery_installed_at": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )


def test_configuration_diff_marks_only_differing_devices() -> None:
    samples = _samples([("b", "alkaline", 2400.0, 2200), ("a", "alkaline", 2600.0, 2200), ("c", "lithium", 3000, 1900)])
    diff = configuration_diff(samples, TARGETS, run_id="r1", batch=3)
    assert diff.schema == pl.Schema(CONFIG_ROW_SCHEMA)
    assert diff.select("device_id", "action", "target_cutoff_mv").rows() == [
        ("a", "unchanged", 2200),
        ("b", "would_update", 2200),
        ("c", "would_update", 2000),
    ]
    assert diff.get_column("idempotency_key").to_list()[1] == idempotency_key("r1", "b", TARGETS["alkaline"])
    again = configuration_diff(samples, TARGETS, run_id="r1", batch=3)
    assert_frame_equal(diff, again)


def test_idempotency_key_changes_with_run_device_and_target() -> None:
    base = idempotency_key("r1", "d", TARGETS["alkaline"])
    assert base == idempotency_key("r1", "d", TARGETS["alkaline"])
    assert base != idempotency_key("r2", "d", TARGETS["alkaline"])
    assert base != idempotency_key("r1", "e", TARGETS["alkaline"])
    assert base != idempotency_key("r1", "d", TARGETS["lithium"])


def test_configuration_diff_rejects_a_chemistry_without_target() -> None:
    with pytest.raises(DataError, match=r"'x'.*'nimh'"):
        configuration_diff(_samples([("x", "nimh", 2000.0, 2000)]), TARGETS, run_id="r", batch=0)
