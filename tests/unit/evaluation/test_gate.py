"""The gate on synthetic paired errors: clear win, clear loss, noisy tie, a rev C segment regression.

These use synthetic errors shaped like the rev C trap in notes/battery-domain.md section 6; the
integration tests repeat the 0.10.0 case through the real library versions.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from eval_runner.evaluation.bootstrap import paired_change, relative_change, rng_for
from eval_runner.evaluation.gate import judge
from eval_runner.evaluation.policy import GatePolicy, parse_policy

N = 1200


def baseline_errors(seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    runtime = np.abs(rng.normal(0, 40.0, N))
    return pl.DataFrame(
        {
            "sample_id": [f"d{i:05d}/2026-04" for i in range(N)],
            "hardware_revision": np.where(np.arange(N) % 5 == 0, "C", "B"),
            "firmware_version": np.where(np.arange(N) % 3 == 0, "2.2", "2.1"),
            "runtime_abs_error": runtime,
            "runtime_rel_error": runtime / 300.0,
            "capacity_abs_error": runtime * 3.0,
            "capacity_rel_error": runtime / 300.0,
        }
    )


def scaled(frame: pl.DataFrame, factor_b: float, factor_c: float, noise: float = 0.05, seed: int = 2) -> pl.DataFrame:
    rng = np.random.default_rng(2)
    jitter = np.exp(rng.normal(0, noise, frame.height))
    factor = pl.when(pl.col("hardware_revision") == "C").then(factor_c).otherwise(factor_b)
    errors = [c for c in frame.columns if c.endswith("_error")]
    return frame.with_columns((pl.col(c) * factor * jitter).alias(c) for c in errors)


POLICY = GatePolicy()


def test_clear_win_passes() -> None:
    base = baseline_errors()
    verdict = judge(scaled(base, 0.7, 0.7), base, POLICY)
    assert verdict.passed, verdict.reasons
    assert verdict.primary is not None and verdict.primary.change == pytest.approx(-0.3, abs=0.03)
    assert all(s.passed for s in verdict.segments)


def test_clear_loss_is_refused() -> None:
    base = baseline_errors()
    verdict = judge(scaled(base, 1.3, 1.3), base, POLICY)
    assert not verdict.passed
    assert verdict.primary is not None and verdict.primary.passed is False
    assert any(r.startswith("refuse: median runtime_abs_error") for r in verdict.reasons)


def test_noisy_tie_is_refused() -> None:
    # An independent draw from the same error distribution: the point estimate may even look better,
    # but the interval straddles zero, far from the 5% the policy asks for.
    base = baseline_errors(seed=1)
    tie = baseline_errors(seed=7)
    verdict = judge(tie, base, POLICY)
    assert not verdict.passed
    primary = verdict.primary
    assert primary is not None and primary.change_low is not None and primary.change_high is not None
    assert primary.change_low < 0 < primary.change_high


def test_rev_c_regression_is_refused_despite_a_better_fleet_median() -> None:
    base = baseline_errors()
    verdict = judge(scaled(base, 0.7, 1.5), base, POLICY)
    assert verdict.primary is not None and verdict.primary.passed  # the fleet median does improve
    assert not verdict.passed
    failed = [s.segment for s in verdict.segments if s.passed is False]
    assert failed == ["hardware_revision=C"]
    assert any("hardware_revision=C" in r for r in verdict.reasons)


def test_small_segments_are_reported_not_judged() -> None:
    base = baseline_errors()
    policy = parse_policy("segments: {min_samples: 500}", name="p.yaml")
    verdict = judge(scaled(base, 0.7, 1.5), base, policy)
    rev_c = next(s for s in verdict.segments if s.segment == "hardware_revision=C")
    assert rev_c.passed is None and "not judged" in rev_c.reason
    assert verdict.passed


def test_too_many_missing_candidate_predictions_refuse() -> None:
    base = baseline_errors()
    cand = scaled(base, 0.7, 0.7).with_columns(
        pl.when(pl.int_range(pl.len()) < 60).then(None).otherwise(pl.col("runtime_abs_error")).alias(
            "runtime_abs_error")
    )  # fmt: skip
    verdict = judge(cand, base, POLICY)
    assert not verdict.passed
    assert verdict.n_missing_candidate == 60
    assert "no prediction for 60 of 1200" in verdict.reasons[0]


def test_different_sample_sets_are_a_data_error() -> None:
    from eval_runner.errors import DataError

    base = baseline_errors()
    with pytest.raises(DataError, match="evaluated different samples"):
        judge(base.head(N - 1), base, POLICY)


def test_bootstrap_is_reproducible_with_a_seed_and_varies_without() -> None:
    rng = np.random.default_rng(3)
    a, b = np.abs(rng.normal(0, 1, 500)), np.abs(rng.normal(0, 1.1, 500))
    kwargs = {"name": "median", "resamples": 400, "confidence": 0.9}
    first = paired_change(a, b, rng=rng_for(42, "primary"), **kwargs)  # type: ignore[arg-type]
    again = paired_change(a, b, rng=rng_for(42, "primary"), **kwargs)  # type: ignore[arg-type]
    other = paired_change(a, b, rng=rng_for(43, "primary"), **kwargs)  # type: ignore[arg-type]
    assert first == again
    assert first.estimate == other.estimate and (first.low, first.high) != (other.low, other.high)
    assert first.low <= first.estimate <= first.high
    assert first.estimate == pytest.approx(np.median(a) / np.median(b) - 1)


def test_verdicts_are_identical_on_rerun() -> None:
    base = baseline_errors()
    cand = scaled(base, 0.9, 0.9)
    assert judge(cand, base, POLICY) == judge(cand, base, POLICY)


def test_relative_change_edge_cases() -> None:
    got = relative_change(np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.0, 1.0]))
    assert got.tolist() == [0.0, float("inf"), 1.0]
