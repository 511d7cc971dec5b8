"""Read a published monthly dataset, verified against its manifest: what evaluation and review load."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from eval_runner.contracts import DATASET_SCHEMA, SCHEMA_VERSION, SERIES_SCHEMA
from eval_runner.dataset.manifest import DatasetManifest, IncomparableDatasetError, content_hash
from eval_runner.dataset.shape import EVENTS_SCHEMA
from eval_runner.errors import DataError
from eval_runner.keys import (
    DATASET_FILES,
    FIRST_SCHEMA_VERSION,
    Month,
    dataset_manifest_key,
    dataset_of_manifest_key,
    dataset_prefix,
)
from eval_runner.parquet import parquet_to_frame
from eval_runner.storage import ObjectStore

SCHEMAS = {"dataset": DATASET_SCHEMA, "series": SERIES_SCHEMA, "events": EVENTS_SCHEMA}


@dataclass(frozen=True)
class LoadedDataset:
    """A month's dataset as published: one row per sample, its series, and the manifest vouching for both."""

    dataset: pl.DataFrame
    series: pl.DataFrame
    manifest: DatasetManifest
    events: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=EVENTS_SCHEMA))  # for plots

    @property
    def content_hash(self) -> str:
        """The identity a review manifest must name."""
        return self.manifest.content_hash


def published_schema_versions(store: ObjectStore, month: Month) -> list[int]:
    """The extractor schema versions the month has a published build of (its manifest exists), ascending."""
    builds = (dataset_of_manifest_key(key) for key in store.list(dataset_prefix(month, FIRST_SCHEMA_VERSION)))
    return sorted(build[1] for build in builds if build is not None and build[0] == month)


def load_manifest(store: ObjectStore, month: Month, *, schema_version: int = SCHEMA_VERSION) -> DatasetManifest:
    """Read and check the manifest of the month's build by extractor ``schema_version`` (the running one's).

    Without that build the month is not published for this extractor: IncomparableDatasetError when it has
    builds of other versions only (they are kept, and are not comparable with this one), else DataError.
    """
    key = dataset_manifest_key(month, schema_version)
    if not store.exists(key):
        others = published_schema_versions(store, month)
        if others:
            raise IncomparableDatasetError(
                f"dataset {month} has builds of extractor schema version {', '.join(map(str, others))} only; this "
                f"eval_runner reads version {schema_version}: incomparable. Build the month with this extractor "
                "(`dataset build` publishes beside the old builds, which stay as they are), then review it"
            )
        raise DataError(f"dataset {month}: {key!r} does not exist; the month is not built (or not published)")
    manifest = DatasetManifest.from_json_bytes(store.get_bytes(key), name=key)
    if manifest.month != str(month):
        raise DataError(f"{key}: manifest is for month {manifest.month}, expected {month}")
    if manifest.schema_version != schema_version:
        raise DataError(
            f"{key}: the manifest says extractor schema version {manifest.schema_version}, but it is kept as the "
            f"build of version {schema_version}; manifest corrupt or moved"
        )
    expected = content_hash({name: entry.sha256 for name, entry in manifest.files.items()})
    if manifest.content_hash != expected or set(manifest.files) != set(DATASET_FILES):
        raise DataError(f"{key}: content_hash or file list does not match the files it lists; manifest corrupt")
    return manifest


def load_dataset(
    store: ObjectStore, month: Month, *, schema_version: int = SCHEMA_VERSION, with_series: bool = True
) -> LoadedDataset:
    """Load a month's dataset, verifying every file's hash, row count and schema against the manifest.

    ``with_series=False`` skips the (large) series file and returns an empty series frame.
    """
    manifest = load_manifest(store, month, schema_version=schema_version)
    frames: dict[str, pl.DataFrame] = {}
    for name in DATASET_FILES:
        if name == "series" and not with_series:
            frames[name] = pl.DataFrame(schema=SERIES_SCHEMA)
            continue
        entry = manifest.files[name]
        frame = parquet_to_frame(store.get_bytes(entry.key, expected_sha256=entry.sha256), name=entry.key)
        if frame.height != entry.rows:
            raise DataError(f"{entry.key}: {frame.height} rows, the manifest says {entry.rows}")
        if frame.schema != pl.Schema(SCHEMAS[name]):
            raise DataError(f"{entry.key}: schema {dict(frame.schema)} does not match the contract")
        frames[name] = frame
    return LoadedDataset(dataset=frames["dataset"], series=frames["series"], manifest=manifest, events=frames["events"])


def dataset_builds(store: ObjectStore, month: Month) -> dict[int, DatasetManifest]:
    """Every published build of the month by extractor schema version, each manifest checked."""
    return {
        version: load_manifest(store, month, schema_version=version)
        for version in published_schema_versions(store, month)
    }
