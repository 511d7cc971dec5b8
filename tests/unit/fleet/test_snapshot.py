from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eval_runner.contracts import FLEET_SERIES_DAYS
from eval_runner.errors import DataError
from eval_runner.fleet.shard import read_inputs
from eval_runner.fleet.snapshot import run_snapshot, shape_batch
from tests.fakes import MemoryObjectStore
from tests.fixtures.fleet import FleetFrameSource, SyntheticSource

AS_OF = datetime(2026, 4, 30, tzinfo=UTC)
# fieldsim ships no type information; reach its oracle untyped rather than silencing mypy per line.
snapshot_input: Any = importlib.import_module("fieldsim.library_input").snapshot_input


def test_snapshot_reproduces_the_simulators_fleet_input(memory_store: MemoryObjectStore, fieldsim_fleet: Any) -> None:
    manifest = run_snapshot("r1", AS_OF, store=memory_store, source=FleetFrameSource(fieldsim_fleet), batch_size=7)
    parts = [read_inputs(memory_store, manifest, b.batch) for b in manifest.batches]
    samples = pl.concat([p[0] for p in parts]).sort("sample_id")
    series = pl.concat([p[1] for p in parts]).sort("sample_id", "ts")
    expected_samples, expected_series = snapshot_input(fieldsim_fleet, AS_OF, FLEET_SERIES_DAYS)
    assert_frame_equal(samples, expected_samples)
    assert_frame_equal(series, expected_series)
    assert manifest.n_devices == fieldsim_fleet.devices.height


def test_a_complete_snapshot_is_not_read_again(memory_store: MemoryObjectStore) -> None:
    first = run_snapshot("r1", AS_OF, store=memory_store, source=SyntheticSource(30), batch_size=10)

    class Exploding(SyntheticSource):
        def device_ids(self) -> list[str]:
            raise AssertionError("the sources must not be read for a complete snapshot")

    assert run_snapshot("r1", AS_OF, store=memory_store, source=Exploding(30), batch_size=10) == first


def test_a_device_the_source_forgot_is_named() -> None:
    source = SyntheticSource(3)
    ids = sorted(source.device_ids())
    rows = source.device_sources(ids[:2], start=AS_OF - timedelta(days=1), as_of=AS_OF)
    with pytest.raises(DataError, match=r"batch 4: the source returned no record for 1 devices.*trv-000002"):
        shape_batch(rows, ids, as_of=AS_OF, window=timedelta(days=1), batch=4)
