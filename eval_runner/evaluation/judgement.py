"""The gate: judge a candidate against a baseline on paired per-sample errors (pure logic, no I/O).

Three verdicts, with the burden of proof on the candidate:
- refuse: the candidate is shown to be not good enough (too little improvement, a segment worse than
  the margin, a cell that clearly regresses, too many missing predictions);
- hold: the evidence cannot tell yet (too few devices, an interval too wide); the reason says what
  would resolve it;
- pass: every rule is met.
Any refusal wins over any hold, and any hold over a pass. The rules are in policy.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from eval_runner.errors import DataError
from eval_runner.evaluation.bootstrap import Change, Pool, paired_change, rng_for
from eval_runner.evaluation.policy import GatePolicy, TruthSelection

Verdict = Literal["pass", "refuse", "hold"]
Outcome = Literal["pass", "refuse", "hold", "skipped"]
Rule = Literal["devices", "missing", "primary", "segment", "harm"]

_SEVERITY: dict[Outcome, int] = {"skipped": 0, "pass": 0, "hold": 1, "refuse": 2}


class Finding(BaseModel):
    """One rule applied to one pool of samples (every sample, a segment, or a cell such as C x 2026-04)."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")

    rule: Rule
    pool: str  # "all", "hardware_revision=C", "hardware_revision=C, month=2026-04"
    outcome: Outcome
    n_devices: int
    n_samples: int
    baseline_value: float | None = None
    candidate_value: float | None = None
    change: float | None = None  # candidate / baseline - 1 of the statistic: negative is better
    upper_bound: float | None = None  # one-sided, at ``confidence``
    confidence: float | None = None
    threshold: float | None = None  # primary: required improvement; segment: margin; missing: cap
    p_value: float | None = None  # harm: one-sided bootstrap p of "not worse"
    p_holm: float | None = None  # harm: Holm-adjusted over every screened cell
    reason: str


class GateResult(BaseModel):
    """The gate's answer with everything needed to explain it."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")

    verdict: Verdict
    reasons: list[str]  # what a person reads: the deciding findings first
    metric: str
    statistic: str
    # The samples judged by how their runtime truth was obtained, and how many that left out. Decisions
    # made before the choice existed judged every sample.
    truth: TruthSelection = "all"
    n_excluded_by_truth: int = 0
    n_samples: int
    n_devices: int
    n_missing_candidate: int
    n_missing_baseline: int
    findings: list[Finding]

    def of_rule(self, rule: Rule) -> list[Finding]:
        """The findings of one rule, in the order they were made."""
        return [f for f in self.findings if f.rule == rule]


def pair(candidate: pl.DataFrame, baseline: pl.DataFrame, metric: str) -> pl.DataFrame:
    """Join two error frames on sample_id: device, month, segments, ``candidate``, ``baseline`` errors.

    Both evaluations must cover the same samples; a different sample set means they were not made on
    the same reviewed dataset, and comparing them would be meaningless. NaN errors become nulls: a NaN
    prediction is a missing prediction, not a number.
    """
    ids_c = set(candidate.get_column("sample_id").to_list())
    ids_b = set(baseline.get_column("sample_id").to_list())
    if ids_c != ids_b:
        only_c, only_b = sorted(ids_c - ids_b)[:3], sorted(ids_b - ids_c)[:3]
        raise DataError(
            f"candidate and baseline evaluated different samples ({len(ids_c ^ ids_b)} differ; "
            f"only candidate e.g. {only_c}, only baseline e.g. {only_b})"
        )

    def error(name: str) -> pl.Expr:
        return pl.col(metric).cast(pl.Float64).fill_nan(None).alias(name)

    return candidate.select(
        "sample_id", "device_id", "month", "hardware_revision", "firmware_version", error("candidate")
    ).join(baseline.select("sample_id", error("baseline")), on="sample_id", how="inner")


def select_truth(errors: pl.DataFrame, truth: TruthSelection) -> pl.DataFrame:
    """The samples whose runtime truth the policy judges on (``truth``: all, uncensored or observed)."""
    if truth == "all":
        return errors
    if truth == "uncensored":
        return errors.filter(~pl.col("true_runtime_censored"))
    return errors.filter(pl.col("true_runtime_source") == "observed")


def _truth_line(truth: TruthSelection, excluded: int, judged: int) -> str:
    if truth == "all":
        return f"truth: every sample judged ({judged}), observed, estimated and censored runtimes alike"
    kept = "uncensored runtime truth" if truth == "uncensored" else "an observed runtime"
    return f"truth: {judged} samples with {kept} judged; {excluded} left out by the policy's truth: {truth}"


def _pool(frame: pl.DataFrame) -> Pool:
    return Pool.of(
        frame.get_column("candidate").to_numpy().astype(np.float64),
        frame.get_column("baseline").to_numpy().astype(np.float64),
        frame.get_column("device_id").to_numpy(),
    )


def _groups(frame: pl.DataFrame, columns: Sequence[str]) -> Iterable[tuple[str, pl.DataFrame]]:
    for key, group in sorted(frame.group_by(list(columns)), key=lambda item: tuple(str(k) for k in item[0])):
        yield ", ".join(f"{c}={v}" for c, v in zip(columns, key, strict=True)), group


def _change(pool: Pool, policy: GatePolicy, stream: str) -> Change:
    return paired_change(
        pool, name=policy.statistic, resamples=policy.bootstrap.resamples, rng=rng_for(policy.bootstrap.seed, stream)
    )


def _numbers(change: Change, policy: GatePolicy) -> str:
    return f"{policy.statistic} {policy.metric} {change.baseline_value:.4g} -> {change.candidate_value:.4g}"


def _missing(paired: pl.DataFrame, policy: GatePolicy) -> list[Finding]:
    findings: list[Finding] = []
    caps = policy.missing
    pools = [("all", paired, caps.overall)]
    for column in policy.segments.by:
        pools += [(name, group, caps.per_segment) for name, group in _groups(paired, [column])]
    for name, group, cap in pools:
        missing = group.get_column("candidate").null_count()
        share = missing / group.height
        refused = share > cap
        findings.append(
            Finding(
                rule="missing", pool=name, outcome="refuse" if refused else "pass",
                n_devices=group.get_column("device_id").n_unique(), n_samples=group.height, threshold=cap,
                reason=(f"{name}: the candidate has no prediction (null or NaN) for {missing} of {group.height} "
                        f"samples ({share:.1%}; allowed {cap:.1%})"),
            )
        )  # fmt: skip
    return findings


def _primary(pool: Pool, policy: GatePolicy) -> Finding:
    rule = policy.primary
    change = _change(pool, policy, "primary")
    upper = change.upper(rule.confidence)
    level = f"{rule.confidence:.0%} upper bound"
    numbers = (
        f"all: {_numbers(change, policy)} on {pool.n_devices} devices, change {change.estimate:+.1%} "
        f"({level} {upper:+.1%})"
    )
    if change.estimate > -rule.min_improvement:
        outcome: Outcome = "refuse"
        reason = f"{numbers}; the policy asks for an improvement of at least {rule.min_improvement:.1%}"
    elif upper >= 0:
        outcome = "hold"
        reason = (
            f"{numbers}; the improvement is not shown beyond noise (the bound must be below 0): "
            "evaluate another month or more devices"
        )
    else:
        outcome = "pass"
        reason = f"{numbers}; at least {rule.min_improvement:.1%} better and the bound is below 0"
    return Finding(
        rule="primary", pool="all", outcome=outcome, n_devices=pool.n_devices, n_samples=pool.n_samples,
        baseline_value=change.baseline_value, candidate_value=change.candidate_value, change=change.estimate,
        upper_bound=upper, confidence=rule.confidence, threshold=rule.min_improvement, reason=reason,
    )  # fmt: skip


def _segments(paired: pl.DataFrame, policy: GatePolicy) -> list[Finding]:
    rule = policy.segments
    findings: list[Finding] = []
    for column in rule.by:
        for name, group in _groups(paired, [column]):
            pool = _pool(group)
            if pool.n_devices < rule.min_devices:
                findings.append(
                    Finding(
                        rule="segment", pool=name, outcome="hold", n_devices=pool.n_devices,
                        n_samples=pool.n_samples, threshold=rule.margin,
                        reason=(f"{name}: {pool.n_devices} devices, too few to show it is not worse "
                                f"(the policy needs {rule.min_devices}): wait for more devices or months"),
                    )
                )  # fmt: skip
                continue
            change = _change(pool, policy, name)
            upper = change.upper(rule.confidence)
            numbers = (
                f"{name}: {_numbers(change, policy)} on {pool.n_devices} devices, change {change.estimate:+.1%} "
                f"({rule.confidence:.0%} upper bound {upper:+.1%}); margin {rule.margin:+.1%}"
            )
            if change.estimate > rule.margin:
                outcome: Outcome = "refuse"
                reason = f"{numbers}: worse than the margin"
            elif upper >= rule.margin:
                outcome = "hold"
                reason = f"{numbers}: not shown to be within the margin; more months or devices would tell"
            else:
                outcome = "pass"
                reason = f"{numbers}: within the margin"
            findings.append(
                Finding(
                    rule="segment", pool=name, outcome=outcome, n_devices=pool.n_devices, n_samples=pool.n_samples,
                    baseline_value=change.baseline_value, candidate_value=change.candidate_value,
                    change=change.estimate, upper_bound=upper, confidence=rule.confidence, threshold=rule.margin,
                    reason=reason,
                )
            )  # fmt: skip
    return findings


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given): reject where adjusted <= family error."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _harm(paired: pl.DataFrame, policy: GatePolicy) -> list[Finding]:
    screen = policy.harm_screen
    screened: list[tuple[str, Pool, Change]] = []
    skipped: list[Finding] = []
    for columns in screen.cells:
        for name, group in _groups(paired, columns):
            pool = _pool(group)
            if pool.n_devices < screen.min_devices:
                skipped.append(
                    Finding(
                        rule="harm", pool=name, outcome="skipped", n_devices=pool.n_devices, n_samples=pool.n_samples,
                        reason=f"{name}: {pool.n_devices} devices, fewer than {screen.min_devices}: not screened",
                    )
                )  # fmt: skip
                continue
            screened.append((name, pool, _change(pool, policy, f"harm {name}")))
    adjusted = holm([change.p_not_worse() for _, _, change in screened])
    findings: list[Finding] = []
    for (name, pool, change), p_holm in zip(screened, adjusted, strict=True):
        refused = p_holm <= screen.family_error
        verdict = "clearly worse" if refused else "no clear regression"
        findings.append(
            Finding(
                rule="harm", pool=name, outcome="refuse" if refused else "pass", n_devices=pool.n_devices,
                n_samples=pool.n_samples, baseline_value=change.baseline_value,
                candidate_value=change.candidate_value, change=change.estimate, p_value=change.p_not_worse(),
                p_holm=p_holm, threshold=screen.family_error,
                reason=(f"{name}: {_numbers(change, policy)} on {pool.n_devices} devices, change "
                        f"{change.estimate:+.1%}, Holm p {p_holm:.3g} over {len(screened)} cells: {verdict}"),
            )
        )  # fmt: skip
    return findings + skipped


def _reasons(verdict: Verdict, findings: list[Finding], policy: GatePolicy) -> list[str]:
    deciding = [f"{f.outcome}: {f.rule}: {f.reason}" for f in findings if f.outcome in {"refuse", "hold"}]
    if verdict != "pass":
        order = {"refuse": 0, "hold": 1}
        return sorted(deciding, key=lambda line: order[line.split(":", 1)[0]])
    primary = next(f for f in findings if f.rule == "primary")
    segments = [f for f in findings if f.rule == "segment"]
    harm = [f for f in findings if f.rule == "harm" and f.outcome != "skipped"]
    worst = max(segments, key=lambda f: f.upper_bound or 0.0, default=None)
    lines = [f"pass: primary: {primary.reason}"]
    if worst is not None:
        lines.append(
            f"pass: segment: all {len(segments)} segments within the {policy.segments.margin:+.1%} margin "
            f"(closest: {worst.reason})"
        )
    lines.append(
        f"pass: harm: none of {len(harm)} cells clearly worse "
        f"(Holm, family-wise error {policy.harm_screen.family_error:.0%})"
    )
    return lines


def judge(candidate: pl.DataFrame, baseline: pl.DataFrame, policy: GatePolicy) -> GateResult:
    """Apply ``policy`` to two error frames (``metrics.with_errors`` output, all months concatenated).

    A sample the candidate did not predict counts against the candidate (the missing caps); a sample the
    baseline did not predict cannot be compared and is left out of the pairs.
    """
    judged_candidate = select_truth(candidate, policy.truth)
    excluded = candidate.height - judged_candidate.height
    # Both evaluations ran on one dataset, so they share the truth columns: the baseline is cut the same way.
    paired = pair(judged_candidate, select_truth(baseline, policy.truth), policy.metric)
    missing_c = paired.get_column("candidate").null_count()
    missing_b = paired.get_column("baseline").null_count()
    findings = _missing(paired, policy)
    usable = paired.drop_nulls(["candidate", "baseline"])
    n_devices = usable.get_column("device_id").n_unique()
    if n_devices < policy.min_devices:
        findings.append(
            Finding(
                rule="devices", pool="all", outcome="hold", n_devices=n_devices, n_samples=usable.height,
                threshold=float(policy.min_devices),
                reason=(f"all: {n_devices} devices with paired predictions, the policy needs {policy.min_devices}: "
                        "evaluate more months or wait for more devices"),
            )
        )  # fmt: skip
    else:
        findings.append(_primary(_pool(usable), policy))
        findings += _segments(usable, policy)
        findings += _harm(usable, policy)
    verdict: Verdict = ("pass", "hold", "refuse")[max(_SEVERITY[f.outcome] for f in findings)]
    reasons = [*_reasons(verdict, findings, policy), _truth_line(policy.truth, excluded, paired.height)]
    return GateResult(
        verdict=verdict, reasons=reasons, metric=policy.metric, statistic=policy.statistic, truth=policy.truth,
        n_excluded_by_truth=excluded, n_samples=usable.height, n_devices=n_devices, n_missing_candidate=missing_c,
        n_missing_baseline=missing_b, findings=findings,
    )  # fmt: skip
