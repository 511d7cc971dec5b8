"""load_dataset: verified reads, and refusal of corrupt or incomparable datasets."""

from __future__ import annotations

import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eval_runner.dataset.manifest import (
    DatasetManifest,
    IncomparableDatasetError,
    SourceFingerprint,
    ensure_comparable,
)
from eval_runner.dataset.publish import encode_dataset, publish_dataset
from eval_runner.dataset.reader import load_dataset
from eval_runner.dataset.shape import EVENTS_SCHEMA
from eval_runner.errors import DataError
from eval_runner.keys import Month, dataset_file_key, dataset_manifest_key
from tests.fakes import MemoryObjectStore
from tests.fixtures.dataset import MONTH, publish_tiny, tiny_dataset


def test_published_month_loads_equal_to_what_was_built(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, digest = tiny_month
    loaded = load_dataset(store, MONTH)
    dataset, series = tiny_dataset()
    assert_frame_equal(loaded.dataset, dataset)
    assert_frame_equal(loaded.series, series)
    assert loaded.content_hash == digest
    assert store.writes[-1] == dataset_manifest_key(MONTH)  # the manifest is the marker: written last


def test_republishing_the_same_content_writes_nothing(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, digest = tiny_month
    before = list(store.writes)
    assert publish_tiny(store) == digest
    assert store.writes == before


def test_missing_manifest_means_not_published(dataset_store: MemoryObjectStore) -> None:
    with pytest.raises(DataError, match=r"dataset 2026-05: .*manifest.json' does not exist"):
        load_dataset(dataset_store, Month(2026, 5))


def test_tampered_file_fails_its_hash(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, _ = tiny_month
    store.objects[dataset_file_key(MONTH, "dataset")] += b"x"
    with pytest.raises(DataError, match="does not match the expected"):
        load_dataset(store, MONTH)


def test_other_schema_version_is_incomparable(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, _ = tiny_month
    key = dataset_manifest_key(MONTH)
    document = json.loads(store.objects[key])
    document["schema_version"] = 0
    store.objects[key] = json.dumps(document).encode()
    with pytest.raises(IncomparableDatasetError, match=r"schema version 0.*incomparable"):
        load_dataset(store, MONTH)


def test_ensure_comparable_names_the_months() -> None:
    store = MemoryObjectStore()
    publish_tiny(store)
    manifest = DatasetManifest.from_json_bytes(store.objects[dataset_manifest_key(MONTH)], name="m")
    other = manifest.model_copy(update={"month": "2026-03", "schema_version": 2})
    assert ensure_comparable([manifest, manifest]) == manifest.schema_version
    with pytest.raises(IncomparableDatasetError, match="2026-03: v2, 2026-04: v1"):
        ensure_comparable([manifest, other])


def test_a_month_published_with_other_content_is_refused_before_any_write(
    tiny_month: tuple[MemoryObjectStore, str],
) -> None:
    store, digest = tiny_month
    before = list(store.writes)
    dataset, series = tiny_dataset()
    changed = dataset.with_columns(pl.col("days_offline") + 1)
    source = SourceFingerprint(rows=3, sha256="0" * 64)
    objects, manifest = encode_dataset(
        MONTH, changed, series, pl.DataFrame(schema=EVENTS_SCHEMA), sources={"a": source}, suggestion_policy={}
    )
    with pytest.raises(DataError, match=f"already published with content hash {digest}"):
        publish_dataset(store, objects, manifest)
    assert store.writes == before
