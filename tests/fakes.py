"""The fakes of the test suite, in one place: unit tests of logic use them; integration tests use the real services.

MemoryObjectStore subclasses the real store's semantics; the others stand in for the library (FakePredictor),
MLflow (FakeTracker, FakeRuntime) and the shard API (FakeShardApi for the battery parameters, FakeShard
for the reads an extraction makes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol

import httpx
import numpy as np
import polars as pl

from eval_runner.contracts import PREDICTION_SCHEMA, BatteryParameters, shard_of
from eval_runner.errors import DataError, TransientError
from eval_runner.hashing import sha256_bytes
from eval_runner.runtime import Runtime
from eval_runner.settings import MlflowSettings
from eval_runner.sources.shards import StaleETagError, VersionedParameters
from eval_runner.storage import ImmutableStore, KeyTakenError, ObjectInfo
from eval_runner.tracking import ModelVersionRecord, RunRecord


class MemoryObjectStore(ImmutableStore):
    """An ObjectStore in a dict, with the same immutability and publish semantics as S3ObjectStore.

    ``writes`` records every key written, in order, so tests can assert what was (not) published.
    """

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.writes: list[str] = []

    def _write(self, key: str, data: bytes, sha256: str, *, if_absent: bool) -> None:
        if if_absent and key in self.objects:
            raise KeyTakenError(f"put memory://{key}: the key exists already")
        self.objects[key] = data
        self.writes.append(key)

    def _write_file(self, key: str, path: Path, sha256: str, *, if_absent: bool) -> None:
        self._write(key, path.read_bytes(), sha256, if_absent=if_absent)

    def _read(self, key: str) -> bytes:
        if key not in self.objects:
            raise DataError(f"get memory://{key}: no such object")
        return self.objects[key]

    def _read_to_file(self, key: str, path: Path) -> None:
        path.write_bytes(self._read(key))

    def head(self, key: str) -> ObjectInfo | None:
        """Size and hash of a stored object."""
        data = self.objects.get(key)
        return None if data is None else ObjectInfo(key=key, size=len(data), sha256=sha256_bytes(data))

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted."""
        return sorted(key for key in self.objects if key.startswith(prefix))


@dataclass
class FakePredictor:
    """A generation-2 library stand-in.

    Given ``truth`` (sample_id -> true capacity, runtime) it predicts the truth times a per-revision bias
    and multiplicative noise, seeded per sample (an evaluation that judges versions); without, capacity
    from each sample's last voltage, vectorised so a fleet of thousands of devices runs in a unit test.
    """

    library_version: str = "0.0.0+fake"
    truth: Mapping[str, tuple[float, float]] | None = None
    bias: Mapping[str, float] = field(default_factory=dict)
    noise: float = 0.2
    generation: int = 2
    seed: int = 0
    calls: int = 0

    def predict(self, samples: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
        """One row per sample, in order."""
        self.calls += 1
        if self.truth is None:
            return _from_last_voltage(samples, series)
        rows = []
        for sample_id, revision in samples.select("sample_id", "hardware_revision").iter_rows():
            capacity, runtime = self.truth[sample_id]
            rng = np.random.default_rng([self.seed, int(sample_id.split("/")[0].split("-")[1])])
            factor = self.bias.get(revision, 1.0) * float(np.exp(rng.normal(0.0, self.noise)))
            rows.append((sample_id, capacity * factor * 0.8, capacity * factor, capacity * factor * 1.2,
                         runtime * factor * 0.8, runtime * factor, runtime * factor * 1.2))  # fmt: skip
        return pl.DataFrame(rows, schema=PREDICTION_SCHEMA, orient="row")


def _from_last_voltage(samples: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
    last = series.group_by("sample_id").agg(pl.col("battery_mv").drop_nulls().last().alias("mv"))
    soc = ((pl.col("mv") - 2200) / 800).clip(0, 1)
    p50 = soc * pl.col("nominal_capacity_mah")
    out = samples.select("sample_id", "nominal_capacity_mah").join(last, on="sample_id", how="left")
    return out.select(
        "sample_id",
        (p50 * 0.8).alias("capacity_mah_p10"),
        p50.alias("capacity_mah_p50"),
        (p50 * 1.2).alias("capacity_mah_p90"),
        (p50 * 0.8 / 3).alias("runtime_days_p10"),
        (p50 / 3).alias("runtime_days_p50"),
        (p50 * 1.2 / 3).alias("runtime_days_p90"),
    ).select(pl.col(n).cast(t) for n, t in PREDICTION_SCHEMA.items())


@dataclass
class _FakeRun:
    run_id: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)  # the logging calls, in order: what a real run's requests would be

    def log_batch(
        self, *, params: Mapping[str, object] | None = None, metrics: Mapping[str, float] | None = None
    ) -> None:
        self.calls.append("log_batch")
        self.params.update({k: str(v) for k, v in (params or {}).items()})
        self.metrics.update({k: float(v) for k, v in (metrics or {}).items()})

    def log_artifacts(self, files: Mapping[str, bytes]) -> None:
        self.calls.append("log_artifacts")
        self.artifacts.update(files)


@dataclass
class FakeTracker:
    """In-memory Tracker: runs by experiment, a registry of model versions and aliases."""

    runs: list[tuple[str, str, dict[str, str], _FakeRun]] = field(default_factory=list)
    versions: dict[str, list[ModelVersionRecord]] = field(default_factory=dict)
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    searches: int = 0

    @contextmanager
    def run(self, experiment: str, name: str, *, tags: Mapping[str, str] | None = None) -> Iterator[_FakeRun]:
        tracked = _FakeRun(uuid.uuid4().hex)
        yield tracked
        self.runs.append((experiment, name, dict(tags or {}), tracked))

    def find_runs(self, experiment: str, *, tags: Mapping[str, str]) -> list[RunRecord]:
        self.searches += 1
        return [
            RunRecord(run.run_id, name, run.params, run.metrics, run_tags)
            for exp, name, run_tags, run in reversed(self.runs)
            if exp == experiment and all(run_tags.get(k) == v for k, v in tags.items())
        ]

    def alias_version(self, model: str, alias: str) -> ModelVersionRecord | None:
        version = self.aliases.get((model, alias))
        return next((v for v in self.versions.get(model, []) if v.version == version), None)

    def promote(self, model: str, *, library_version: str, run_id: str, alias: str) -> ModelVersionRecord:
        known = self.versions.setdefault(model, [])
        target = next((v for v in known if v.library_version == library_version), None)
        if target is None:
            target = ModelVersionRecord(model, str(len(known) + 1), library_version, run_id)
            known.append(target)
        self.aliases[(model, alias)] = target.version
        return target


class FakeRuntime(Runtime):
    """The CLI's runtime with the fake tracker and an in-memory store in place of MLflow and S3."""

    def __init__(self, tracker: FakeTracker, store: MemoryObjectStore) -> None:
        super().__init__()
        self._tracker = tracker
        self._store = store

    def tracker(self) -> FakeTracker:  # type: ignore[override]  # the fake stands in for MlflowTracker
        return self._tracker

    def store(self) -> MemoryObjectStore:  # type: ignore[override]
        return self._store

    def mlflow_settings(self) -> MlflowSettings:
        return MlflowSettings(tracking_uri="http://unused")


class DeviceTable(Protocol):
    """A source of device rows (tests.fixtures.fleet's sources): what FakeShardApi.for_source reads."""

    def device_ids(self) -> list[str]:
        """Every device id."""
        ...

    def devices(self, device_ids: Sequence[str], as_of: datetime) -> pl.DataFrame:
        """One row per device: its battery parameters at ``as_of``."""
        ...


@dataclass
class FakeShardApi:
    """The battery-parameters half of the shard API in memory: ETags, idempotency keys, PUT counts, faults.

    Like the real shard it caches every answer (a 412 too) under its Idempotency-Key. Faults, each
    once per device: ``lose_answer`` applies the PUT and then fails as a lost answer would;
    ``drop_put`` fails the PUT before it reaches the device; ``interfere`` has another writer change
    the device right before our PUT (so it gets a 412).
    """

    parameters: dict[str, BatteryParameters]
    failing: set[str] = field(default_factory=set)  # device ids whose calls raise TransientError
    puts: dict[str, int] = field(default_factory=dict)  # PUTs that reached the "shard", per device
    applied: dict[str, int] = field(default_factory=dict)  # PUTs that changed the device, per device
    versions: dict[str, int] = field(default_factory=dict)
    seen_keys: dict[str, VersionedParameters | StaleETagError] = field(default_factory=dict)
    lose_answer: set[str] = field(default_factory=set)
    drop_put: set[str] = field(default_factory=set)
    interfere: set[str] = field(default_factory=set)

    def _etag(self, device_id: str) -> str:
        return f'"{device_id}-{self.versions.get(device_id, 0)}"'

    async def get_battery_parameters(self, device_id: str) -> VersionedParameters:
        """Current parameters and ETag."""
        if device_id in self.failing:
            raise TransientError(f"shard GET {device_id}: answered 503; gave up after 5 attempts")
        return VersionedParameters(self.parameters[device_id], self._etag(device_id))

    async def put_battery_parameters(
        self, parameters: BatteryParameters, *, if_match: str, idempotency_key: str
    ) -> VersionedParameters:
        """Replace parameters; a repeated key replays the first answer."""
        device_id = parameters.device_id
        if device_id in self.drop_put:
            self.drop_put.discard(device_id)
            raise TransientError(f"shard PUT {device_id}: answered 503; gave up after 5 attempts")
        if device_id in self.interfere:
            self.interfere.discard(device_id)
            self.versions[device_id] = self.versions.get(device_id, 0) + 1  # someone else's write
        self.puts[device_id] = self.puts.get(device_id, 0) + 1
        if idempotency_key in self.seen_keys:
            seen = self.seen_keys[idempotency_key]
            if isinstance(seen, StaleETagError):
                raise seen
            return seen
        if if_match != self._etag(device_id):
            stale = StaleETagError(f"PUT {device_id}: If-Match stale")
            self.seen_keys[idempotency_key] = stale
            raise stale
        self.parameters[device_id] = parameters
        self.versions[device_id] = self.versions.get(device_id, 0) + 1
        self.applied[device_id] = self.applied.get(device_id, 0) + 1
        answer = VersionedParameters(parameters, self._etag(device_id))
        self.seen_keys[idempotency_key] = answer
        if device_id in self.lose_answer:
            self.lose_answer.discard(device_id)
            raise TransientError(f"shard PUT {device_id}: timed out (ReadTimeout); gave up after 5 attempts")
        return answer

    async def __aenter__(self) -> FakeShardApi:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    @classmethod
    def for_source(cls, source: DeviceTable, as_of: datetime) -> FakeShardApi:
        """Parameters equal to what ``source`` reports at ``as_of``."""
        frame = source.devices(source.device_ids(), as_of)
        return cls(
            {
                row["device_id"]: BatteryParameters(
                    device_id=row["device_id"],
                    chemistry=row["battery_chemistry"],
                    nominal_capacity_mah=row["nominal_capacity_mah"],
                    cutoff_mv=row["cutoff_mv"],
                    installed_at=row["battery_installed_at"],
                )
                for row in frame.iter_rows(named=True)
            }
        )


class FakeShard:
    """One API shard of one device behind httpx.MockTransport; ``broken`` answers 503, ``lost_parameters`` none."""

    def __init__(self, shard: int) -> None:
        self.device = next(f"dev-{i:04d}" for i in range(1000) if shard_of(f"dev-{i:04d}") == shard)
        self.calls = 0
        self.broken = False
        self.lost_parameters = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.broken:
            return httpx.Response(503, json={"error": "down"})
        path = request.url.path
        items: list[dict[str, object]]
        if path == "/v1/devices":
            items = [{"device_id": self.device, "site_id": "s", "installed_at": "2025-01-01T00:00:00Z"}]
        elif path == "/v1/capacity-tests":
            items = [
                {
                    "test_id": f"t-{self.device}",
                    "device_id": self.device,
                    "tested_at": "2026-04-20T10:00:00Z",
                    "remaining_mah": 1000.0,
                    "remaining_runtime_days": 100.0,
                    "runtime_source": "estimated",
                    "runtime_censored": False,
                }
            ]
        elif path == "/v1/version-history":
            items = [
                {"device_id": self.device, "effective_at": "2025-01-01T00:00:00Z", "component": c, "version": "1"}
                for c in ("hardware", "firmware")
            ]
        elif path == "/v1/battery-parameters":
            items = [
                {
                    "device_id": self.device,
                    "chemistry": "alkaline",
                    "nominal_capacity_mah": 2600.0,
                    "cutoff_mv": 2200,
                    "installed_at": "2025-01-01T00:00:00Z",
                }
            ][: 0 if self.lost_parameters else 1]
        else:
            return httpx.Response(404, json={"error": "not_found", "detail": path})
        return httpx.Response(200, json={"items": items, "next_page_token": None})
