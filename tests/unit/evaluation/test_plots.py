"""Plots are PNG bytes, identical for identical inputs (no timestamps), and survive empty inputs."""

from __future__ import annotations

import numpy as np
import polars as pl

from eval_runner.evaluation.plots import cdf_png, error_distribution_png, segment_bars_png

PNG = b"\x89PNG\r\n\x1a\n"


def errors(n: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame(
        {
            "runtime_abs_error": rng.random(n) * 50,
            "capacity_abs_error": rng.random(n) * 300,
            "hardware_revision": np.where(np.arange(n) % 5 == 0, "C", "B"),
            "true_runtime_days": rng.random(n) * 400,
            "runtime_days_p50": rng.random(n) * 400,
        },
        schema_overrides={"hardware_revision": pl.String()},
    )


def test_error_plot_is_deterministic_png() -> None:
    first = error_distribution_png(errors(200), title="t")
    assert first.startswith(PNG) and first == error_distribution_png(errors(200), title="t")


def test_plots_accept_empty_inputs() -> None:
    assert error_distribution_png(errors(0), title="empty").startswith(PNG)
    assert cdf_png({"0.9.0": np.array([])}, xlabel="x", title="t").startswith(PNG)


def test_cdf_and_segment_plots_are_png() -> None:
    curves = {"0.8.0": np.array([1.0, 2.0, np.nan]), "0.9.0": np.array([0.5, 1.5])}
    assert cdf_png(curves, xlabel="days", title="t").startswith(PNG)
    table = pl.DataFrame(
        {"segment": ["hardware_revision=B", "hardware_revision=C"] * 2, "version": ["a", "a", "b", "b"],
         "value": [1.0, 2.0, None, 3.0]}
    )  # fmt: skip
    assert segment_bars_png(table, value="value", title="t").startswith(PNG)
