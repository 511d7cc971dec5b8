"""The gate on synthetic paired errors (tests/gate_scenarios.py): every verdict and every rule.

bench/gate_calibration.py measures the error rates on replicates of real demo errors; these tests
pin the logic: which rule decides, what it says, and the bootstrap's unit of resampling.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from eval_runner.errors import ConfigError, DataError
from eval_runner.evaluation.bootstrap import Pool, paired_change, relative_change, rng_for, weighted_statistic
from eval_runner.evaluation.judgement import GateResult, holm, judge
from eval_runner.evaluation.policy import GatePolicy, parse_policy
from tests.gate_scenarios import months_from, paired_errors

FAST = parse_policy("bootstrap: {resamples: 400}", name="fast.yaml")
MONTHS = months_from(3, 3)


def _judge(policy: GatePolicy = FAST, **scenario: object) -> GateResult:
    candidate, baseline = paired_errors(devices=2000, months=MONTHS, seed=5, **scenario)  # type: ignore[arg-type]
    return judge(candidate, baseline, policy)


def test_clear_improvement_everywhere_passes() -> None:
    result = _judge(factor=0.6)
    assert result.verdict == "pass", result.reasons
    (primary,) = result.of_rule("primary")
    assert primary.change == pytest.approx(-0.4, abs=0.06)
    assert primary.upper_bound is not None and primary.upper_bound < 0
    assert result.reasons[0].startswith("pass: primary: all: median runtime_abs_error")
    assert {f.outcome for f in result.of_rule("segment")} == {"pass"}


def test_clear_loss_is_refused_by_the_primary_rule() -> None:
    result = _judge(factor=1.3)
    assert result.verdict == "refuse"
    assert result.of_rule("primary")[0].outcome == "refuse"
    assert any(r.startswith("refuse: primary:") and "at least 5.0%" in r for r in result.reasons)


def test_no_change_never_passes() -> None:
    result = _judge(factor=1.0)
    assert result.verdict != "pass"
    assert result.of_rule("primary")[0].outcome in {"refuse", "hold"}


def test_a_better_fleet_with_a_worse_revision_is_refused_naming_it() -> None:
    result = _judge(factor=0.6, factors={("hardware_revision", "C"): 1.8})
    assert result.of_rule("primary")[0].outcome == "pass"  # the fleet median does improve
    assert result.verdict == "refuse"
    refused = {f.pool for f in result.findings if f.outcome == "refuse"}
    assert "hardware_revision=C" in refused
    assert all("hardware_revision=C" in pool for pool in refused), refused
    assert result.reasons[0].startswith("refuse:") and "hardware_revision=C" in result.reasons[0]


def test_a_month_that_regresses_is_caught_by_the_harm_screen() -> None:
    result = _judge(factor=0.7, factors={("month", "2026-04"): 1.6})
    harmed = [f for f in result.of_rule("harm") if f.outcome == "refuse"]
    assert "month=2026-04" in {f.pool for f in harmed}
    assert all("2026-04" in f.pool for f in harmed)
    assert all(f.p_holm is not None and f.p_holm <= 0.05 for f in harmed)
    assert result.verdict == "refuse"


def test_a_segment_too_small_to_judge_holds_and_says_what_would_resolve_it() -> None:
    policy = parse_policy("segments: {min_devices: 400}\nbootstrap: {resamples: 400}", name="p.yaml")
    result = _judge(policy, factor=0.6)
    (rev_c,) = [f for f in result.of_rule("segment") if f.pool == "hardware_revision=C"]
    assert rev_c.outcome == "hold" and rev_c.upper_bound is None
    assert result.verdict == "hold"
    assert any("hardware_revision=C" in r and "wait for more devices or months" in r for r in result.reasons)


def test_too_few_devices_hold() -> None:
    candidate, baseline = paired_errors(devices=60, months=MONTHS, factor=0.5, seed=3)
    result = judge(candidate, baseline, FAST)
    assert result.verdict == "hold"
    assert result.of_rule("primary") == []
    assert "the policy needs 100" in result.reasons[0]


def _blank(frame: pl.DataFrame, where: pl.Expr, value: float | None) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(where).then(value).otherwise(pl.col("runtime_abs_error")).alias("runtime_abs_error")
    )


def test_nan_predictions_are_missing_and_capped_overall() -> None:
    candidate, baseline = paired_errors(devices=2000, months=MONTHS, factor=0.6, seed=5)
    candidate = _blank(candidate, pl.int_range(pl.len()) % 40 == 0, float("nan"))  # 2.5% NaN
    result = judge(candidate, baseline, FAST)
    assert result.verdict == "refuse"
    (overall,) = [f for f in result.of_rule("missing") if f.pool == "all"]
    assert overall.outcome == "refuse"
    assert result.n_missing_candidate == candidate.height // 40 + (candidate.height % 40 > 0)
    assert "no prediction (null or NaN)" in overall.reason


def test_missing_predictions_are_capped_per_segment() -> None:
    candidate, baseline = paired_errors(devices=2000, months=MONTHS, factor=0.6, seed=5)
    rev_c = pl.col("hardware_revision") == "C"
    candidate = _blank(candidate, rev_c & (pl.int_range(pl.len()) % 12 == 0), None)  # ~8% of rev C, <1% overall
    result = judge(candidate, baseline, FAST)
    refused = [f.pool for f in result.of_rule("missing") if f.outcome == "refuse"]
    assert refused == ["hardware_revision=C"]
    assert result.verdict == "refuse"


def test_samples_the_baseline_did_not_predict_are_left_out_not_held_against_the_candidate() -> None:
    candidate, baseline = paired_errors(devices=2000, months=MONTHS, factor=0.6, seed=5)
    blanked = pl.int_range(pl.len()) % 20 == 0
    baseline = _blank(baseline, blanked, None)
    result = judge(candidate, baseline, FAST)
    judged = baseline.filter(~pl.col("true_runtime_censored"))  # the default policy's truth: uncensored
    assert result.n_missing_baseline == judged.get_column("runtime_abs_error").null_count() > 0
    assert result.n_samples == judged.height - result.n_missing_baseline
    assert result.verdict == "pass", result.reasons


def test_different_sample_sets_are_a_data_error() -> None:
    candidate, baseline = paired_errors(devices=200, months=MONTHS, seed=5)
    with pytest.raises(DataError, match="evaluated different samples"):
        judge(candidate.head(candidate.height - 1), baseline, FAST)


def test_decisions_are_identical_on_rerun() -> None:
    assert _judge(factor=0.9) == _judge(factor=0.9)


def test_the_bootstrap_resamples_devices_not_samples() -> None:
    # Four identical copies of each device's sample carry no more evidence than one: resampling devices
    # gives the same replicates; resampling samples would have narrowed the interval by half.
    rng = np.random.default_rng(3)
    base, cand = np.abs(rng.normal(0, 1, 500)), np.abs(rng.normal(0, 1.1, 500))
    devices = np.arange(500)
    once = Pool.of(cand, base, devices)
    four = Pool.of(np.tile(cand, 4), np.tile(base, 4), np.tile(devices, 4))
    assert four.n_devices == 500 and four.n_samples == 2000
    one = paired_change(once, name="median", resamples=400, rng=rng_for(1, "s"))
    same = paired_change(four, name="median", resamples=400, rng=rng_for(1, "s"))
    assert one.estimate == pytest.approx(same.estimate)
    np.testing.assert_allclose(one.replicates, same.replicates)


def test_the_bootstrap_is_reproducible_with_a_seed_and_varies_without() -> None:
    rng = np.random.default_rng(3)
    pool = Pool.of(np.abs(rng.normal(0, 1, 500)), np.abs(rng.normal(0, 1.1, 500)), np.arange(500) // 2)
    first = paired_change(pool, name="median", resamples=400, rng=rng_for(42, "primary"))
    again = paired_change(pool, name="median", resamples=400, rng=rng_for(42, "primary"))
    other = paired_change(pool, name="median", resamples=400, rng=rng_for(43, "primary"))
    np.testing.assert_array_equal(first.replicates, again.replicates)
    assert first.estimate == other.estimate and not np.array_equal(first.replicates, other.replicates)
    assert np.quantile(first.replicates, 0.01) <= first.estimate <= first.upper(0.99)


@pytest.mark.parametrize(("name", "q"), [("median", 0.5), ("p90", 0.9), ("p95", 0.95)])
def test_the_weighted_statistic_with_unit_weights_is_numpys_inverted_cdf(name: str, q: float) -> None:
    values = np.sort(np.random.default_rng(1).exponential(size=301))
    got = weighted_statistic(values, np.ones((1, values.size), dtype=np.int64), name)  # type: ignore[arg-type]
    assert got[0] == np.quantile(values, q, method="inverted_cdf")


def test_the_weighted_mean_counts_weights() -> None:
    got = weighted_statistic(np.array([1.0, 2.0, 4.0]), np.array([[1, 0, 1], [0, 3, 1]]), "mean")
    assert got.tolist() == [2.5, 2.5]


def test_holm_adjusts_step_down_and_keeps_order() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([]) == []


def test_relative_change_edge_cases() -> None:
    got = relative_change(np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.0, 1.0]))
    assert got.tolist() == [0.0, float("inf"), 1.0]


def test_an_infinite_change_survives_json() -> None:
    candidate, baseline = paired_errors(devices=150, months=MONTHS, factor=0.6, seed=5)
    baseline = baseline.with_columns(pl.lit(0.0).alias("runtime_abs_error"))
    result = judge(candidate, baseline, FAST)
    assert result.verdict == "refuse" and result.of_rule("primary")[0].change == float("inf")
    assert GateResult.model_validate_json(result.model_dump_json()) == result


def test_version_1_policies_are_refused_with_a_pointer() -> None:
    with pytest.raises(ConfigError, match=r"old.yaml: version 1 policies .* policies/default.yaml"):
        parse_policy("version: 1\nprimary: {min_improvement: 0.05}", name="old.yaml")


def test_policy_errors_name_the_file_and_field() -> None:
    with pytest.raises(ConfigError, match=r"p.yaml: segments.margin: Input should be greater than or equal to 0"):
        parse_policy("segments: {margin: -0.1}", name="p.yaml")
    with pytest.raises(ConfigError, match=r"p.yaml: harm_screen.cells: Value error, a cell names one or more distinct"):
        parse_policy("harm_screen: {cells: [[month, month]]}", name="p.yaml")


def test_censored_runtimes_are_left_out_by_default_and_counted() -> None:
    candidate, baseline = paired_errors(devices=2000, months=MONTHS, factor=0.6, seed=5)
    censored = int(candidate.get_column("true_runtime_censored").sum())
    assert censored > 0
    result = judge(candidate, baseline, FAST)
    assert (result.truth, result.n_excluded_by_truth) == ("uncensored", censored)
    assert result.n_samples == candidate.height - censored
    assert result.reasons[-1] == (
        f"truth: {candidate.height - censored} samples with uncensored runtime truth judged; "
        f"{censored} left out by the policy's truth: uncensored"
    )
    every = judge(candidate, baseline, FAST.model_copy(update={"truth": "all"}))
    assert (every.n_samples, every.n_excluded_by_truth) == (candidate.height, 0)


def test_a_policy_may_judge_observed_runtimes_only() -> None:
    # Better where the pack's end was seen, worse on the estimates: which truth is judged decides.
    factors = {("true_runtime_source", "observed"): 0.5}
    candidate, baseline = paired_errors(devices=4000, months=MONTHS, factor=1.3, factors=factors, seed=5)
    assert judge(candidate, baseline, FAST).of_rule("primary")[0].outcome == "refuse"
    observed = judge(candidate, baseline, FAST.model_copy(update={"truth": "observed"}))
    assert observed.n_samples == int((candidate.get_column("true_runtime_source") == "observed").sum())
    (primary,) = observed.of_rule("primary")
    assert primary.outcome != "refuse" and primary.change is not None and primary.change < -0.3, observed.reasons
    assert parse_policy("truth: observed", name="p.yaml").truth == "observed"
    with pytest.raises(ConfigError, match=r"p.yaml: truth: Input should be 'all', 'uncensored' or 'observed'"):
        parse_policy("truth: estimated", name="p.yaml")
