"""The gate on simulated months through the real battery-lib versions (imported from demo/battery-lib).

The versions are imported one after another into this process from their source trees, so this runs
without the per-version venvs (test_real_libraries.py repeats it through them, in subprocesses). It
proves on the simulator what the synthetic gate tests claim: 0.9.0 clearly beats 0.8.0, 0.8.0 against
0.9.0 is a clear loss, and 0.10.0, better on the fleet median, is refused for its rev C regression.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from eval_runner.evaluation.judgement import GateResult, judge
from eval_runner.evaluation.metrics import evaluated_frame, with_errors
from eval_runner.evaluation.policy import parse_policy
from eval_runner.library import load_predictor
from tests.fixtures.demo_library import import_demo_library

REPO = Path(__file__).parents[3]
VERSIONS = ("0.6.0", "0.8.0", "0.9.0", "0.10.0")
POLICY = parse_policy((REPO / "policies" / "default.yaml").read_text(), name="default.yaml")


@pytest.fixture(scope="module")
def errors() -> dict[str, pl.DataFrame]:
    from fieldsim import SimConfig, simulate
    from fieldsim.library_input import month_dataset

    fleet = simulate(SimConfig.for_months(seed=20260310, devices=600, start="2026-03", months=2))
    frames = [month_dataset(fleet, month) for month in ("2026-03", "2026-04")]
    dataset = pl.concat([f[0] for f in frames]).filter(pl.col("true_runtime_days").is_not_null())
    series = pl.concat([f[1] for f in frames])
    out = {}
    for version in VERSIONS:
        predictor = load_predictor(import_demo_library(version))
        assert predictor.library_version == version
        out[version] = with_errors(evaluated_frame(dataset, predictor.predict(dataset, series)))
    return out


def _refused(result: GateResult) -> set[str]:
    return {f.pool for f in result.findings if f.outcome == "refuse"}


def test_clear_win_passes(errors: dict[str, pl.DataFrame]) -> None:
    result = judge(errors["0.9.0"], errors["0.8.0"], POLICY)
    assert result.verdict == "pass", result.reasons


def test_clear_loss_is_refused(errors: dict[str, pl.DataFrame]) -> None:
    result = judge(errors["0.8.0"], errors["0.9.0"], POLICY)
    assert result.verdict == "refuse" and result.of_rule("primary")[0].outcome == "refuse", result.reasons


def test_0_10_0_is_refused_for_its_rev_c_regression(errors: dict[str, pl.DataFrame]) -> None:
    result = judge(errors["0.10.0"], errors["0.9.0"], POLICY)
    assert result.verdict == "refuse"
    assert "hardware_revision=C" in _refused(result), result.reasons
    assert all("hardware_revision=C" in pool or "firmware_version=1.5.0" in pool for pool in _refused(result)), (
        result.reasons
    )


def test_generation_1_is_evaluated_with_intervals(errors: dict[str, pl.DataFrame]) -> None:
    coverage = errors["0.6.0"].get_column("runtime_covered").drop_nulls()
    assert coverage.len() > 0.9 * errors["0.6.0"].height
