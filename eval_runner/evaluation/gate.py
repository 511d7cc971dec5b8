"""The gate: judge a candidate against a baseline on paired per-sample errors (pure logic, no I/O)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from eval_runner.errors import DataError
from eval_runner.evaluation.bootstrap import paired_change, rng_for, statistic
from eval_runner.evaluation.policy import ErrorMetric, GatePolicy, Statistic

FloatPair = tuple[float, float, float]


@dataclass(frozen=True)
class RuleResult:
    """One rule applied to one pool of paired samples (the whole pool, or one segment)."""

    rule: str  # "primary" or "segment"
    segment: str | None  # e.g. "hardware_revision=C"
    metric: ErrorMetric
    statistic: Statistic
    n_pairs: int
    baseline_value: float
    candidate_value: float
    change: float  # candidate / baseline - 1: negative is better
    change_low: float | None
    change_high: float | None
    threshold: float  # primary: required improvement; segment: allowed regression
    passed: bool | None  # None: too few samples to judge
    reason: str


@dataclass(frozen=True)
class Verdict:
    """The gate's answer with everything needed to explain it."""

    passed: bool
    reasons: list[str]
    n_pairs: int
    n_missing_candidate: int
    n_missing_baseline: int
    primary: RuleResult | None
    segments: list[RuleResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for decision.json."""
        return asdict(self)


def pair(candidate: pl.DataFrame, baseline: pl.DataFrame, metric: str) -> pl.DataFrame:
    """Join two error frames on sample_id: segments, ``candidate``, ``baseline`` errors of ``metric``.

    Both evaluations must cover the same samples; a different sample set means they were not made on
    the same reviewed dataset, and comparing them would be meaningless.
    """
    ids_c = set(candidate.get_column("sample_id").to_list())
    ids_b = set(baseline.get_column("sample_id").to_list())
    if ids_c != ids_b:
        only_c, only_b = sorted(ids_c - ids_b)[:3], sorted(ids_b - ids_c)[:3]
        raise DataError(
            f"candidate and baseline evaluated different samples ({len(ids_c ^ ids_b)} differ; "
            f"only candidate e.g. {only_c}, only baseline e.g. {only_b})"
        )
    return candidate.select(
        "sample_id", "hardware_revision", "firmware_version", pl.col(metric).alias("candidate")
    ).join(baseline.select("sample_id", pl.col(metric).alias("baseline")), on="sample_id", how="inner")


def _judge_pool(
    pool: pl.DataFrame, *, metric: ErrorMetric, name: Statistic, policy: GatePolicy, stream: str
) -> tuple[float, float, FloatPair]:
    candidate = pool.get_column("candidate").to_numpy().astype(np.float64)
    baseline = pool.get_column("baseline").to_numpy().astype(np.float64)
    interval = paired_change(
        candidate,
        baseline,
        name=name,
        resamples=policy.bootstrap.resamples,
        confidence=policy.bootstrap.confidence,
        rng=rng_for(policy.bootstrap.seed, stream),
    )
    return (
        float(statistic(baseline, name)),
        float(statistic(candidate, name)),
        (interval.estimate, interval.low, interval.high),
    )


def _primary(paired: pl.DataFrame, policy: GatePolicy) -> RuleResult:
    rule = policy.primary
    base, cand, (change, low, high) = _judge_pool(
        paired, metric=rule.metric, name=rule.statistic, policy=policy, stream="primary"
    )
    # Improvement is -change; its interval's lower end is -high.
    passed = -high >= rule.min_improvement
    what = f"{rule.statistic} {rule.metric}"
    reason = (
        f"{what}: {base:.4g} -> {cand:.4g}, improvement {-change:+.1%} "
        f"(CI {-high:+.1%} .. {-low:+.1%}); required at least {rule.min_improvement:+.1%} "
        "at the CI's lower end"
    )
    return RuleResult("primary", None, rule.metric, rule.statistic, paired.height, base, cand, change,
                      low, high, rule.min_improvement, passed, reason)  # fmt: skip


def _segments(paired: pl.DataFrame, policy: GatePolicy) -> list[RuleResult]:
    rule = policy.segments
    metric, name = rule.metric, rule.statistic
    assert metric is not None and name is not None  # noqa: S101  # GatePolicy's validator fills both
    results: list[RuleResult] = []
    for column in rule.by:
        for (value,), pool in sorted(paired.group_by(column), key=lambda item: str(item[0][0])):
            segment = f"{column}={value}"
            if pool.height < rule.min_samples:
                c = pool.get_column("candidate").to_numpy().astype(np.float64)
                b = pool.get_column("baseline").to_numpy().astype(np.float64)
                base, cand = float(statistic(b, name)), float(statistic(c, name))
                change = cand / base - 1.0 if base > 0 else 0.0
                reason = f"{segment}: {pool.height} paired samples, fewer than {rule.min_samples}: not judged"
                results.append(RuleResult("segment", segment, metric, name, pool.height, base, cand, change,
                                          None, None, rule.max_regression, None, reason))  # fmt: skip
                continue
            base, cand, (change, low, high) = _judge_pool(pool, metric=metric, name=name, policy=policy,
                                                          stream=segment)  # fmt: skip
            # A segment fails when its regression is beyond the allowance and real (CI above zero):
            # small segments are noisy, and refusing on noise would block every release.
            failed = change > rule.max_regression and low > 0
            reason = (
                f"{segment}: {name} {metric} {base:.4g} -> {cand:.4g}, change {change:+.1%} "
                f"(CI {low:+.1%} .. {high:+.1%}); allowed regression {rule.max_regression:+.1%}"
            )
            results.append(RuleResult("segment", segment, metric, name, pool.height, base, cand, change,
                                      low, high, rule.max_regression, not failed, reason))  # fmt: skip
    return results


def judge(candidate: pl.DataFrame, baseline: pl.DataFrame, policy: GatePolicy) -> Verdict:
    """Apply ``policy`` to two error frames (``metrics.with_errors`` output, all months concatenated).

    Samples where either version has no error for a metric are left out of that metric's pairs; the
    candidate may leave at most ``max_missing_fraction`` of the samples unpredicted.
    """
    reasons: list[str] = []
    metrics = {policy.primary.metric, policy.segments.metric}
    n_total = candidate.height
    missing_c = candidate.filter(pl.any_horizontal(pl.col(m).is_null() for m in metrics if m)).height
    missing_b = baseline.filter(pl.any_horizontal(pl.col(m).is_null() for m in metrics if m)).height
    ok = True
    if n_total and missing_c / n_total > policy.max_missing_fraction:
        ok = False
        reasons.append(
            f"refuse: candidate has no prediction for {missing_c} of {n_total} samples "
            f"({missing_c / n_total:.1%} > allowed {policy.max_missing_fraction:.1%})"
        )
    primary_pairs = pair(candidate, baseline, policy.primary.metric).drop_nulls(["candidate", "baseline"])
    if primary_pairs.height < policy.min_paired_samples:
        reasons.append(
            f"refuse: only {primary_pairs.height} paired samples, the policy needs {policy.min_paired_samples}"
        )
        return Verdict(False, reasons, primary_pairs.height, missing_c, missing_b, None, [])
    primary = _primary(primary_pairs, policy)
    reasons.append(("pass: " if primary.passed else "refuse: ") + primary.reason)
    ok = ok and bool(primary.passed)
    segment_metric = policy.segments.metric or policy.primary.metric
    segment_pairs = pair(candidate, baseline, segment_metric).drop_nulls(["candidate", "baseline"])
    segments = _segments(segment_pairs, policy)
    for result in segments:
        if result.passed is False:
            ok = False
            reasons.append("refuse: segment regression " + result.reason)
    if ok:
        reasons.append("pass: no segment regresses beyond the allowance")
    return Verdict(ok, reasons, primary_pairs.height, missing_c, missing_b, primary, segments)
