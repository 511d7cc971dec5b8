from __future__ import annotations

import importlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eval_runner.contracts import FLEET_SERIES_DAYS
from eval_runner.errors import DataError
from eval_runner.fleet import snapshot
from eval_runner.fleet.shard import read_inputs
from eval_runner.fleet.snapshot import shape_batch
from eval_runner.keys import fleet_snapshot_manifest_key
from eval_runner.library.inputs import DeviceSources
from tests.fakes import MemoryObjectStore
from tests.fixtures.fleet import FleetFrameSource, SyntheticSource

AS_OF = datetime(2026, 4, 30, tzinfo=UTC)
# fieldsim ships no type information; reach its oracle untyped rather than silencing mypy per line.
snapshot_input: Any = importlib.import_module("fieldsim.library_input").snapshot_input


def test_snapshot_reproduces_the_simulators_fleet_input(memory_store: MemoryObjectStore, fieldsim_fleet: Any) -> None:
    manifest = snapshot.run(
        snapshot.SnapshotParams("r1", AS_OF, batch_size=7), store=memory_store, source=FleetFrameSource(fieldsim_fleet)
    )
    parts = [read_inputs(memory_store, manifest, b.batch) for b in manifest.batches]
    samples = pl.concat([p[0] for p in parts]).sort("sample_id")
    series = pl.concat([p[1] for p in parts]).sort("sample_id", "ts")
    expected_samples, expected_series = snapshot_input(fieldsim_fleet, AS_OF, FLEET_SERIES_DAYS)
    assert_frame_equal(samples, expected_samples)
    assert_frame_equal(series, expected_series)
    assert manifest.n_devices == fieldsim_fleet.devices.height


def test_a_complete_snapshot_is_not_read_again(memory_store: MemoryObjectStore) -> None:
    first = snapshot.run(
        snapshot.SnapshotParams("r1", AS_OF, batch_size=10), store=memory_store, source=SyntheticSource(30)
    )

    class Exploding(SyntheticSource):
        def device_ids(self) -> list[str]:
            raise AssertionError("the sources must not be read for a complete snapshot")

    assert (
        snapshot.run(snapshot.SnapshotParams("r1", AS_OF, batch_size=10), store=memory_store, source=Exploding(30))
        == first
    )


def test_a_device_the_source_forgot_is_named() -> None:
    source = SyntheticSource(3)
    ids = sorted(source.device_ids())
    rows = source.device_sources(ids[:2], start=AS_OF - timedelta(days=1), as_of=AS_OF)
    with pytest.raises(DataError, match=r"batch 4: the source returned no record for 1 devices.*trv-000002"):
        shape_batch(rows, ids, as_of=AS_OF, window=timedelta(days=1), batch=4)


def test_batches_written_in_parallel_are_the_batches_written_one_by_one(memory_store: MemoryObjectStore) -> None:
    serial = snapshot.run(
        snapshot.SnapshotParams("serial", AS_OF, batch_size=10),
        store=memory_store,
        source=SyntheticSource(95),
        workers=1,
    )
    parallel = snapshot.run(
        snapshot.SnapshotParams("parallel", AS_OF, batch_size=10),
        store=memory_store,
        source=SyntheticSource(95),
        workers=4,
    )
    assert len(parallel.batches) == 10
    assert parallel.model_copy(update={"run_id": "serial"}) == serial  # same batches, in batch order


def test_a_failing_batch_ends_the_snapshot_unpublished_and_unread_batches_stay_unread(
    memory_store: MemoryObjectStore,
) -> None:
    class FailsOnBatch1(SyntheticSource):
        def __init__(self) -> None:
            super().__init__(200)
            self.read: list[str] = []

        def device_sources(self, device_ids: Sequence[str], *, start: datetime, as_of: datetime) -> DeviceSources:
            self.read.append(device_ids[0])
            if "trv-000010" in device_ids:
                raise DataError("analytics database: reading sensor_logs: the server went away")
            return super().device_sources(device_ids, start=start, as_of=as_of)

    source = FailsOnBatch1()
    with pytest.raises(DataError, match="the server went away"):
        snapshot.run(
            snapshot.SnapshotParams("broken", AS_OF, batch_size=10), store=memory_store, source=source, workers=2
        )
    assert not memory_store.exists(fleet_snapshot_manifest_key("broken"))
    # Two workers: at most the batches already started when batch 1 failed are read, never all 20.
    assert "trv-000010" in source.read and len(source.read) < 20, source.read
