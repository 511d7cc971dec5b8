"""Benchmark of the field simulator: generate and load one month, and the fleet snapshot inputs.

Figures printed (wall seconds, rows, peak memory), not a timed test:
- 1,000 devices, one month hourly (plus the 31-day pre-roll the first month's series need): simulate,
  the oracle dataset and series, COPY into a real local PostgreSQL, splitting into the five shards;
- fleet snapshot inputs (LIBRARY_SAMPLE_COLUMNS + series of FLEET_SERIES_DAYS) for 100,000 devices, and
  for comparison 10,000 devices with the full 30-day window.

Run: .venv/bin/python bench/simulator.py [--devices 1000] [--fleet 100000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
# This file is named like the package it measures: drop its own folder from the path so that
# `fieldsim` is the simulator, and import it by name (mypy would take this file for it, too).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

import importlib  # noqa: E402  (imports follow the path set-up above)

from eval_runner.contracts import FLEET_SERIES_DAYS  # noqa: E402
from tests.services.postgres import start_postgres  # noqa: E402

_sim: Any = importlib.import_module("fieldsim")
_oracle: Any = importlib.import_module("fieldsim.library_input")
_postgres: Any = importlib.import_module("fieldsim.postgres")
_shards: Any = importlib.import_module("fieldsim.shards")
SimConfig, simulate = _sim.SimConfig, _sim.simulate
month_dataset, snapshot_input = _oracle.month_dataset, _oracle.snapshot_input
load_postgres, shard_states = _postgres.load_postgres, _shards.shard_states

T = TypeVar("T")
AS_OF = datetime(2026, 4, 15, tzinfo=UTC)


def timed(label: str, action: Callable[[], T]) -> T:
    """Run ``action``; print wall time, this process's CPU time (steadier on a shared machine), peak RSS."""
    start, cpu = time.perf_counter(), time.process_time()
    result = action()
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"  {label:<42} wall {wall:7.2f} s  cpu {used:7.2f} s  peak RSS {peak_gib:5.2f} GiB", flush=True)
    return result


def month(devices: int) -> None:
    """One month of ``devices`` devices: simulate, oracle, COPY, shard split."""
    print(f"one month hourly, {devices} devices (2026-04 with a 31-day pre-roll)")
    cfg = SimConfig.for_months(seed=7, devices=devices, start="2026-04", months=1)
    fleet = timed("simulate", lambda: simulate(cfg))
    print(f"    sensor_logs {fleet.sensor_logs.height:,} rows, valve_movements {fleet.valve_movements.height:,}")
    dataset, series = timed("oracle dataset + series (month_dataset)", lambda: month_dataset(fleet, "2026-04"))
    print(f"    dataset {dataset.height:,} rows, series {series.height:,} rows")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_postgres(Path(tmp) / "pg")
        try:
            dsn = server.new_database()
            timed("load PostgreSQL (COPY, both tables)", lambda: load_postgres(fleet, dsn))
        finally:
            server.stop()
    timed("split into five shard states", lambda: shard_states(fleet))


def snapshot(devices: int, window_days: int) -> None:
    """Fleet snapshot inputs of ``devices`` devices over ``window_days`` before AS_OF."""
    print(f"fleet snapshot inputs, {devices:,} devices, {window_days}-day window")
    cfg = SimConfig.for_snapshot(seed=7, devices=devices, as_of=AS_OF, window_days=window_days)
    fleet = timed("simulate", lambda: simulate(cfg))
    samples, series = timed("samples + series (snapshot_input)", lambda: snapshot_input(fleet, AS_OF, window_days))
    size_gib = series.estimated_size() / 1024**3
    print(f"    samples {samples.height:,} rows, series {series.height:,} rows ({size_gib:.2f} GiB in memory)")


def main() -> None:
    """Parse arguments and run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--fleet", type=int, default=100_000)
    args = parser.parse_args()
    month(args.devices)
    snapshot(args.fleet, FLEET_SERIES_DAYS)
    snapshot(args.fleet // 10, 30)


if __name__ == "__main__":
    main()
