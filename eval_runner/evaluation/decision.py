"""decision.json: what the gate judged, on which inputs and images, under which policy, and its answer."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from eval_runner.evaluation.judgement import GateResult, Verdict
from eval_runner.evaluation.policy import GatePolicy
from eval_runner.stored import RecordPart, StoredRecord


class _Frozen(RecordPart):
    model_config = ConfigDict(ser_json_inf_nan="strings")  # as GateResult: strict JSON, no bare NaN


class CandidateRef(_Frozen):
    """The candidate as asked (label) and as resolved (the version its evaluations are stored under)."""

    label: str
    library_version: str


class BaselineRef(_Frozen):
    """The baseline as asked (a version or ``champion``) and what it resolved to.

    ``model_version`` (MLflow's registered version) is only in decisions made while the alias was the
    champion; the champion of record is ``promotion.replaces_generation``.
    """

    label: str
    library_version: str
    model_version: str | None = None


class DecisionInputs(_Frozen):
    """The question: candidate against baseline on these months."""

    months: list[str]
    candidate: CandidateRef
    baseline: BaselineRef


class MonthInputs(_Frozen):
    """The reviewed dataset one month's evaluations were made on (the same for both versions).

    ``review_csv_sha256`` is the review hash the gate judged: the month's current review, or the one
    it was told to use.
    """

    dataset_hash: str
    manifest_sha256: str
    review_csv_sha256: str


class MonthEvaluation(_Frozen):
    """One version's evaluation of one month, as the gate read it."""

    predictions_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    image_digest: str
    version_label: str
    metrics: dict[str, float | int | None]


class PolicyRef(_Frozen):
    """The policy file by name and hash, and the rule it resolved to (every default filled in)."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    rule: GatePolicy


class Promotion(_Frozen):
    """Whether a pass should move the champion, and the generation of record it was decided against.

    ``replaces_generation`` is the champion generation current when the gate decided (0: none yet); a
    promotion may only write the one after it (see champion.py). None in decisions made before the
    champion had records.
    """

    requested: bool
    model: str
    alias: str
    replaces_generation: int | None = Field(default=None, ge=0)


class GateDecision(StoredRecord):
    """The whole decision record, written once per release id (the store refuses a second, different one).

    ``images`` binds the verdict to builds: the image digest each version was evaluated in. A rollout of
    the candidate uses that digest, so what ships is what was judged.
    """

    model_config = ConfigDict(ser_json_inf_nan="strings")  # as GateResult: strict JSON, no bare NaN
    record_type: ClassVar[str] = "gate decision"

    kind: Literal["gate-decision"] = "gate-decision"
    release_id: str
    verdict: Verdict
    reasons: list[str]
    inputs: DecisionInputs
    hashes: dict[str, MonthInputs]
    evaluations: dict[str, dict[str, MonthEvaluation]]
    images: dict[str, str]
    policy: PolicyRef
    result: GateResult
    promotion: Promotion
    eval_runner_version: str

    @property
    def candidate_image(self) -> str:
        """The image digest the candidate was judged in."""
        return self.images[self.inputs.candidate.library_version]
