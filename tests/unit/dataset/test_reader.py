"""load_dataset: verified reads, refusal of corrupt or incomparable datasets, builds kept per extractor version."""

from __future__ import annotations

import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eval_runner.contracts import SCHEMA_VERSION
from eval_runner.dataset.manifest import (
    DatasetManifest,
    IncomparableDatasetError,
    SourceFingerprint,
    ensure_comparable,
)
from eval_runner.dataset.publish import encode_dataset, publish_dataset
from eval_runner.dataset.reader import dataset_builds, load_dataset, load_manifest, published_schema_versions
from eval_runner.dataset.shape import EVENTS_SCHEMA
from eval_runner.errors import DataError
from eval_runner.keys import Month, dataset_file_key, dataset_manifest_key
from tests.fakes import MemoryObjectStore
from tests.fixtures.dataset import MONTH, publish_tiny, tiny_dataset

NOW, NEXT = SCHEMA_VERSION, SCHEMA_VERSION + 1  # this extractor's schema version, and a pretended next one


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


def test_a_manifest_kept_as_another_versions_build_is_corrupt(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, _ = tiny_month
    key = dataset_manifest_key(MONTH)
    document = json.loads(store.objects[key])
    document["schema_version"] = NEXT
    store.objects[key] = json.dumps(document).encode()
    with pytest.raises(
        DataError, match=rf"says extractor schema version {NEXT}, but it is kept as the build of version {NOW}"
    ):
        load_dataset(store, MONTH)


def _publish_tiny_build(store: MemoryObjectStore, schema_version: int, *, shift: int = 1) -> str:
    """The tiny month as the build of another extractor: its days_offline read ``shift`` more (other content)."""
    dataset, series = tiny_dataset()
    changed = dataset.with_columns(pl.col("days_offline") + shift)
    source = SourceFingerprint(rows=3, sha256="0" * 64)
    events = pl.DataFrame(schema=EVENTS_SCHEMA)
    objects, manifest = encode_dataset(
        MONTH, changed, series, events, sources={"a": source}, suggestion_policy={}, schema_version=schema_version
    )
    publish_dataset(store, objects, manifest)
    return manifest.content_hash


def test_a_new_extractor_version_publishes_beside_the_old_build(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, old_hash = tiny_month
    old_objects = {key: store.objects[key] for key in store.list("capacity/datasets/")}
    new_hash = _publish_tiny_build(store, NEXT)
    assert new_hash != old_hash
    assert all(store.objects[key] == data for key, data in old_objects.items())  # the old build is untouched
    assert published_schema_versions(store, MONTH) == [NOW, NEXT]
    assert dataset_manifest_key(MONTH, NEXT) == f"capacity/datasets/year=2026/month=04/schema={NEXT}/manifest.json"
    assert load_manifest(store, MONTH).content_hash == old_hash  # what this extractor reads
    assert load_manifest(store, MONTH, schema_version=NEXT).content_hash == new_hash
    assert load_dataset(store, MONTH, schema_version=NEXT).dataset["days_offline"].to_list() == (
        (tiny_dataset()[0]["days_offline"] + 1).to_list()
    )
    assert {v: m.content_hash for v, m in dataset_builds(store, MONTH).items()} == {NOW: old_hash, NEXT: new_hash}


def test_a_month_without_a_build_of_this_version_is_incomparable(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, _ = tiny_month
    _publish_tiny_build(store, NEXT)
    expected = (
        rf"dataset 2026-04 has builds of extractor schema version {NOW}, {NEXT} only; "
        rf"this eval_runner reads version {NEXT + 1}"
    )
    with pytest.raises(IncomparableDatasetError, match=expected + ": incomparable"):
        load_dataset(store, MONTH, schema_version=NEXT + 1)


def test_a_build_of_the_same_version_with_other_content_is_refused(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, _ = tiny_month
    new_hash = _publish_tiny_build(store, NEXT)
    before = list(store.writes)
    with pytest.raises(DataError, match=rf"2026-04 \(extractor schema version {NEXT}\) is already published with "
                                        rf"content hash {new_hash}"):  # fmt: skip
        _publish_tiny_build(store, NEXT, shift=2)
    assert store.writes == before


def test_ensure_comparable_names_the_months() -> None:
    store = MemoryObjectStore()
    publish_tiny(store)
    manifest = DatasetManifest.from_json_bytes(store.objects[dataset_manifest_key(MONTH)], name="m")
    other = manifest.model_copy(update={"month": "2026-03", "schema_version": NEXT})
    assert ensure_comparable([manifest, manifest]) == manifest.schema_version
    with pytest.raises(IncomparableDatasetError, match=f"2026-03: v{NEXT}, 2026-04: v{NOW}"):
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
