"""`eval-runner dataset build` against real S3, PostgreSQL and the five simulated shards."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fieldsim.library_input import month_dataset
from fieldsim.shards import Faults
from polars.testing import assert_frame_equal

from eval_runner.cli import main
from eval_runner.dataset.reader import load_dataset
from eval_runner.errors import ExitCode
from eval_runner.keys import Month, dataset_manifest_key, dataset_prefix, extract_prefix
from eval_runner.settings import S3Settings
from eval_runner.storage import S3ObjectStore
from tests.fixtures.dataset import source_env
from tests.fixtures.fieldsim import FieldSources

MONTH = Month(2026, 4)
SHARED = ["sample_id", "as_of", "hardware_revision", "firmware_version", "firmware_version_at_as_of",
          "software_changes", "true_capacity_mah", "missing_capacity_test"]  # fmt: skip


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch,
    s3_settings: S3Settings,
    object_store: S3ObjectStore,
    fieldsim_sources: FieldSources,
) -> FieldSources:
    for name, value in source_env(s3_settings, fieldsim_sources.postgres_dsn, fieldsim_sources.shard_urls).items():
        monkeypatch.setenv(name, value)
    return fieldsim_sources


def _published(store: S3ObjectStore) -> dict[str, bytes]:
    return {key: store.get_bytes(key) for key in store.list(dataset_prefix(MONTH))}


def test_build_publishes_and_rebuilds_byte_identical(env: FieldSources, object_store: S3ObjectStore) -> None:
    assert main(["dataset", "build", "--month", str(MONTH)]) == ExitCode.OK
    first = _published(object_store)
    assert sorted(first) == [
        f"{dataset_prefix(MONTH)}{name}"
        for name in ("dataset.parquet", "events.parquet", "manifest.json", "series.parquet")
    ]
    loaded = load_dataset(object_store, MONTH)
    oracle, oracle_series = month_dataset(env.fleet, str(MONTH))
    assert_frame_equal(loaded.dataset.select(SHARED), oracle.select(SHARED))
    assert_frame_equal(loaded.series, oracle_series)
    assert set(loaded.manifest.sources) == {"sensor_logs", "valve_movements", "shards"}
    assert loaded.manifest.sources["sensor_logs"].rows > 0

    # A fresh fetch from the same sources gives the same bytes, so nothing is rewritten.
    assert main(["dataset", "build", "--month", str(MONTH), "--refetch"]) == ExitCode.OK
    assert _published(object_store) == first
    assert main(["dataset", "show", "--month", str(MONTH)]) == ExitCode.OK


def test_the_same_sources_reached_at_another_address_rebuild_the_same_dataset(
    monkeypatch: pytest.MonkeyPatch, s3_settings: S3Settings, object_store: S3ObjectStore, env: FieldSources
) -> None:
    assert main(["dataset", "build", "--month", str(MONTH)]) == ExitCode.OK
    first = _published(object_store)
    # The database and the shards move: same servers, reached by another name.
    moved_dsn = env.postgres_dsn.replace("127.0.0.1", "localhost")
    moved_urls = tuple(url.replace("127.0.0.1", "localhost") for url in env.shard_urls)
    assert moved_dsn != env.postgres_dsn and moved_urls != env.shard_urls
    for name, value in source_env(s3_settings, moved_dsn, moved_urls).items():
        monkeypatch.setenv(name, value)
    assert main(["dataset", "build", "--month", str(MONTH), "--refetch"]) == ExitCode.OK
    assert _published(object_store) == first
    assert b"127.0.0.1" not in first[dataset_manifest_key(MONTH)]


def test_a_failed_shard_publishes_nothing_and_the_rerun_fetches_only_it(
    env: FieldSources, object_store: S3ObjectStore
) -> None:
    env.set_faults(2, Faults(error_rate=1.0))
    assert main(["dataset", "build", "--month", str(MONTH)]) == ExitCode.TRANSIENT
    assert not object_store.exists(dataset_manifest_key(MONTH))
    assert object_store.list(dataset_prefix(MONTH)) == []
    recorded = object_store.list(extract_prefix(MONTH))
    assert [key.rsplit("/", 1)[1] for key in recorded] == [f"shard={s}.json" for s in (0, 1, 3, 4)]

    env.clear_faults()
    before = [env.requests(s) for s in range(5)]
    assert main(["dataset", "build", "--month", str(MONTH)]) == ExitCode.OK
    after = [env.requests(s) for s in range(5)]
    assert [a - b for a, b in zip(after, before, strict=True) if a - b] == [after[2] - before[2]]
    assert object_store.exists(dataset_manifest_key(MONTH))


def test_throttling_truncation_and_resets_are_retried_to_the_same_result(
    env: FieldSources, object_store: S3ObjectStore
) -> None:
    # At most 4 faulty answers per shard: with 5 attempts every request gets through eventually.
    for shard in range(5):
        faults = Faults(
            throttle_rate=0.15,
            retry_after_s=0,
            truncate_rate=0.1,
            reset_rate=0.1,
            error_rate=0.15,
            budget=4,
            seed=shard,
        )
        env.set_faults(shard, faults)
    assert main(["dataset", "build", "--month", str(MONTH)]) == ExitCode.OK
    assert sum(env.shards[s].faults_given for s in range(5)) > 0
    faulty = object_store.get_bytes(dataset_manifest_key(MONTH))
    env.clear_faults()
    assert main(["dataset", "build", "--month", str(MONTH), "--refetch"]) == ExitCode.OK
    assert object_store.get_bytes(dataset_manifest_key(MONTH)) == faulty


def test_a_month_without_sources_is_a_clear_error(env: FieldSources, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dataset", "build", "--month", "2026-13"]) == ExitCode.CONFIG
    assert "2026-13" in capsys.readouterr().err


def test_a_month_that_has_not_ended_is_refused_before_anything_is_read(
    env: FieldSources, object_store: S3ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    today = datetime.now(UTC).date()
    this_month = Month(today.year, today.month)
    before = [env.requests(s) for s in range(5)]
    assert main(["dataset", "build", "--month", str(this_month)]) == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert str(this_month) in err and today.isoformat() in err and "--allow-unfinished-month" in err
    assert [env.requests(s) for s in range(5)] == before, "no shard may be asked before the month is checked"
    assert object_store.list(dataset_prefix(this_month)) == [] and object_store.list(extract_prefix(this_month)) == []


def test_a_month_the_sources_hold_no_data_for_is_refused_unless_allowed(
    env: FieldSources, object_store: S3ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = Month(2020, 1)  # years before the simulated fleet was installed
    assert main(["dataset", "build", "--month", str(empty)]) == ExitCode.DATA
    err = capsys.readouterr().err
    assert "2020-01" in err and "0 samples" in err and "--allow-no-data" in err
    assert object_store.list(dataset_prefix(empty)) == []
    assert main(["dataset", "build", "--month", str(empty), "--allow-no-data"]) == ExitCode.OK
    assert load_dataset(object_store, empty).dataset.height == 0
