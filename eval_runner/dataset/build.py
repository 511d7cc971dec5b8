"""The `dataset build` step: read the field sources for a month, shape, and publish with lineage."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

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
from eval_runner.hashing import sha256_chunks
from eval_runner.keys import Month
from eval_runner.sources.analytics import AnalyticsSource
from eval_runner.sources.extract import ShardExtract
from eval_runner.storage import ObjectStore

log = logging.getLogger(__name__)


def extract_prefix(month: Month) -> str:
    """Folder of the per-shard records of a month's extraction (scratch state for reruns)."""
    return f"capacity/extracts/{month.partition}/"


@dataclass(frozen=True)
class BuiltMonth:
    """A built month before publishing: the encoded objects, the manifest and phase timings."""

    objects: dict[str, bytes]
    manifest: DatasetManifest
    seconds: dict[str, float]


def frame_fingerprint(location: str, frame: pl.DataFrame) -> SourceFingerprint:
    """Fingerprint of rows read from a source: equal rows (in the reader's order) give equal hashes.

    Row hashes with a fixed seed are ~10x cheaper than encoding millions of rows as Parquet. They are
    stable for one polars version, which uv.lock pins per eval_runner version (both in the manifest).
    """
    digest = hashlib.sha256(repr(dict(frame.schema)).encode())
    digest.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    return SourceFingerprint(location=location, rows=frame.height, sha256=digest.hexdigest())


def shards_fingerprint(location: str, extracts: Sequence[ShardExtract]) -> SourceFingerprint:
    """Fingerprint of everything the shards returned, in shard order."""
    ordered = sorted(extracts, key=lambda e: e.shard)
    rows = sum(
        len(e.devices) + len(e.capacity_tests) + len(e.version_events) + len(e.battery_parameters) for e in ordered
    )
    return SourceFingerprint(location=location, rows=rows, sha256=sha256_chunks(e.to_json_bytes() for e in ordered))


def build_month(
    month: Month,
    *,
    analytics: AnalyticsSource,
    extracts: Sequence[ShardExtract],
    shard_location: str,
    policy: SuggestionPolicy | None = None,
) -> BuiltMonth:
    """Read the analytics rows for ``month``, shape them with the shard records, and encode the files."""
    policy = policy or SuggestionPolicy()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    start, end = read_window(month)
    sensor_logs = analytics.sensor_logs(start, end)
    movements = analytics.valve_movements(start, end)
    seconds["read_analytics"] = time.perf_counter() - started

    started = time.perf_counter()
    frames = records_to_frames(
        [d for e in extracts for d in e.devices],
        [t for e in extracts for t in e.capacity_tests],
        [v for e in extracts for v in e.version_events],
        [p for e in extracts for p in e.battery_parameters],
    )
    sources = MonthSources(**frames, sensor_logs=sensor_logs, valve_movements=movements)
    dataset, series = shape_month(month, sources, policy)
    events = sample_events(dataset, sources.version_events)
    seconds["shape"] = time.perf_counter() - started

    started = time.perf_counter()
    fingerprints = {
        "sensor_logs": frame_fingerprint(f"{analytics.location}/sensor_logs", sensor_logs),
        "valve_movements": frame_fingerprint(f"{analytics.location}/valve_movements", movements),
        "shards": shards_fingerprint(shard_location, extracts),
    }
    objects, manifest = encode_dataset(
        month, dataset, series, events, sources=fingerprints, suggestion_policy=policy.as_dict()
    )
    seconds["encode"] = time.perf_counter() - started
    log.info("dataset %s: %d samples, %d series rows, %s", month, dataset.height, series.height, seconds)
    return BuiltMonth(objects=objects, manifest=manifest, seconds=seconds)


def publish(store: ObjectStore, built: BuiltMonth) -> DatasetManifest:
    """Publish a built month (files, verify, manifest last) and return its manifest."""
    publish_dataset(store, built.objects, built.manifest)
    return built.manifest
