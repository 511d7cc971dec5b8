"""Metrics equal hand-computed numpy values on small frames."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from eval_runner.contracts import PREDICTION_SCHEMA
from eval_runner.errors import DataError
from eval_runner.evaluation.metrics import (
    EVALUATED_SCHEMA,
    evaluated_frame,
    flatten_for_tracking,
    summarise,
    with_errors,
)

TRUE_CAP = np.array([1000.0, 2000.0, 500.0, 1500.0, 0.0])
PRED_CAP = np.array([1100.0, 1700.0, 650.0, 1500.0, 40.0])
TRUE_RUN = np.array([100.0, 200.0, 50.0, 150.0, 0.0])
PRED_RUN = np.array([90.0, 260.0, 50.0, 120.0, 5.0])
HW = ["B", "B", "C", "C", "C"]
SOURCE = ["estimated", "observed", "estimated", "estimated", "observed"]
CENSORED = [False, False, True, False, False]
FW = ["2.1", "2.2", "2.1", "2.1", "2.2"]


def dataset() -> pl.DataFrame:
    ids = [f"d{i}/2026-04" for i in range(5)]
    return pl.DataFrame(
        {
            "sample_id": ids,
            "month": ["2026-04"] * 5,
            "device_id": [f"d{i}" for i in range(5)],
            "hardware_revision": HW,
            "firmware_version": FW,
            "true_capacity_mah": TRUE_CAP,
            "true_runtime_days": TRUE_RUN,
            "true_runtime_source": SOURCE,
            "true_runtime_censored": CENSORED,
            "unrelated": [1, 2, 3, 4, 5],
        }
    )


def predictions(with_intervals: bool = True) -> pl.DataFrame:
    factor = 1.0 if with_intervals else None
    return pl.DataFrame(
        {
            "sample_id": [f"d{i}/2026-04" for i in range(5)],
            "capacity_mah_p10": PRED_CAP * 0.8 if factor else [None] * 5,
            "capacity_mah_p50": PRED_CAP,
            "capacity_mah_p90": PRED_CAP * 1.2 if factor else [None] * 5,
            "runtime_days_p10": PRED_RUN * 0.9 if factor else [None] * 5,
            "runtime_days_p50": PRED_RUN,
            "runtime_days_p90": PRED_RUN * 1.1 if factor else [None] * 5,
        },
        schema=PREDICTION_SCHEMA,
    )


def stats(values: np.ndarray) -> list[float]:
    return [float(np.mean(values)), float(np.median(values)), float(np.percentile(values, 90)),
            float(np.percentile(values, 95))]  # fmt: skip


def test_overall_metrics_equal_numpy() -> None:
    summary = summarise(with_errors(evaluated_frame(dataset(), predictions())))
    overall = summary["overall"]
    cap_abs, run_abs = np.abs(PRED_CAP - TRUE_CAP), np.abs(PRED_RUN - TRUE_RUN)
    # relative errors are undefined where the truth is 0 (the dead pack d4): numpy over the others
    cap_rel, run_rel = cap_abs[:4] / TRUE_CAP[:4], run_abs[:4] / TRUE_RUN[:4]
    for name, values in [("capacity_abs_error", cap_abs), ("runtime_abs_error", run_abs),
                         ("capacity_rel_error", cap_rel), ("runtime_rel_error", run_rel)]:  # fmt: skip
        got = [overall[f"{name}_{s}"] for s in ("mean", "median", "p90", "p95")]
        assert got == pytest.approx(stats(values), rel=1e-12), name
    covered_cap = (PRED_CAP * 0.8 <= TRUE_CAP) & (TRUE_CAP <= PRED_CAP * 1.2)
    covered_run = (PRED_RUN * 0.9 <= TRUE_RUN) & (TRUE_RUN <= PRED_RUN * 1.1)
    assert overall["capacity_q10_q90_coverage"] == pytest.approx(covered_cap.mean())
    assert overall["runtime_q10_q90_coverage"] == pytest.approx(covered_run.mean())
    assert (overall["n_samples"], overall["n_predicted"]) == (5, 5)


def test_segment_metrics_equal_numpy() -> None:
    summary = summarise(with_errors(evaluated_frame(dataset(), predictions())))
    run_abs = np.abs(PRED_RUN - TRUE_RUN)
    rev_c = summary["segments"]["hardware_revision"]["C"]
    assert [rev_c[f"runtime_abs_error_{s}"] for s in ("mean", "median", "p90", "p95")] == pytest.approx(
        stats(run_abs[2:])
    )
    fw_22 = summary["segments"]["firmware_version"]["2.2"]
    assert fw_22["capacity_abs_error_median"] == pytest.approx(np.median(np.abs(PRED_CAP - TRUE_CAP)[[1, 4]]))
    assert fw_22["n_samples"] == 2
    assert sorted(summary["segments"]["hardware_revision"]) == ["B", "C"]


def test_observed_estimated_and_censored_runtime_truths_are_reported_apart() -> None:
    summary = summarise(with_errors(evaluated_frame(dataset(), predictions())))
    by_truth = summary["segments"]["runtime_truth"]
    assert sorted(by_truth) == ["censored", "estimated", "observed"]
    run_abs = np.abs(PRED_RUN - TRUE_RUN)
    # d1 and d4 observed; d0 and d3 estimated; d2 estimated at the horizon, so censored and not "estimated".
    expected = {"observed": run_abs[[1, 4]], "estimated": run_abs[[0, 3]], "censored": run_abs[[2]]}
    for truth, errors in expected.items():
        assert by_truth[truth]["n_samples"] == errors.size
        assert by_truth[truth]["runtime_abs_error_median"] == pytest.approx(float(np.median(errors)))
    assert "runtime_truth.censored.runtime_abs_error_median" in flatten_for_tracking(summary)


def test_coverage_is_null_without_intervals_and_missing_predictions_are_counted() -> None:
    preds = predictions(with_intervals=False).with_columns(
        pl.when(pl.col("sample_id") == "d0/2026-04").then(None).otherwise(pl.col(c)).alias(c)
        for c in ("capacity_mah_p50", "runtime_days_p50")
    )
    overall = summarise(with_errors(evaluated_frame(dataset(), preds)))["overall"]
    assert overall["runtime_q10_q90_coverage"] is None
    assert (overall["n_samples"], overall["n_predicted"]) == (5, 4)
    assert overall["runtime_abs_error_median"] == pytest.approx(np.median(np.abs(PRED_RUN - TRUE_RUN)[1:]))


def test_evaluated_frame_has_the_published_schema() -> None:
    frame = evaluated_frame(dataset(), predictions())
    assert frame.schema == pl.Schema(EVALUATED_SCHEMA)


def test_predictions_for_unknown_samples_or_without_truth_are_refused() -> None:
    unknown = predictions().with_columns(pl.lit("zz/2026-04").alias("sample_id"))
    with pytest.raises(DataError, match="5 predictions have no dataset sample"):
        evaluated_frame(dataset(), unknown)
    no_truth = dataset().with_columns(pl.lit(None, pl.Float64).alias("true_runtime_days"))
    with pytest.raises(DataError, match="5 evaluated samples have no capacity-test truth"):
        evaluated_frame(no_truth, predictions())


def test_flattened_names_are_valid_mlflow_keys() -> None:
    summary = summarise(with_errors(evaluated_frame(dataset().with_columns(pl.lit("2.1+x y").alias(
        "firmware_version")), predictions())))  # fmt: skip
    flat = flatten_for_tracking(summary)
    assert "firmware_version.2.1_x_y.runtime_abs_error_median" in flat
    assert "hardware_revision.C.n_samples" in flat
    assert all(v == v for v in flat.values())  # no NaN, no None
