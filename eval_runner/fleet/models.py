"""Contracts between the fleet steps (snapshot -> plan -> shard -> merge), stored as JSON next to the data."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eval_runner.errors import DataError

Mode = Literal["fleet", "fleet-q10-distributions", "configuration"]
MODES: tuple[Mode, ...] = ("fleet", "fleet-q10-distributions", "configuration")
Chemistry = Literal["alkaline", "lithium"]
M = TypeVar("M", bound=BaseModel)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, no timestamps of writing) so a rerun writes identical bytes."""
        return (self.model_dump_json(indent=1) + "\n").encode()


def parse_model(model: type[M], data: bytes, *, name: str) -> M:
    """Parse a stored JSON object; ``name`` (the key) goes into the error when it does not match."""
    try:
        return model.model_validate_json(data)
    except ValidationError as error:
        raise DataError(f"{name}: not a valid {model.__name__}: {error}") from error


class SnapshotBatch(_Model):
    """One batch of the snapshot: its devices and the hashes of its input objects."""

    batch: int = Field(ge=0)
    devices: int = Field(ge=1)
    first_device: str
    last_device: str
    samples_sha256: str
    series_sha256: str
    series_rows: int = Field(ge=0)


class SnapshotManifest(_Model):
    """What the snapshot read from the sources; written last, so its presence means complete."""

    run_id: str
    as_of: datetime
    series_days: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    n_devices: int = Field(ge=1)
    devices_sha256: str
    batches: tuple[SnapshotBatch, ...]


class ParameterTarget(_Model):
    """The battery parameters a configuration run resets a chemistry to."""

    nominal_capacity_mah: float = Field(gt=0)
    cutoff_mv: int = Field(gt=0)


class ConfigurationSettings(_Model):
    """How a configuration run behaves; fixed in the plan so every shard and every retry agrees."""

    apply: bool = False
    max_error_rate: float = Field(default=0.05, ge=0, le=1)
    # Below this many attempted writes a rate says nothing (one failure of one write is 100 %).
    min_writes: int = Field(default=20, ge=1)
    canary_batch: int = Field(default=0, ge=0)
    targets: dict[Chemistry, ParameterTarget]

    def target_map(self) -> dict[str, ParameterTarget]:
        """Targets keyed by chemistry name."""
        return {str(chemistry): target for chemistry, target in self.targets.items()}


class GateBinding(_Model):
    """The gate decision a rollout ships under: the pass it cites and the image that decision judged.

    ``candidate_image`` is what the decision recorded; ``image`` is the reference the runner pods pull
    (``repository@sha256:...``), the same digest through the pods' registry address.
    """

    release_id: str
    verdict: Literal["pass"]
    library_version: str
    candidate_image: str
    image: str


class Plan(_Model):
    """Which shard processes which batches, in which mode, and under which gate decision (or override).

    A run `fleet prepare` planned has exactly one of ``gate`` and ``gate_override_reason``; both default
    to None so plans written before the gated rollout still parse.
    """

    run_id: str
    mode: Mode
    as_of: datetime
    n_devices: int
    n_batches: int
    snapshot_sha256: str
    shards: dict[str, tuple[int, ...]]
    configuration: ConfigurationSettings | None = None
    gate: GateBinding | None = None
    gate_override_reason: str | None = None

    def to_json_bytes(self) -> bytes:
        """Canonical JSON; an ungated plan (``fleet plan`` alone) leaves the gate fields out, as before them."""
        unset = {name for name in ("gate", "gate_override_reason") if getattr(self, name) is None}
        return (self.model_dump_json(indent=1, exclude=unset) + "\n").encode()

    @property
    def result_mode(self) -> str:
        """The ``mode=`` of the published result; a dry run never shares a key with a real apply."""
        if self.mode == "configuration" and self.configuration is not None and not self.configuration.apply:
            return "configuration-dry-run"
        return self.mode


class DoneMarker(_Model):
    """Written after a batch result verified: names the result's hash and what produced it."""

    batch: int
    result_sha256: str
    devices: int
    library_version: str
    failures: int = 0


class Halt(_Model):
    """Why a configuration run stopped: the shard's writes so far, whose error rate passed the threshold."""

    batch: int
    attempted: int
    failed: int
    error_rate: float
    max_error_rate: float
    first_errors: tuple[str, ...]
    shard: str = ""


class Summary(_Model):
    """Written last next to the published results."""

    run_id: str
    mode: str
    library_version: str
    as_of: datetime
    devices: int
    batches: int
    results_sha256: str
    counts: dict[str, int] = Field(default_factory=dict)
    extra_objects: dict[str, str] = Field(default_factory=dict)
