"""The dataset manifest: lineage and content identity of one month's dataset (the marker written last).

The manifest holds nothing that changes between rebuilds from the same sources (no build time, no
host), so a rebuild gives byte-identical files and an identical manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

from pydantic import Field

from eval_runner.engines import EngineVersions
from eval_runner.errors import DataError
from eval_runner.hashing import sha256_bytes
from eval_runner.stored import RecordPart, StoredRecord

MANIFEST_KIND = "capacity-dataset"


class IncomparableDatasetError(DataError):
    """Datasets built by different extractor schema versions must not be evaluated together."""


class FileEntry(RecordPart):
    """One published file of the dataset."""

    key: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    rows: int = Field(ge=0)
    size: int = Field(ge=0)


class SourceFingerprint(RecordPart):
    """What was read from one source: how many rows, and a hash of exactly those rows.

    Never where the source was reached: the same rows served from a new host or port are the same content,
    so a moved database or shard rebuilds to the same manifest.
    """

    rows: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class DatasetManifest(StoredRecord):
    """manifest.json of capacity/datasets/year=YYYY/month=MM/."""

    record_type: ClassVar[str] = "dataset manifest"

    kind: Literal["capacity-dataset"] = "capacity-dataset"
    month: str
    schema_version: int
    eval_runner_version: str
    engines: EngineVersions
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="identity of dataset + series")
    files: dict[str, FileEntry]
    sources: dict[str, SourceFingerprint]
    suggestion_policy: dict[str, float]


def content_hash(file_hashes: Mapping[str, str]) -> str:
    """Identity of a dataset: a hash over its files' names and hashes, in name order."""
    return sha256_bytes("".join(f"{name}={digest}\n" for name, digest in sorted(file_hashes.items())).encode())


def ensure_comparable(manifests: Sequence[DatasetManifest]) -> int:
    """Return the shared schema version, or raise IncomparableDatasetError naming the months that differ."""
    versions = {m.schema_version for m in manifests}
    if len(versions) > 1:
        detail = ", ".join(f"{m.month}: v{m.schema_version}" for m in sorted(manifests, key=lambda m: m.month))
        raise IncomparableDatasetError(
            f"datasets were built by different extractor schema versions ({detail}); they cannot be compared"
        )
    return versions.pop() if versions else 0
