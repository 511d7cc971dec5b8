from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
from fieldsim import Fleet, SimConfig, daily, physics, simulate
from fieldsim import constants as k

from eval_runner.parquet import frame_to_parquet


def _small(seed: int, devices: int = 12) -> Fleet:
    return simulate(SimConfig.for_months(seed=seed, devices=devices, start="2026-03", months=1))


def test_same_seed_gives_byte_identical_frames() -> None:
    first, second = _small(5), _small(5)
    for name, frame in first.source_frames().items():
        assert frame_to_parquet(frame) == frame_to_parquet(second.source_frames()[name]), name
    assert frame_to_parquet(first.packs) == frame_to_parquet(second.packs)


def test_other_seed_gives_other_data() -> None:
    assert frame_to_parquet(_small(5).sensor_logs) != frame_to_parquet(_small(6).sensor_logs)


def test_frames_have_the_contract_columns(fieldsim_fleet: Fleet) -> None:
    assert fieldsim_fleet.sensor_logs.columns == [
        "device_id", "ts", "battery_mv", "temperature_c", "radio_tx", "radio_rx", "rssi_dbm",
        "valve_travel_total",
    ]  # fmt: skip
    assert fieldsim_fleet.valve_movements.columns == ["device_id", "ts", "travel_pct", "motor_ms"]
    assert fieldsim_fleet.sensor_logs.select(pl.struct("device_id", "ts").is_unique().all()).item()
    assert fieldsim_fleet.valve_movements.select(pl.struct("device_id", "ts").is_unique().all()).item()
    assert fieldsim_fleet.devices.height == 60
    assert set(fieldsim_fleet.version_events["component"].unique()) == {"hardware", "firmware", "software"}


def test_resting_voltage_falls_with_discharge_and_cold() -> None:
    life = np.linspace(0.0, 1.0, 50)
    for chem in (0, 1):
        volts = physics.ocv_mv(np.full(50, chem), life, np.full(50, 21.0))
        assert np.all(np.diff(volts) < 0)
    warm = physics.ocv_mv(np.zeros(1, dtype=np.int64), np.array([0.5]), np.array([30.0]))
    cold = physics.ocv_mv(np.zeros(1, dtype=np.int64), np.array([0.5]), np.array([5.0]))
    assert cold[0] < warm[0]


def test_reported_voltage_tracks_remaining_charge(fieldsim_fleet: Fleet) -> None:
    tests = fieldsim_fleet.capacity_tests.sort("tested_at")
    logs = fieldsim_fleet.sensor_logs.filter(pl.col("battery_mv").is_between(1500, 4000)).sort("ts")
    joined = tests.join_asof(
        logs, left_on="tested_at", right_on="ts", by="device_id", strategy="backward", check_sortedness=False
    ).join(fieldsim_fleet.battery_parameters.select("device_id", "chemistry"), on="device_id")
    alkaline = joined.filter(pl.col("chemistry") == "alkaline").drop_nulls("battery_mv")
    assert alkaline.select(pl.corr("battery_mv", "remaining_mah")).item() > 0.7


def test_cold_reduces_capacity() -> None:
    chem = np.zeros(3, dtype=np.int64)
    factor = physics.capacity_factor(chem, np.array([5.0, 21.0, 40.0]))
    assert factor[0] < 0.92 < factor[1] == 1.0 < factor[2]
    r = physics.resistance_ohm(chem, np.full(3, 0.2), np.array([-20.0, 21.0, 40.0]))
    assert r[0] > 2.5 * r[1]
    assert r[1] > 1.3 * r[2]


def test_rev_c_motor_draws_more_charge_per_travel(fieldsim_fleet: Fleet) -> None:
    hw = fieldsim_fleet.device_truth.select("device_id", "hardware_revision")
    per_pct = (
        fieldsim_fleet.valve_movements.join(hw, on="device_id")
        .group_by("hardware_revision")
        .agg((pl.col("motor_ms").sum() / pl.col("travel_pct").sum()).alias("ms_per_pct"))
        .sort("hardware_revision")
    )
    ms = dict(zip(per_pct["hardware_revision"], per_pct["ms_per_pct"], strict=True))
    assert ms["C"] / ms["B"] > 2.3
    charge = daily.motor_mah_per_pct(np.array([1, 2]))
    assert charge[1] / charge[0] == np.float64(1.5)


def test_swaps_reset_counters_and_lift_voltage() -> None:
    fleet = simulate(SimConfig.for_months(seed=11, devices=200, start="2026-03", months=2))
    swaps = fleet.packs.filter(pl.col("pack_no") > 0)
    assert swaps.height > 0
    logs = fleet.sensor_logs.filter(pl.col("battery_mv").is_between(1500, 4000))
    checked = 0
    for device, at in swaps.select("device_id", "installed_at").iter_rows():
        rows = logs.filter(pl.col("device_id") == device)
        before = rows.filter(pl.col("ts") < at).tail(1)
        after = rows.filter((pl.col("ts") >= at) & (pl.col("ts") < at + timedelta(hours=6))).head(1)
        if before.height and after.height:
            checked += 1
            travel_after: float = after["valve_travel_total"][0]
            travel_before: float = before["valve_travel_total"][0]
            mv_after: int = after["battery_mv"][0]
            mv_before: int = before["battery_mv"][0]
            assert travel_after <= k.CALIBRATION_TRAVEL_PCT + 1
            assert travel_after < travel_before
            assert mv_after > mv_before
    assert checked > 0


def test_runtime_truth_is_consistent_with_consumption(fieldsim_fleet: Fleet) -> None:
    tests = fieldsim_fleet.capacity_tests
    daily_use = tests["remaining_mah"] / tests["remaining_runtime_days"]
    assert daily_use.filter(tests["remaining_runtime_days"] > 30).is_between(0.3, 12.0).all()
    # Two tests of the same pack: the truth runs out at the same moment, and charge only goes down.
    packs = fieldsim_fleet.packs.select("device_id", "installed_at", "empty_at").sort("installed_at")
    tagged = tests.sort("tested_at").join_asof(
        packs, left_on="tested_at", right_on="installed_at", by="device_id", check_sortedness=False
    )
    pairs = tagged.join(tagged, on=["device_id", "installed_at"], suffix="_2").filter(
        pl.col("tested_at_2") > pl.col("tested_at")
    )
    assert pairs.height > 10
    elapsed = (pl.col("tested_at_2") - pl.col("tested_at")).dt.total_seconds() / 86400.0
    drift = pairs.select(
        (pl.col("remaining_runtime_days") - pl.col("remaining_runtime_days_2") - elapsed).abs().max()
    ).item()
    assert drift < 0.01
    assert pairs.select((pl.col("remaining_mah_2") <= pl.col("remaining_mah")).all()).item()


def test_field_mess_is_present(fieldsim_fleet: Fleet) -> None:
    logs = fieldsim_fleet.sensor_logs
    assert logs["battery_mv"].null_count() > 0
    assert logs.filter(~pl.col("battery_mv").is_between(1500, 4000)).height > 0
    hours = int((fieldsim_fleet.config.data_end - fieldsim_fleet.config.data_start).total_seconds() // 3600)
    per_device = logs.group_by("device_id").len()["len"]
    assert (per_device < hours - 24).sum() > 5  # days-long offline gaps
    upgrades = fieldsim_fleet.version_events.filter(
        (pl.col("component") == "firmware") & (pl.col("effective_at") >= fieldsim_fleet.config.data_start)
    )
    assert upgrades.height > 0


def test_each_runtime_truth_says_how_it_is_known() -> None:
    fleet = simulate(SimConfig.for_months(seed=7, devices=300, start="2026-03", months=3))
    tests = fleet.capacity_tests
    data_end = fleet.sensor_logs.get_column("ts").max()
    ends = tests.with_columns(
        (pl.col("tested_at") + pl.duration(seconds=pl.col("remaining_runtime_days") * 86400.0)).alias("ends_at")
    )
    observed = ends.filter(pl.col("runtime_source") == "observed")
    censored = ends.filter(pl.col("runtime_censored"))
    assert observed.height > 0 and censored.height > 0, tests.group_by("runtime_source", "runtime_censored").len()
    # Observed: the pack ran out before the record ends, so someone saw the day.
    assert observed.select((pl.col("ends_at") <= data_end).all()).item()
    # Censored: an estimate (never an observation) that reached the model's horizon, a lower bound.
    assert set(censored.get_column("runtime_source")) == {"estimated"}
    assert censored.select((pl.col("remaining_runtime_days") >= daily.RUNTIME_HORIZON_DAYS).all()).item()
    uncensored = ends.filter(~pl.col("runtime_censored") & (pl.col("runtime_source") == "estimated"))
    assert uncensored.height > observed.height  # most packs outlive a few months of record
