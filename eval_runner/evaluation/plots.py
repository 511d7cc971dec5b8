"""Error plots as PNG bytes (matplotlib's Agg canvas, no pyplot state, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_DPI = 100


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    # No timestamps in the metadata, so equal plots are equal bytes.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _values(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame.get_column(column).drop_nulls().to_numpy().astype(np.float64)


def error_distribution_png(errors: pl.DataFrame, *, title: str) -> bytes:
    """One version on one month: error histograms, runtime error per hardware revision, predicted vs true."""
    # Fixed margins instead of constrained layout: the layout engine cost more CPU than drawing.
    figure = Figure(figsize=(11, 8))
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.92, wspace=0.22, hspace=0.28)
    figure.suptitle(title)
    (hist_run, hist_cap), (by_rev, scatter) = figure.subplots(2, 2)
    for axes in figure.axes:
        # Ticks are most of the drawing time (each is several artists); five per axis still read well.
        axes.locator_params(nbins=5)
    for axes, column, unit in ((hist_run, "runtime_abs_error", "days"), (hist_cap, "capacity_abs_error", "mAh")):
        values = _values(errors, column)
        # One filled outline instead of 40 bar patches: the same picture, drawn faster.
        axes.hist(values, bins=40, color="tab:blue", alpha=0.8, histtype="stepfilled")
        axes.set_xlabel(f"absolute {column.split('_')[0]} error ({unit})")
        axes.set_ylabel("samples")
        if values.size:
            axes.axvline(float(np.median(values)), color="black", linestyle="--", label="median")
            axes.legend(loc="upper right")  # "best" searches the data for a free corner on every draw
    revisions = sorted(str(v) for v in errors.get_column("hardware_revision").unique().drop_nulls().to_list())
    groups = [_values(errors.filter(pl.col("hardware_revision") == rev), "runtime_abs_error") for rev in revisions]
    if revisions:
        # Ticks set separately: boxplot's label keyword was renamed in matplotlib 3.9 (we support 3.8+).
        by_rev.boxplot(groups, showfliers=False)
        by_rev.set_xticks(range(1, len(revisions) + 1), revisions)
    by_rev.set_xlabel("hardware revision")
    by_rev.set_ylabel("absolute runtime error (days)")
    both = errors.drop_nulls(["true_runtime_days", "runtime_days_p50"])
    truth, predicted = _values(both, "true_runtime_days"), _values(both, "runtime_days_p50")
    scatter.scatter(truth, predicted, s=6, alpha=0.5)
    if truth.size:
        top = float(max(truth.max(), predicted.max()))
        scatter.plot([0, top], [0, top], color="black", linewidth=1)
    scatter.set_xlabel("true runtime (days)")
    scatter.set_ylabel("predicted runtime p50 (days)")
    return _png(figure)


def cdf_png(curves: Mapping[str, np.ndarray], *, xlabel: str, title: str) -> bytes:
    """Empirical CDFs of one error per version, on one axis."""
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    for label, values in curves.items():
        ordered = np.sort(values[~np.isnan(values)])
        if ordered.size:
            axes.step(ordered, np.arange(1, ordered.size + 1) / ordered.size, where="post", label=label)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("share of samples")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:  # a legend without entries warns
        axes.legend()
    return _png(figure)


def segment_bars_png(table: pl.DataFrame, *, value: str, title: str) -> bytes:
    """Grouped bars: ``value`` per segment (rows, column ``segment``) and version (column ``version``)."""
    figure = Figure(figsize=(max(8, 0.6 * table.height), 5), layout="constrained")
    axes = figure.subplots()
    segments = table.get_column("segment").unique(maintain_order=True).to_list()
    versions = table.get_column("version").unique(maintain_order=True).to_list()
    width = 0.8 / max(len(versions), 1)
    positions = np.arange(len(segments))
    for index, version in enumerate(versions):
        rows = table.filter(pl.col("version") == version)
        lookup = dict(zip(rows.get_column("segment").to_list(), rows.get_column(value).to_list(), strict=True))
        heights = [float(lookup.get(s) or 0.0) for s in segments]
        axes.bar(positions + index * width, heights, width, label=str(version))
    axes.set_xticks(positions + width * (len(versions) - 1) / 2, segments, rotation=30, ha="right")
    axes.set_ylabel(value)
    axes.set_title(title)
    if versions:
        axes.legend()
    return _png(figure)
