"""The fleet snapshot from the live sources (PostgreSQL and the five shards) against the in-memory oracle.

The live source reads over HTTP and SQL; the in-memory source slices the simulated fleet the sources
were loaded from. Both go through the same ``snapshot.run``, so any difference is the live reading's.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from fieldsim.shards import Faults
from polars.testing import assert_frame_equal

from eval_runner.errors import DataError
from eval_runner.fleet import snapshot
from eval_runner.fleet.live_source import LiveFleetSource
from eval_runner.fleet.models import SnapshotManifest
from eval_runner.fleet.shard import read_inputs
from eval_runner.settings import PostgresSettings, ShardSettings
from eval_runner.sources.analytics import PostgresAnalytics
from eval_runner.storage import S3ObjectStore
from tests.fixtures.fieldsim import FieldSources
from tests.fixtures.fleet import FleetFrameSource

AS_OF = datetime(2026, 4, 20, 13, tzinfo=UTC)  # inside the fixture fleet's hourly data, not at midnight
BATCH_SIZE = 16  # 60 devices: four batches, the last one short


def _live_snapshot(sources: FieldSources, store: S3ObjectStore, run_id: str, *, workers: int = 3) -> SnapshotManifest:
    """The snapshot as `eval-runner fleet snapshot` takes it: batches in flight at once, a connection each."""
    with (
        PostgresAnalytics.connect(PostgresSettings(dsn=sources.postgres_dsn), connections=workers) as analytics,
        LiveFleetSource(ShardSettings(urls=sources.shard_urls), analytics) as source,
    ):
        return snapshot.run(
            snapshot.SnapshotParams(run_id, AS_OF, batch_size=BATCH_SIZE), store=store, source=source, workers=workers
        )


def _frames(store: S3ObjectStore, manifest: SnapshotManifest) -> tuple[pl.DataFrame, pl.DataFrame]:
    parts = [read_inputs(store, manifest, b.batch) for b in manifest.batches]
    return pl.concat([p[0] for p in parts]), pl.concat([p[1] for p in parts])


def test_the_live_snapshot_equals_the_snapshot_of_the_fleet_the_sources_serve(
    fieldsim_sources: FieldSources, object_store: S3ObjectStore
) -> None:
    live = _live_snapshot(fieldsim_sources, object_store, "live")
    oracle = snapshot.run(
        snapshot.SnapshotParams(  # one batch at a time
            "oracle", AS_OF, batch_size=BATCH_SIZE
        ),
        store=object_store,
        source=FleetFrameSource(fieldsim_sources.fleet),
        workers=1,
    )
    live_samples, live_series = _frames(object_store, live)
    oracle_samples, oracle_series = _frames(object_store, oracle)
    assert live.n_devices == fieldsim_sources.fleet.devices.height == live_samples.height
    assert live_series.height > 0
    assert_frame_equal(live_samples, oracle_samples)
    assert_frame_equal(live_series, oracle_series)
    assert [(b.samples_sha256, b.series_sha256) for b in live.batches] == [
        (b.samples_sha256, b.series_sha256) for b in oracle.batches
    ]


def test_a_shard_that_blips_is_retried_and_the_snapshot_is_the_same(
    fieldsim_sources: FieldSources, object_store: S3ObjectStore
) -> None:
    calm = _live_snapshot(fieldsim_sources, object_store, "calm")
    for shard in range(5):
        fieldsim_sources.set_faults(
            shard, Faults(error_rate=0.3, throttle_rate=0.2, retry_after_s=0, budget=4, seed=shard)
        )
    stormy = _live_snapshot(fieldsim_sources, object_store, "stormy")
    assert sum(state.faults_given for state in fieldsim_sources.shards) > 0
    assert [(b.samples_sha256, b.series_sha256) for b in stormy.batches] == [
        (b.samples_sha256, b.series_sha256) for b in calm.batches
    ]


def test_a_device_the_shards_hold_no_parameters_for_is_a_data_error(
    fieldsim_sources: FieldSources, object_store: S3ObjectStore
) -> None:
    state = fieldsim_sources.shards[0]
    lost = sorted(state.parameters)[0]
    del state.parameters[lost]
    with pytest.raises(DataError, match=lost):
        _live_snapshot(fieldsim_sources, object_store, "lost")
