"""Publish a built month: deterministic Parquet, a manifest with lineage, the manifest written last."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from eval_runner import __version__
from eval_runner.contracts import SCHEMA_VERSION
from eval_runner.dataset.manifest import DatasetManifest, FileEntry, SourceFingerprint, content_hash
from eval_runner.dataset.reader import SCHEMAS
from eval_runner.engines import installed_engines
from eval_runner.errors import DataError
from eval_runner.hashing import sha256_bytes
from eval_runner.keys import Month, dataset_file_key, dataset_manifest_key
from eval_runner.parquet import frame_to_parquet
from eval_runner.storage import ObjectStore


def encode_dataset(
    month: Month,
    dataset: pl.DataFrame,
    series: pl.DataFrame,
    events: pl.DataFrame,
    *,
    sources: Mapping[str, SourceFingerprint],
    suggestion_policy: Mapping[str, float],
    schema_version: int = SCHEMA_VERSION,
) -> tuple[dict[str, bytes], DatasetManifest]:
    """Encode the files and their manifest; pure, so a rebuild can be compared without a store.

    The keys are those of the ``schema_version`` build (the running extractor's unless a test says).
    """
    named = {"dataset": dataset, "series": series, "events": events}
    for name, frame in named.items():
        schema = SCHEMAS[name]
        if frame.schema != pl.Schema(schema):
            raise DataError(f"{month} {name}: schema {dict(frame.schema)} does not match the contract")
    objects: dict[str, bytes] = {}
    entries: dict[str, FileEntry] = {}
    for name, frame in named.items():
        key = dataset_file_key(month, name, schema_version)
        data = frame_to_parquet(frame)
        objects[key] = data
        entries[name] = FileEntry(key=key, sha256=sha256_bytes(data), rows=frame.height, size=len(data))
    manifest = DatasetManifest(
        month=str(month),
        schema_version=schema_version,
        eval_runner_version=__version__,
        engines=installed_engines(),
        content_hash=content_hash({name: entry.sha256 for name, entry in entries.items()}),
        files=entries,
        sources=dict(sorted(sources.items())),
        suggestion_policy=dict(sorted(suggestion_policy.items())),
    )
    return objects, manifest


def publish_dataset(store: ObjectStore, objects: Mapping[str, bytes], manifest: DatasetManifest) -> None:
    """Write the files, verify them, then the manifest; a rebuild with equal content writes nothing new.

    Each extractor schema version has its own build of the month, so a new extractor publishes beside the
    old build and leaves it as it was. A build of the same version with different content is a DataError:
    published builds are immutable because reviews and evaluations name their content hash.
    """
    month = Month.parse(manifest.month)
    key = dataset_manifest_key(month, manifest.schema_version)
    if store.exists(key):
        published = DatasetManifest.from_json_bytes(store.get_bytes(key), name=key)
        if published != manifest:
            raise DataError(
                f"dataset {month} (extractor schema version {manifest.schema_version}) is already published "
                f"with content hash {published.content_hash}; this build has {manifest.content_hash}: the "
                "sources changed, or the extractor changed without a new SCHEMA_VERSION (a new version is "
                "published beside the old build). Published builds are immutable because reviews and "
                "evaluations name their hash"
            )
    store.publish(objects, marker_key=key, marker=manifest.to_json_bytes())
