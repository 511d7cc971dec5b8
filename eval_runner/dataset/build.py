"""The `dataset build` step: read the field sources for a month, shape, and publish with lineage."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date

import polars as pl

from eval_runner.concurrency import in_order
from eval_runner.dataset.manifest import DatasetManifest, SourceFingerprint
from eval_runner.dataset.publish import encode_dataset, publish_dataset
from eval_runner.dataset.shape import (
    MonthSources,
    SuggestionPolicy,
    read_window,
    records_to_frames,
    sample_events,
    shape_month,
)
from eval_runner.errors import ConfigError, DataError
from eval_runner.hashing import sha256_chunks
from eval_runner.keys import Month, dataset_manifest_key, extract_prefix
from eval_runner.sources.analytics import SENSOR_LOG_SCHEMA, VALVE_MOVEMENT_SCHEMA, AnalyticsSource
from eval_runner.sources.extract import ShardCheckpoint, ShardExtract, StoreCheckpoint
from eval_runner.storage import ObjectStore

log = logging.getLogger(__name__)

# Chunks read at once, one database connection each (the build's reads are most of its time): up to
# READ_AHEAD + 1 chunks' raw rows are in memory.
READ_AHEAD = 2


@dataclass(frozen=True)
class BuiltMonth:
    """A built month before publishing: the encoded objects, the manifest and phase timings."""

    objects: dict[str, bytes]
    manifest: DatasetManifest
    seconds: dict[str, float]


class RowsFingerprint:
    """Fingerprint of rows read from a source, fed chunk by chunk in the reader's order.

    Row hashes with a fixed seed are ~10x cheaper than encoding millions of rows as Parquet. They are
    stable for one polars version, which uv.lock pins per eval_runner version (both in the manifest).
    Feeding a frame in chunks gives the same hash as feeding it whole.
    """

    def __init__(self, schema: Mapping[str, pl.DataType]) -> None:
        self.rows = 0
        self._digest = hashlib.sha256(repr(dict(schema)).encode())

    def update(self, frame: pl.DataFrame) -> None:
        """Add the next rows."""
        self.rows += frame.height
        self._digest.update(frame.hash_rows(seed=0).to_numpy().tobytes())

    def result(self) -> SourceFingerprint:
        """The fingerprint of every row fed so far."""
        return SourceFingerprint(rows=self.rows, sha256=self._digest.hexdigest())


def frame_fingerprint(frame: pl.DataFrame) -> SourceFingerprint:
    """Fingerprint of one frame of rows read from a source."""
    fingerprint = RowsFingerprint(frame.schema)
    fingerprint.update(frame)
    return fingerprint.result()


def shards_fingerprint(extracts: Sequence[ShardExtract]) -> SourceFingerprint:
    """Fingerprint of everything the shards returned, in shard order."""
    ordered = sorted(extracts, key=lambda e: e.shard)
    rows = sum(
        len(e.devices) + len(e.capacity_tests) + len(e.version_events) + len(e.battery_parameters) for e in ordered
    )
    return SourceFingerprint(rows=rows, sha256=sha256_chunks(e.to_json_bytes() for e in ordered))


def build_month(
    month: Month,
    *,
    analytics: AnalyticsSource,
    extracts: Sequence[ShardExtract],
    policy: SuggestionPolicy | None = None,
    chunk_devices: int = 1000,
) -> BuiltMonth:
    """Read the analytics rows for ``month``, shape them with the shard records, and encode the files.

    Devices are processed ``chunk_devices`` at a time (samples depend on their own device only), so
    the raw hourly rows of the whole fleet never sit in memory at once; the result is the same.
    ``seconds["read_analytics"]`` is the time spent waiting for the database, beyond what shaping hid.
    """
    policy = policy or SuggestionPolicy()
    seconds = {"read_analytics": 0.0, "shape": 0.0}
    start, end = read_window(month)
    frames = records_to_frames(
        [d for e in extracts for d in e.devices],
        [t for e in extracts for t in e.capacity_tests],
        [v for e in extracts for v in e.version_events],
        [p for e in extracts for p in e.battery_parameters],
    )
    device_ids = sorted(frames["devices"].filter(pl.col("installed_at") < end)["device_id"].unique().to_list())
    sensor_fp = RowsFingerprint(SENSOR_LOG_SCHEMA)
    movement_fp = RowsFingerprint(VALVE_MOVEMENT_SCHEMA)
    parts: list[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]] = []
    chunks = [device_ids[first : first + chunk_devices] for first in range(0, max(len(device_ids), 1), chunk_devices)]

    def read(chunk: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
        if not chunk:
            return pl.DataFrame(schema=SENSOR_LOG_SCHEMA), pl.DataFrame(schema=VALVE_MOVEMENT_SCHEMA)
        return analytics.sensor_logs(start, end, chunk), analytics.valve_movements(start, end, chunk)

    # Chunks are read ahead, READ_AHEAD at once: the database works on the next chunks (each on its own
    # connection, when the source has that many) while this process shapes the current one.
    with in_order(read, chunks, workers=READ_AHEAD, name="dataset-read") as reads:
        for chunk in chunks:
            started = time.perf_counter()
            sensor_logs, movements = next(reads)
            sensor_fp.update(sensor_logs)  # in chunk order: the fingerprint is of the rows in device order
            movement_fp.update(movements)
            seconds["read_analytics"] += time.perf_counter() - started

            started = time.perf_counter()
            wanted = pl.col("device_id").is_in(chunk)
            sources = MonthSources(
                **{name: frame.filter(wanted) for name, frame in frames.items()},
                sensor_logs=sensor_logs,
                valve_movements=movements,
            )
            dataset, series = shape_month(month, sources, policy)
            parts.append((dataset, series, sample_events(dataset, sources.version_events)))
            seconds["shape"] += time.perf_counter() - started

    started = time.perf_counter()
    # Chunks follow device order, but sorting once more keeps the bytes independent of the chunk size.
    dataset = pl.concat([p[0] for p in parts]).sort("sample_id")
    series = pl.concat([p[1] for p in parts]).sort("sample_id", "ts")
    events = pl.concat([p[2] for p in parts]).sort("sample_id", "effective_at", "component", "version")
    fingerprints = {
        "sensor_logs": sensor_fp.result(),
        "valve_movements": movement_fp.result(),
        "shards": shards_fingerprint(extracts),
    }
    objects, manifest = encode_dataset(
        month, dataset, series, events, sources=fingerprints, suggestion_policy=policy.as_dict()
    )
    seconds["encode"] = time.perf_counter() - started
    log.info("dataset %s: %d samples, %d series rows, %s", month, dataset.height, series.height, seconds)
    return BuiltMonth(objects=objects, manifest=manifest, seconds=seconds)


def require_month_over(month: Month, today: date) -> None:
    """A month is built once it has ended: its dataset is immutable once published, and reviews name it."""
    if today < month.end:
        raise ConfigError(
            f"month {month} has not ended (today is {today.isoformat()}, UTC; it ends {month.end.isoformat()}): "
            "a published dataset is immutable, so a build now would freeze a partial month and block the real "
            "one. Build it after the month ends, or pass --allow-unfinished-month to publish it as it is."
        )


def require_data(built: BuiltMonth, month: Month) -> None:
    """A month whose sources have no data for it is refused: publishing it would block its real build."""
    samples = built.manifest.files["dataset"].rows
    sensor_rows = built.manifest.sources["sensor_logs"].rows
    if samples == 0 or sensor_rows == 0:
        raise DataError(
            f"month {month}: the sources returned no data for it ({samples} samples, {sensor_rows} sensor log "
            "rows); check that the analytics database and the shards hold this month, or pass --allow-no-data "
            "to publish an empty dataset."
        )


def publish(store: ObjectStore, built: BuiltMonth) -> DatasetManifest:
    """Publish a built month (files, verify, manifest last) and return its manifest."""
    publish_dataset(store, built.objects, built.manifest)
    return built.manifest


@dataclass(frozen=True)
class BuildParams:
    """What `dataset build` is asked: the month, today's date (UTC) and the explicit allowances."""

    month: Month
    today: date
    allow_unfinished_month: bool = False
    allow_no_data: bool = False


def run(
    params: BuildParams,
    *,
    store: ObjectStore,
    fetch_extracts: Callable[[ShardCheckpoint], Sequence[ShardExtract]],
    open_analytics: Callable[[], AbstractContextManager[AnalyticsSource]],
) -> BuiltMonth:
    """Build a month and publish it; refused (nothing published) when unfinished or empty unless allowed.

    ``fetch_extracts`` reads every API shard, reusing the records the checkpoint holds (unless told to
    refetch); the analytics database is opened only once the shards are in.
    """
    month = params.month
    if not params.allow_unfinished_month:
        require_month_over(month, params.today)
    extracts = fetch_extracts(StoreCheckpoint(store, extract_prefix(month)))
    with open_analytics() as analytics:
        built = build_month(month, analytics=analytics, extracts=extracts)
    if not params.allow_no_data:
        require_data(built, month)
    publish(store, built)
    return built


def build_summary(month: Month, built: BuiltMonth) -> dict[str, object]:
    """What `dataset build` prints: where the manifest is, its content hash, rows and phase times."""
    manifest = built.manifest
    return {
        "manifest": dataset_manifest_key(month, manifest.schema_version),
        "schema_version": manifest.schema_version,
        "content_hash": manifest.content_hash,
        "rows": {name: entry.rows for name, entry in manifest.files.items()},
        "seconds": {name: round(value, 3) for name, value in built.seconds.items()},
    }
