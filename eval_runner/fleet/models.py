"""Contracts between the fleet steps (snapshot -> plan -> shard -> merge), stored as JSON next to the data.

Each is a ``StoredRecord``: canonical JSON (sorted keys, nothing of when it was written), so a rerun writes
identical bytes. Objects written before that (keys in field order, indented by 1) parse the same; write
them with ``storage.put_record`` / ``stored_encoding``, which take such an object for the record it holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from eval_runner.stored import RecordPart, StoredRecord

Mode = Literal["fleet", "fleet-q10-distributions", "configuration"]
MODES: tuple[Mode, ...] = ("fleet", "fleet-q10-distributions", "configuration")
Chemistry = Literal["alkaline", "lithium"]

# The error-rate halt of configuration writes (a rollout's shards and a rollback): above this share of
# failed writes, once at least DEFAULT_MIN_WRITES were attempted (one failure of one write is 100 %).
DEFAULT_MAX_ERROR_RATE = 0.05
DEFAULT_MIN_WRITES = 20
# Devices a rollback restores first; the rest only if they all succeed.
DEFAULT_ROLLBACK_CANARY = 10


class SnapshotBatch(RecordPart):
    """One batch of the snapshot: its devices and the hashes of its input objects."""

    batch: int = Field(ge=0)
    devices: int = Field(ge=1)
    first_device: str
    last_device: str
    samples_sha256: str
    series_sha256: str
    series_rows: int = Field(ge=0)


class SnapshotManifest(StoredRecord):
    """What the snapshot read from the sources; written last, so its presence means complete."""

    record_type: ClassVar[str] = "fleet snapshot manifest"

    run_id: str
    as_of: datetime
    series_days: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    n_devices: int = Field(ge=1)
    devices_sha256: str
    batches: tuple[SnapshotBatch, ...]


class ParameterTarget(RecordPart):
    """The battery parameters a configuration run resets a chemistry to."""

    nominal_capacity_mah: float = Field(gt=0)
    cutoff_mv: int = Field(gt=0)


class ConfigurationSettings(RecordPart):
    """How a configuration run behaves; fixed in the plan so every shard and every retry agrees."""

    apply: bool = False
    max_error_rate: float = Field(default=DEFAULT_MAX_ERROR_RATE, ge=0, le=1)
    # Below this many attempted writes a rate says nothing (one failure of one write is 100 %).
    min_writes: int = Field(default=DEFAULT_MIN_WRITES, ge=1)
    canary_batch: int = Field(default=0, ge=0)
    targets: dict[Chemistry, ParameterTarget]

    def target_map(self) -> dict[str, ParameterTarget]:
        """Targets keyed by chemistry name."""
        return {str(chemistry): target for chemistry, target in self.targets.items()}


class GateBinding(RecordPart):
    """The gate decision a rollout ships under: the pass it cites and the image that decision judged.

    ``candidate_image`` is what the decision recorded; ``image`` is the reference the runner pods pull
    (``repository@sha256:...``), the same digest through the pods' registry address.
    """

    release_id: str
    verdict: Literal["pass"]
    library_version: str
    candidate_image: str
    image: str


class Plan(StoredRecord):
    """Which shard processes which batches, in which mode, and under which gate decision (or override).

    A run `fleet prepare` planned has exactly one of ``gate`` and ``gate_override_reason``; both default
    to None so plans written before the gated rollout still parse.
    """

    record_type: ClassVar[str] = "fleet plan"
    omit_if_none: ClassVar[frozenset[str]] = frozenset({"gate", "gate_override_reason"})

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

    @property
    def result_mode(self) -> str:
        """The ``mode=`` of the published result; a dry run never shares a key with a real apply."""
        if self.mode == "configuration" and self.configuration is not None and not self.configuration.apply:
            return "configuration-dry-run"
        return self.mode


class DoneMarker(StoredRecord):
    """Written after a batch result verified: names the result's hash and what produced it."""

    record_type: ClassVar[str] = "batch marker"

    batch: int
    result_sha256: str
    devices: int
    library_version: str
    failures: int = 0


class Halt(StoredRecord):
    """Why a configuration run stopped: the shard's writes so far, whose error rate passed the threshold."""

    record_type: ClassVar[str] = "fleet halt"

    batch: int
    attempted: int
    failed: int
    error_rate: float
    max_error_rate: float
    first_errors: tuple[str, ...]
    shard: str = ""


class Summary(StoredRecord):
    """Written last next to the published results."""

    record_type: ClassVar[str] = "fleet summary"

    run_id: str
    mode: str
    library_version: str
    as_of: datetime
    devices: int
    batches: int
    results_sha256: str
    counts: dict[str, int] = Field(default_factory=dict)
    extra_objects: dict[str, str] = Field(default_factory=dict)
