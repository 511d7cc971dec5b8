"""Step: gate a candidate against a baseline, write decision.json, and move the champion of record on a pass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from eval_runner import __version__
from eval_runner.errors import ConfigError, DataError
from eval_runner.evaluation import champion
from eval_runner.evaluation.champion import ChampionRecord
from eval_runner.evaluation.decision import (
    BaselineRef,
    CandidateRef,
    DecisionInputs,
    GateDecision,
    MonthEvaluation,
    MonthInputs,
    PolicyRef,
    Promotion,
)
from eval_runner.evaluation.decisions import load_decision
from eval_runner.evaluation.evaluate import EXPERIMENT as EVALUATIONS_EXPERIMENT
from eval_runner.evaluation.inputs import VersionEvaluations, load_evaluations, normalise_version
from eval_runner.evaluation.judgement import judge
from eval_runner.evaluation.lineage import MonthLineage, months_lineage
from eval_runner.evaluation.policy import parse_policy
from eval_runner.hashing import sha256_bytes
from eval_runner.keys import Month, decision_key
from eval_runner.storage import ObjectStore
from eval_runner.tracking import Tracker

CHAMPION = "champion"
EXPERIMENT = "gates"
_HEADLINE = ("n_samples", "runtime_abs_error_median", "runtime_abs_error_p90", "capacity_abs_error_median",
             "runtime_q10_q90_coverage")  # fmt: skip


@dataclass(frozen=True)
class GateParams:
    """What to decide: candidate vs baseline (a version or ``champion``) on months, under a policy."""

    months: tuple[Month, ...]
    candidate: str
    baseline: str
    policy_text: str
    policy_name: str
    release_id: str | None = None
    promote: bool = False
    model: str = "battery-lib"
    # The review each month must be judged on (from validate-review); a month not named: its current review.
    review_hashes: Mapping[Month, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GateOutput:
    """The decision as written, whether it was already there, and the champion generation it promoted to."""

    decision: GateDecision
    key: str
    reused: bool
    promoted: ChampionRecord | None


def default_release_id(
    candidate: str,
    baseline_label: str,
    months: tuple[Month, ...],
    policy_sha256: str,
    lineage: Mapping[Month, MonthLineage],
) -> str:
    """A release id from what identifies the question, so a rerun finds its earlier decision.

    The baseline is named by its label, not the version it resolves to: a retry after the promotion
    (the champion is now the candidate) must find the decision instead of asking a new question. The
    reviews are part of the question: after a revised review the same gate is a new decision.
    """
    span = "_".join(str(m) for m in sorted(months))
    reviews = sha256_bytes(",".join(f"{m}={lineage[m].review_hash}" for m in sorted(months)).encode())
    return f"{candidate}-vs-{baseline_label}-on-{span}-policy-{policy_sha256[:12]}-reviews-{reviews[:12]}"


def _baseline_label(label: str) -> str:
    return label if label == CHAMPION else normalise_version(label)


def resolve_baseline(label: str, champion_now: ChampionRecord | None, *, model: str) -> str:
    """The library version a baseline label stands for: itself, or the champion of record."""
    if label != CHAMPION:
        return normalise_version(label)
    if champion_now is None:
        raise ConfigError(
            f"registered model {model!r} has no {CHAMPION} of record yet; pass --baseline <version> for the first gate"
        )
    return champion_now.library_version


def _per_month(item: VersionEvaluations) -> dict[str, MonthEvaluation]:
    return {
        r.month: MonthEvaluation(
            predictions_sha256=r.predictions.sha256,
            image_digest=r.image_digest,
            version_label=r.version_label,
            metrics={k: r.metrics["overall"].get(k) for k in _HEADLINE},
        )
        for r in item.records
    }


def _image(item: VersionEvaluations) -> str:
    # One verdict, one build: months evaluated in different images would make "what was gated" ambiguous.
    digests = sorted({r.image_digest for r in item.records})
    if len(digests) != 1:
        raise DataError(
            f"the evaluations of {item.version} were made in {len(digests)} different images "
            f"({', '.join(digests)}); re-evaluate every month in one image before gating it"
        )
    return digests[0]


def _decide(
    params: GateParams,
    *,
    store: ObjectStore,
    release_id: str,
    lineage: Mapping[Month, MonthLineage],
) -> GateDecision:
    policy = parse_policy(params.policy_text, name=params.policy_name)
    candidate = normalise_version(params.candidate)
    # Read once: the baseline it names and the generation a promotion may replace are the same reading.
    champion_now = champion.current(store, params.model)
    baseline = resolve_baseline(params.baseline, champion_now, model=params.model)
    if candidate == baseline:
        raise ConfigError(f"candidate and baseline are both {candidate}; nothing to gate")
    loaded = load_evaluations(store, lineage, (candidate, baseline))
    result = judge(loaded[candidate].errors, loaded[baseline].errors, policy)
    return GateDecision(
        release_id=release_id,
        verdict=result.verdict,
        reasons=result.reasons,
        inputs=DecisionInputs(
            months=[str(m) for m in params.months],
            candidate=CandidateRef(label=params.candidate, library_version=candidate),
            baseline=BaselineRef(label=params.baseline, library_version=baseline),
        ),
        hashes={
            r.month: MonthInputs(
                dataset_hash=r.dataset_hash,
                manifest_sha256=r.manifest_sha256,
                review_csv_sha256=r.review_csv_sha256,
            )
            for r in loaded[candidate].records
        },
        evaluations={version: _per_month(item) for version, item in loaded.items()},
        images={version: _image(item) for version, item in loaded.items()},
        policy=PolicyRef(name=params.policy_name, sha256=sha256_bytes(params.policy_text.encode()), rule=policy),
        result=result,
        promotion=Promotion(
            requested=params.promote,
            model=params.model,
            alias=CHAMPION,
            replaces_generation=champion_now.generation if champion_now is not None else 0,
        ),
        eval_runner_version=__version__,
    )


def run(params: GateParams, *, store: ObjectStore, tracker: Tracker) -> GateOutput:
    """Decide (or reuse the decision of an earlier attempt), publish it, promote on a pass, mirror the alias.

    The decision is written before the champion moves: a retry after a crash finds the decision, does
    not re-judge against a champion that may already be the candidate, and only finishes the promotion.
    """
    if not params.months:
        raise ConfigError("gate needs at least one month")
    policy_sha = sha256_bytes(params.policy_text.encode())
    baseline_label = _baseline_label(params.baseline)
    lineage = months_lineage(store, params.months, params.review_hashes)
    release_id = params.release_id or default_release_id(
        normalise_version(params.candidate), baseline_label, params.months, policy_sha, lineage
    )
    key = decision_key(release_id)
    existing = load_decision(store, release_id)
    reused = existing is not None
    if existing is not None:
        decision = existing
        inputs = decision.inputs
        same = (
            inputs.candidate.library_version == normalise_version(params.candidate)
            and _baseline_label(inputs.baseline.label) == baseline_label
            and inputs.months == [str(m) for m in params.months]
            and decision.policy.sha256 == policy_sha
        )
        if not same:
            raise DataError(
                f"{key} already holds a decision for other inputs (candidate, baseline, months or policy); "
                "use another --release-id"
            )
        _check_same_reviews(decision, lineage, key)
    else:
        decision = _decide(params, store=store, release_id=release_id, lineage=lineage)
        data = decision.to_json_bytes()
        store.put_bytes(key, data)
        _track(tracker, decision, data)
    promoted = champion.promote(store, decision) if decision.verdict == "pass" and params.promote else None
    mirror_alias(store, tracker, model=params.model)
    return GateOutput(decision=decision, key=key, reused=reused, promoted=promoted)


def _check_same_reviews(decision: GateDecision, lineage: Mapping[Month, MonthLineage], key: str) -> None:
    """A decision made on another review than the months' current (or given) one is stale: never reuse it."""
    for month, item in sorted(lineage.items()):
        judged = decision.hashes.get(str(month))
        if judged is not None and judged.review_csv_sha256 != item.review_hash:
            raise DataError(
                f"{key} was decided on review {judged.review_csv_sha256} of {month}, but the review to judge "
                f"is {item.review_hash} (revision {item.revision}); use another --release-id to gate the new review"
            )


def mirror_alias(store: ObjectStore, tracker: Tracker, *, model: str) -> bool:
    """Point MLflow's alias at the champion of record when it points elsewhere; True when it was moved.

    Every gate calls it, so a mirror lost to a crash between the record and the alias, or an alias
    moved by hand in MLflow, is put back by the next gate.
    """
    record = champion.current(store, model)
    if record is None:
        return False
    alias = tracker.alias_version(model, CHAMPION)
    if alias is not None and alias.library_version == record.library_version:
        return False
    decision = load_decision(store, record.release_id)
    if decision is None:
        raise DataError(
            f"champion generation {record.generation} of {model!r} names decision {record.release_id}, "
            f"which is missing from {decision_key(record.release_id)}"
        )
    latest = sorted(decision.inputs.months)[-1]
    run_id = _evaluation_run(tracker, decision, record.library_version, latest)
    tracker.promote(model, library_version=record.library_version, run_id=run_id, alias=CHAMPION)
    return True


def _evaluation_run(tracker: Tracker, decision: GateDecision, version: str, month: str) -> str:
    # The same tags evaluate.run_tags gives an evaluation run.
    tags = {
        "kind": "evaluation",
        "month": month,
        "library_version": version,
        "dataset_hash": decision.hashes[month].dataset_hash,
        "review_sha256": decision.hashes[month].review_csv_sha256,
    }
    found = tracker.find_runs(EVALUATIONS_EXPERIMENT, tags=tags)
    if not found:
        raise DataError(f"no MLflow evaluation run of {version} on {month}; re-run its evaluation to log it")
    return found[0].run_id


def _track(tracker: Tracker, decision: GateDecision, data: bytes) -> None:
    tags = {"kind": "gate", "release_id": decision.release_id}
    if tracker.find_runs(EXPERIMENT, tags=tags):
        return
    with tracker.run(EXPERIMENT, f"gate {decision.release_id}", tags=tags) as tracked:
        inputs = decision.inputs
        tracked.log_batch(
            params={
                "release_id": decision.release_id,
                "verdict": decision.verdict,
                "candidate": inputs.candidate.library_version,
                "baseline": inputs.baseline.library_version,
                "months": ",".join(inputs.months),
                "candidate_image": decision.candidate_image,
            },
            metrics={"passed": 1.0 if decision.verdict == "pass" else 0.0},
        )
        tracked.log_artifacts({"decision.json": data})
